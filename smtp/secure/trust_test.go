package secure

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An S/MIME partner made with openssl, as an administrator would get one.
type osslCert struct {
	dir, name string
	cert, key string // PEM files
	der       []byte
}

// osslSelfSigned is `openssl req -x509` with the subject and extensions
// given (a partner's self-signed certificate: CA:TRUE by default).
func osslSelfSigned(t *testing.T, dir, name, subj string, ext ...string) *osslCert {
	t.Helper()
	c := &osslCert{dir: dir, name: name, cert: filepath.Join(dir, name+".pem"), key: filepath.Join(dir, name+".key")}
	args := []string{"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", c.key, "-out", c.cert, "-days", "30", "-subj", subj}
	for _, e := range ext {
		args = append(args, "-addext", e)
	}
	if out, err := tool(t, nil, "openssl", args...); err != nil {
		t.Fatalf("openssl req -x509: %v\n%s", err, out)
	}
	c.load(t)
	return c
}

// osslIssue is a certificate for subj issued with the key of ca
// (`openssl x509 -req -CA`), whatever ca's basicConstraints say.
func osslIssue(t *testing.T, ca *osslCert, name, subj string, ext ...string) *osslCert {
	t.Helper()
	c := &osslCert{dir: ca.dir, name: name, cert: filepath.Join(ca.dir, name+".pem"), key: filepath.Join(ca.dir, name+".key")}
	csr := filepath.Join(ca.dir, name+".csr")
	args := []string{"req", "-newkey", "rsa:2048", "-nodes", "-keyout", c.key, "-out", csr, "-subj", subj}
	for _, e := range ext {
		args = append(args, "-addext", e)
	}
	if out, err := tool(t, nil, "openssl", args...); err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	if out, err := tool(t, nil, "openssl", "x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-days", "10", "-copy_extensions", "copy", "-out", c.cert); err != nil {
		t.Fatalf("openssl x509 -req: %v\n%s", err, out)
	}
	c.load(t)
	return c
}

func (c *osslCert) load(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(c.cert)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", c.cert)
	}
	c.der = blk.Bytes
}

// signed is a message `openssl cms -sign` signs with c, with the header
// fields given before the signed entity.
func (c *osslCert) signed(t *testing.T, header, body string) []byte {
	t.Helper()
	in := filepath.Join(c.dir, c.name+".in")
	if err := os.WriteFile(in, []byte("Content-Type: text/plain\r\n\r\n"+body+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := tool(t, nil, "openssl", "cms", "-sign", "-in", in, "-signer", c.cert, "-inkey", c.key, "-md", "sha256")
	if err != nil {
		t.Fatalf("openssl cms -sign: %v\n%s", err, out)
	}
	return []byte(strings.ReplaceAll(strings.ReplaceAll(header+out, "\r\n", "\n"), "\n", "\r\n"))
}

func resultOf(t *testing.T, out []byte) string {
	t.Helper()
	flat := strings.ReplaceAll(string(out), "\r\n\t", " ")
	if n := strings.Count(flat, ResultHeader+":"); n != 1 {
		t.Fatalf("%d %s fields:\n%s", n, ResultHeader, out)
	}
	return lineWith(flat, ResultHeader+":")
}

func wantResult(t *testing.T, got string, want []string, not ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got+";", w+";") {
			t.Fatalf("result lacks %q:\n%s", w, got)
		}
	}
	for _, w := range not {
		if strings.Contains(got, w) {
			t.Fatalf("result has %q:\n%s", w, got)
		}
	}
}

// TestSMIMEPartnerCertificateIsNoIssuer: a partner's self-signed
// certificate with CA:TRUE, held for an address (even for one it does not
// name, as an import with a wrong --owner left it), is trusted as that
// signer's own certificate only: a certificate issued with its key does
// not make mail from an internal address trusted. Nor does a certificate
// without CA:TRUE that reaches the list of roots.
func TestSMIMEPartnerCertificateIsNoIssuer(t *testing.T) {
	dir := t.TempDir()
	bob := osslSelfSigned(t, dir, "bob", "/CN=Bob", "subjectAltName=email:bob@partner.example")
	if c, _ := x509.ParseCertificate(bob.der); !c.IsCA {
		t.Fatal("openssl req -x509 made no CA:TRUE certificate: the test shows nothing")
	}
	ceo := osslIssue(t, bob, "ceo", "/CN=CEO", "subjectAltName=email:ceo@example.com")
	k := newMemKeys("example.com")
	k.addSMIME(t, "alice@example.com", nil, true)
	for _, o := range []string{"bob@partner.example", "ceo@example.com"} {
		k.pub[o] = append(k.pub[o], PublicKey{Owner: o, Kind: KindSMIME, Data: bob.der})
	}
	p := newProcessor(t, k)

	got := resultOf(t, prepareOne(t, p, "ceo@example.com", "alice@example.com",
		ceo.signed(t, "From: <ceo@example.com>\nTo: <alice@example.com>\nSubject: wire the money\n", "now")))
	t.Logf("a leaf issued with bob's key, From: ceo@example.com: %s", got)
	wantResult(t, got, []string{"signature=valid", "signer=ceo@example.com", "trusted=no"}, "trusted=yes")

	// the pinned certificate itself still vouches for its own address
	got = resultOf(t, prepareOne(t, p, "bob@partner.example", "alice@example.com",
		bob.signed(t, "From: Bob <bob@partner.example>\nTo: <alice@example.com>\nSubject: hi\n", "from bob")))
	t.Logf("bob's own certificate, From: bob@partner.example: %s", got)
	wantResult(t, got, []string{"signature=valid", "signer=bob@partner.example", "trusted=yes"}, "signer-mismatch")

	// a certificate without CA:TRUE among the roots issues nothing
	x := osslSelfSigned(t, dir, "x", "/CN=X", "basicConstraints=critical,CA:FALSE")
	y := osslIssue(t, x, "y", "/CN=Y", "subjectAltName=email:y@partner.example")
	k.roots, k.collected = [][]byte{x.der}, map[string][]byte{}
	got = resultOf(t, prepareOne(t, newProcessor(t, k), "y@partner.example", "alice@example.com",
		y.signed(t, "From: <y@partner.example>\nTo: <alice@example.com>\nSubject: hi\n", "from y")))
	t.Logf("a leaf issued by a CA:FALSE certificate in the roots: %s", got)
	wantResult(t, got, []string{"signature=valid", "trusted=no"}, "trusted=yes")
	if _, ok := k.collected["y@partner.example"]; ok {
		t.Fatal("collected from an untrusted signature")
	}
}

// TestSMIMESignerMustNameFrom: a signature whose certificate does not name
// the From address is valid but not trusted, and the header says whom it
// names and that it is not the From address; with no single From address
// there is nothing to vouch for. An address in the subject's emailAddress
// (no subjectAltName) counts (RFC 8550 §3).
func TestSMIMESignerMustNameFrom(t *testing.T) {
	dir := t.TempDir()
	pca := osslSelfSigned(t, dir, "pca", "/CN=Partner CA", "basicConstraints=critical,CA:TRUE", "keyUsage=keyCertSign,cRLSign")
	bob := osslIssue(t, pca, "bob", "/CN=Bob", "subjectAltName=email:bob@partner.example")
	dave := osslIssue(t, pca, "dave", "/CN=Dave/emailAddress=Dave@Partner.example")
	k := newMemKeys("example.com")
	k.addSMIME(t, "alice@example.com", nil, true)
	k.roots = [][]byte{pca.der}
	p := newProcessor(t, k)
	for _, tc := range []struct {
		name   string
		signer *osslCert
		header string
		want   []string
		not    []string
	}{
		{"from the signer", bob, "From: Bob <bob@partner.example>\n",
			[]string{"signer=bob@partner.example", "trusted=yes"}, []string{"signer-mismatch"}},
		{"from someone else", bob, "From: The CEO <ceo@example.com>\n",
			[]string{"signature=valid", "signer=bob@partner.example", "signer-mismatch=ceo@example.com", "trusted=no"}, nil},
		{"no From", bob, "",
			[]string{"signature=valid", "signer-mismatch=no-from", "trusted=no"}, nil},
		{"two From fields", bob, "From: <bob@partner.example>\nFrom: <ceo@example.com>\n",
			[]string{"signer-mismatch=no-from", "trusted=no"}, nil},
		{"two From addresses", bob, "From: <bob@partner.example>, <ceo@example.com>\n",
			[]string{"signer-mismatch=no-from", "trusted=no"}, nil},
		{"subject emailAddress", dave, "From: <dave@partner.example>\n",
			[]string{"signer=dave@partner.example", "trusted=yes"}, []string{"signer-mismatch"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k.collected = map[string][]byte{}
			msg := tc.signer.signed(t, tc.header+"To: <alice@example.com>\nSubject: "+tc.name+"\n", "body")
			got := resultOf(t, prepareOne(t, p, "bob@partner.example", "alice@example.com", msg))
			t.Logf("%s", got)
			wantResult(t, got, tc.want, tc.not...)
			if strings.Contains(got, "trusted=no") && len(k.collected) > 0 {
				t.Fatal("collected from an untrusted signature")
			}
		})
	}
}

// TestSMIMESignerAddressInHeader: the address a signer's certificate
// claims (the sender's choice) cannot add a header field or a result.
func TestSMIMESignerAddressInHeader(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	evil := "evil@partner.example\r\nX-Postern-Secure: forged; trusted=yes"
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Evil"}, EmailAddresses: []string{evil},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil || len(c.EmailAddresses) != 1 || c.EmailAddresses[0] != evil {
		t.Fatalf("the certificate does not carry the address: %v %v", err, c)
	}
	pk, _ := x509.MarshalPKCS8PrivateKey(key)
	dir := t.TempDir()
	e := &osslCert{dir: dir, name: "evil", cert: writeFile(t, dir, "evil.pem", pemOf("CERTIFICATE", der)), key: writeFile(t, dir, "evil.key", pemOf("PRIVATE KEY", pk)), der: der}
	k := newMemKeys("example.com")
	k.addSMIME(t, "alice@example.com", nil, true)
	out := prepareOne(t, newProcessor(t, k), "evil@partner.example", "alice@example.com",
		e.signed(t, "From: <evil@partner.example>\nTo: <alice@example.com>\nSubject: x\n", "body"))
	got := resultOf(t, out) // exactly one result field
	t.Logf("%s", got)
	if strings.Contains(string(out), "\r\nX-Postern-Secure: forged") {
		t.Fatalf("the claimed address added a header field:\n%s", out)
	}
	parts := strings.Split(got, "; ")
	for _, part := range parts {
		if part == "trusted=yes" {
			t.Fatalf("the claimed address added a result:\n%s", got)
		}
	}
	wantResult(t, got, []string{"signature=valid", "signer-mismatch=evil@partner.example", "trusted=no"})
}

// TestPGPSignerMustNameFrom: an OpenPGP key held for the From address (as
// an import with a wrong --owner left it) whose user IDs name someone
// else makes a valid but untrusted signature; `gpg --detach-sign` signs.
func TestPGPSignerMustNameFrom(t *testing.T) {
	g := newGnuPG(t)
	g.gpg(nil, "--quick-gen-key", "Bob <bob@partner.example>", "future-default", "default", "never")
	bobPub := g.gpg(nil, "--armor", "--export", "bob@partner.example")
	k := newMemKeys("example.com")
	for _, o := range []string{"bob@partner.example", "ceo@example.com"} {
		k.pub[o] = []PublicKey{{Owner: o, Kind: KindPGP, Data: []byte(bobPub)}}
	}
	p := newProcessor(t, k)
	dir := t.TempDir()
	signed := func(from string) []byte {
		part := "Content-Type: text/plain; charset=us-ascii\r\n\r\nfrom gpg\r\n"
		f := writeFile(t, dir, "part", []byte(part))
		sig := g.gpg(nil, "--armor", "--detach-sign", "--local-user", "bob@partner.example", "--output", "-", f)
		return []byte(strings.ReplaceAll("From: <"+from+">\nTo: <alice@example.com>\nSubject: pgp\nMIME-Version: 1.0\n"+
			"Content-Type: multipart/signed; micalg=pgp-sha256; protocol=\"application/pgp-signature\"; boundary=\"XX\"\n\n--XX\n", "\n", "\r\n") +
			part + strings.ReplaceAll("\n--XX\nContent-Type: application/pgp-signature\n\n"+sig+"\n--XX--\n", "\n", "\r\n"))
	}
	got := resultOf(t, prepareOne(t, p, "bob@partner.example", "alice@example.com", signed("bob@partner.example")))
	t.Logf("From: bob: %s", got)
	wantResult(t, got, []string{"signature=valid", "method=pgp", "signer=bob@partner.example", "trusted=yes"}, "signer-mismatch")
	got = resultOf(t, prepareOne(t, p, "ceo@example.com", "alice@example.com", signed("ceo@example.com")))
	t.Logf("From: ceo, bob's key: %s", got)
	wantResult(t, got, []string{"signature=valid", "method=pgp", "signer=bob@partner.example", "signer-mismatch=ceo@example.com", "trusted=no"})
}

// TestCertNames: whom a certificate names, for imports.
func TestCertNames(t *testing.T) {
	mk := func(cn string, emails, dns []string) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: cn}, EmailAddresses: emails, DNSNames: dns}
	}
	for _, tc := range []struct {
		c     *x509.Certificate
		owner string
		want  bool
	}{
		{mk("Bob", []string{"bob@partner.example"}, nil), "bob@partner.example", true},
		{mk("Bob", []string{"Bob@Partner.Example"}, nil), "bob@partner.example", true},
		{mk("Bob", []string{"bob@partner.example"}, nil), "ceo@example.com", false},
		{mk("Bob", []string{"bob@partner.example"}, nil), "partner.example", true},
		{mk("Bob", []string{"bob@partner.example"}, nil), "example", false},
		{mk("Bob", []string{"bob@xpartner.example"}, nil), "partner.example", false},
		{mk("partner.example", nil, nil), "partner.example", true},
		{mk("gw", nil, []string{"partner.example"}), "partner.example", true},
		{mk("partner.example", nil, nil), "ceo@partner.example", false},
		{mk("Bob", nil, nil), "bob@partner.example", false},
	} {
		if got := CertNames(tc.c, tc.owner); got != tc.want {
			t.Errorf("CertNames(%v %v %v, %s) = %v", tc.c.Subject.CommonName, tc.c.EmailAddresses, tc.c.DNSNames, tc.owner, got)
		}
	}
}
