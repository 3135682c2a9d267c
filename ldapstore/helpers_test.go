package ldapstore

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	bolt "go.etcd.io/bbolt"
	"path/filepath"
	"postern/ldapstore/filter"
	"testing"
)

const admin = "cn=admin,dc=postern,dc=local"

func openTest(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "dir.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func entry(dn string, attrs ...string) *Entry {
	e := &Entry{DN: dn}
	for i := 0; i+1 < len(attrs); i += 2 {
		vals := e.Get(attrs[i])
		e.Set(attrs[i], append(vals, attrs[i+1])...)
	}
	return e
}

// seed adds the base tree the appliance creates.
func seed(t testing.TB, s *Store) {
	t.Helper()
	ctx := context.Background()
	must(t, s.Add(ctx, entry("dc=postern,dc=local", "objectClass", "top", "objectClass", "dcObject", "objectClass", "organization", "dc", "postern", "o", "Postern"), admin))
	for _, ou := range []string{"people", "domains", "config", "cluster"} {
		must(t, s.Add(ctx, entry("ou="+ou+",dc=postern,dc=local", "objectClass", "organizationalUnit", "ou", ou), admin))
	}
}

func person(uid string) *Entry {
	return entry("uid="+uid+",ou=people,dc=postern,dc=local",
		"objectClass", "inetOrgPerson", "uid", uid, "cn", "User "+uid, "sn", uid,
		"mail", uid+"@example.com", "userPassword", "{SSHA}1G904nLkTkGWjKNnQuB/hpWXC/hzYWx0c2FsdA==")
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantCode(t testing.TB, err error, code ResultCode) {
	t.Helper()
	if CodeOf(err) != code {
		t.Fatalf("got %v (code %d), want code %d", err, CodeOf(err), code)
	}
}

func mustFilter(t testing.TB, s string) *filter.Filter {
	t.Helper()
	f, err := filter.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func sshaOf(pw, salt string) string {
	h := sha1.Sum([]byte(pw + salt))
	return base64.StdEncoding.EncodeToString(append(h[:], salt...))
}

// checkTx runs bbolt's consistency check on the file.
func checkTx(tx *bolt.Tx) error {
	for err := range tx.Check() {
		return err
	}
	return nil
}
