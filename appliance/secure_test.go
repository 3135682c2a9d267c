package appliance

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"postern/smtp/secure"
)

// TestKeyMaterialFiles: a backend's data directory holds the KEK (0600)
// and the store; the files a frontend keeps (machine-local ones only) hold
// no key material; a private key left in any other file is found.
func TestKeyMaterialFiles(t *testing.T) {
	a := startTest(t)
	for _, args := range [][]string{
		{"domain", "add", "example.com", "--deliver-to", "127.0.0.1:25"},
		{"keys", "generate", "alice@example.com", "--smime", "--self-signed"},
		{"keys", "generate", "alice@example.com", "--pgp"},
		{"keys", "generate", "example.com", "--dkim"},
	} {
		if code, out := run(t, a, "", args...); code != 0 {
			t.Fatalf("%v: %d\n%s", args, code, out)
		}
	}
	got, err := KeyMaterialFiles(a.cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(got, kekFile) || !slices.Contains(got, storeFile) {
		t.Fatalf("backend: %v", got)
	}
	st, err := os.Stat(filepath.Join(a.cfg.DataDir, kekFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("KEK file: %v %v", st.Mode(), err)
	}
	// what a frontend keeps: the machine-local files, no store, no KEK
	fe := t.TempDir()
	for _, n := range []string{identityFile, systemFile, certFile, keyFile, adminHashFile} {
		if b, err := os.ReadFile(filepath.Join(a.cfg.DataDir, n)); err == nil {
			os.WriteFile(filepath.Join(fe, n), b, 0o600)
		}
	}
	if got, err := KeyMaterialFiles(fe); err != nil || len(got) > 0 {
		t.Fatalf("a frontend's files: %v %v", got, err)
	}
	os.WriteFile(filepath.Join(fe, "left.asc"), []byte("-----BEGIN PGP PRIVATE KEY BLOCK-----\n"), 0o600)
	if got, _ := KeyMaterialFiles(fe); !slices.Equal(got, []string{"left.asc"}) {
		t.Fatalf("a left private key not found: %v", got)
	}
}

// TestSealedPrivateKeys: the store holds private keys only sealed; a sealed
// value copied to another owner does not open; the frontend's remoteKeys,
// through the member-call operations, sees what the backend's ldapKeys
// sees.
func TestSealedPrivateKeys(t *testing.T) {
	a := startTest(t)
	ctx := context.Background()
	if _, err := a.AddDomain(ctx, Domain{Name: "example.com", DeliverTo: "127.0.0.1:25"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GenerateKey(ctx, KeyGenerate{Owner: "alice@example.com", Kind: secure.KindSMIME, SelfSigned: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GenerateKey(ctx, KeyGenerate{Owner: "example.com", Kind: secure.KindDKIM}); err != nil {
		t.Fatal(err)
	}
	local := &ldapKeys{a: a}
	pks, err := local.Private(ctx, "alice@example.com")
	if err != nil || len(pks) != 1 {
		t.Fatalf("Private: %v %v", pks, err)
	}
	e, err := a.store.Get(ctx, a.keyEntryDN("alice@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	v := e.First(attrPrivate)
	if !strings.Contains(v, " "+sealPrefix) || strings.Contains(v, string(pks[0].Key[:32])) {
		t.Fatalf("stored value not sealed: %.60q", v)
	}
	s, _ := parseSealed(v)
	if _, err := a.open(ctx, "mallory@example.com", s); err == nil {
		t.Fatal("a sealed key opened for another owner")
	}
	remote := &remoteKeys{call: func(ctx context.Context, op string, arg, out any) error {
		b, _ := json.Marshal(arg)
		res, err := a.memberCall(ctx, op, b)
		if err != nil {
			return err
		}
		rb, _ := json.Marshal(res)
		return json.Unmarshal(rb, out)
	}}
	rp, err := remote.Private(ctx, "alice@example.com")
	if err != nil || len(rp) != 1 || string(rp[0].Key) != string(pks[0].Key) || string(rp[0].Cert) != string(pks[0].Cert) {
		t.Fatalf("remote Private: %v", err)
	}
	pol, err := remote.Policy(ctx, "alice@example.com")
	if err != nil || pol.Encrypt != secure.EncryptIfKey {
		t.Fatalf("remote Policy: %+v %v", pol, err)
	}
	pub, err := remote.Public(ctx, "alice@example.com")
	if err != nil || len(pub) != 1 || pub[0].Kind != secure.KindSMIME {
		t.Fatalf("remote Public: %+v %v", pub, err)
	}
	dk, ok, err := remote.DKIM(ctx, "example.com")
	if err != nil || !ok || dk.Selector != "postern" || len(dk.Key) == 0 {
		t.Fatalf("remote DKIM: %+v %v %v", dk, ok, err)
	}
	if m, err := remote.Managed(ctx, "partner.org"); err != nil || m {
		t.Fatalf("remote Managed: %v %v", m, err)
	}
}
