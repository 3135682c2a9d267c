package ldapstore

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testdata/layout2.db.gz is a store written by the build before layout
// version 3 (commit c965396) with this tree, added as the root DN:
//
//	dc=postern,dc=local, ou=people, ou=Grün<NBSP>Team (NO-BREAK SPACE),
//	cn=<U+FB01 LIGATURE FI>sh,ou=Grün<NBSP>Team,
//	uid=straße,ou=people (cn "Straße Weg", mail strasse@example.com),
//	uid=tab<TAB>user,ou=people (cn "Tab<SOFT HYPHEN>User"),
//	uid=cert,ou=people (cn;lang-de Zertifikat and userCertificate;binary,
//	  both stored without their options by that build),
//	uid=alice,ou=people (userPassword a valid {SSHA}).
//
// Its DN keys and indexes hold the old string preparation.
func openLayout2(t *testing.T, logTo io.Writer) *Store {
	t.Helper()
	gz, err := os.ReadFile("testdata/layout2.db.gz")
	must(t, err)
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	must(t, err)
	raw, err := io.ReadAll(zr)
	must(t, err)
	path := filepath.Join(t.TempDir(), "ldap.db")
	must(t, os.WriteFile(path, raw, 0o600))
	s, err := Open(path, Options{Logger: slog.New(slog.NewTextHandler(logTo, nil))})
	must(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// TestMigrateLayout2: a version 2 store opens as version 3 with its DN
// keys and indexes prepared with RFC 4518, so entries are found by every
// spelling RFC 4518 makes equal, by DN and through the indexes.
func TestMigrateLayout2(t *testing.T) {
	var log bytes.Buffer
	s := openLayout2(t, &log)
	if !strings.Contains(log.String(), "migrated the database from layout version 2 to 3") {
		t.Fatalf("no migration logged:\n%s", log.String())
	}
	ctx := context.Background()
	for _, dn := range []string{
		"uid=STRASSE,ou=people,dc=postern,dc=local",
		"uid=tab user,ou=people,dc=postern,dc=local",
		"cn=FISH,ou=grün team,dc=postern,dc=local",
		"ou=GRÜN TEAM,dc=postern,dc=local",
	} {
		if _, err := s.Get(ctx, dn); err != nil {
			t.Errorf("Get(%q): %v", dn, err)
		}
	}
	for f, want := range map[string]int{
		"(uid=strasse)":        1, // indexed
		"(cn=strasse weg)":     1,
		"(cn=fish)":            1,
		"(cn=tabuser)":         1, // soft hyphen maps to nothing
		"(uid=tab user)":       1,
		"(objectClass=person)": 5,
	} {
		if got := search(t, s, "dc=postern,dc=local", ScopeSub, f); len(got) != want {
			t.Errorf("%s: %v, want %d entries", f, got, want)
		}
	}
	if got := search(t, s, "ou=grün team,dc=postern,dc=local", ScopeOne, "(objectClass=*)"); len(got) != 1 {
		t.Errorf("one-level under the migrated parent: %v", got)
	}
	must(t, s.CheckPassword(ctx, "uid=alice,ou=people,dc=postern,dc=local", "secret"))
	// writes work on the migrated tree; reopening does not migrate again
	must(t, s.Add(ctx, entry("uid=new,ou=grün team,dc=postern,dc=local", "objectClass", "inetOrgPerson", "cn", "N", "sn", "N"), admin))
	wantCode(t, s.Add(ctx, entry("uid=STRASSE,ou=people,dc=postern,dc=local", "objectClass", "inetOrgPerson", "cn", "S", "sn", "S"), admin), EntryAlreadyExists)
}

// TestMigrateLayout2Certificates: the certificate the old build stored as
// "userCertificate" (it dropped ";binary") is userCertificate;binary after
// the migration, as Add stores it now.
func TestMigrateLayout2Certificates(t *testing.T) {
	s := openLayout2(t, io.Discard)
	e, err := s.Get(context.Background(), "uid=cert,ou=people,dc=postern,dc=local")
	must(t, err)
	if got := e.Get("userCertificate;binary"); len(got) != 1 || got[0] != "0\x82\x01\x02fake-der" {
		t.Fatalf("userCertificate;binary = %q (attributes %+v)", got, e.Attributes)
	}
	if e.Get("userCertificate") != nil {
		t.Fatal("plain userCertificate still stored")
	}
}
