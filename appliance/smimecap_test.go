package appliance

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"postern/ldapstore"
	"postern/smtp/secure"
)

// TestUserSMIMECertificate: a certificate published as userSMIMECertificate
// (RFC 2798: a PKCS#7 SignedData of certificates, here made by openssl
// crl2pkcs7 as address books and mail clients hold it, with the issuing CA
// beside the user's certificate) is an S/MIME key of its address: the key
// lookup the gateway encrypts with finds the user's certificate and never
// the CA, `keys list` shows it, `keys delete --fingerprint` removes the
// value; a value that is not PKCS#7 is ignored; the ;binary option is
// refused with slapd's result code (the syntax is Binary).
func TestUserSMIMECertificate(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is not installed; `make test` installs it (apt-get)")
	}
	dir := t.TempDir()
	openssl := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	p := func(n string) string { return filepath.Join(dir, n) }
	openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "30",
		"-subj", "/CN=Partner CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign")
	openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", p("bob.key"), "-out", p("bob.csr"), "-subj", "/CN=Bob")
	os.WriteFile(p("ext"), []byte("subjectAltName=email:bob@partner.org\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=emailProtection\n"), 0o600)
	openssl("x509", "-req", "-in", p("bob.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial", "-days", "30", "-extfile", p("ext"), "-out", p("bob.pem"))
	openssl("crl2pkcs7", "-nocrl", "-certfile", p("bob.pem"), "-certfile", p("ca.pem"), "-outform", "DER", "-out", p("bob.p7b"))
	openssl("x509", "-in", p("bob.pem"), "-outform", "DER", "-out", p("bob.der"))
	bundle, _ := os.ReadFile(p("bob.p7b"))
	bobDER, _ := os.ReadFile(p("bob.der"))
	fpr := secure.Fingerprint(bobDER)

	a := startTest(t)
	ctx := context.Background()
	o, err := a.findOwner(ctx, "bob@partner.org")
	if err != nil {
		t.Fatal(err)
	}
	home, err := a.home(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	// as an address book writes it (Binary syntax: no ;binary option, as
	// slapd refuses it too), beside a value that is not PKCS#7
	mod := ldapstore.Modification{Op: ldapstore.ModAdd, Attr: ldapstore.Attribute{Type: "userSMIMECertificate", Vals: []string{string(bundle), "not a PKCS#7 structure"}}}
	if err := a.store.Modify(ctx, home, []ldapstore.Modification{mod}, a.cfg.AdminDN()); err != nil {
		t.Fatal(err)
	}
	bad := ldapstore.Modification{Op: ldapstore.ModAdd, Attr: ldapstore.Attribute{Type: "userSMIMECertificate;binary", Vals: []string{string(bundle)}}}
	if err := a.store.Modify(ctx, home, []ldapstore.Modification{bad}, a.cfg.AdminDN()); ldapstore.CodeOf(err) != ldapstore.UndefinedAttributeType {
		t.Fatalf("userSMIMECertificate;binary: %v, want undefinedAttributeType (17) as slapd", err)
	}

	pub, err := (&ldapKeys{a: a}).Public(ctx, "bob@partner.org")
	if err != nil {
		t.Fatal(err)
	}
	if len(pub) != 1 || pub[0].Kind != secure.KindSMIME || string(pub[0].Data) != string(bobDER) {
		var got []string
		for _, k := range pub {
			got = append(got, k.Kind+" "+secure.Fingerprint(k.Data))
		}
		t.Fatalf("keys found for bob@partner.org: %v, want only S/MIME %s", got, fpr)
	}
	if code, out := run(t, a, "", "keys", "list", "bob@partner.org"); code != 0 || !strings.Contains(out, fpr) || strings.Contains(out, "Partner CA") {
		t.Fatalf("keys list: %d\n%s", code, out)
	}
	if code, out := run(t, a, "", "keys", "delete", "bob@partner.org", "--fingerprint", fpr); code != 0 {
		t.Fatalf("keys delete: %d\n%s", code, out)
	}
	e, err := a.store.Get(ctx, home)
	if err != nil {
		t.Fatal(err)
	}
	if v := e.Get("userSMIMECertificate"); len(v) != 1 || v[0] != "not a PKCS#7 structure" {
		t.Fatalf("userSMIMECertificate after keys delete: %d values, want only the one that is not PKCS#7", len(v))
	}
	if pub, _ := (&ldapKeys{a: a}).Public(ctx, "bob@partner.org"); len(pub) != 0 {
		t.Fatalf("%d keys left for bob@partner.org", len(pub))
	}
}
