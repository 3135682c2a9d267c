package integration

import (
	"strings"
	"testing"
	"time"
)

// TestSecureSMIMEWithOpenSSL: through a running appliance, mail an
// internal user sends to a partner is signed (internal CA) and encrypted
// (the partner's imported certificate), and `openssl cms` decrypts and
// verifies it; mail `openssl cms` signs and encrypts for the internal user
// arrives decrypted, verified, with the gateway's result header and
// without the forged copy it came with.
func TestSecureSMIMEWithOpenSSL(t *testing.T) {
	l := newSecureLab(t, "127.0.0.60")
	ca := l.cli(t, "ca", "init")
	t.Logf("postern ca init:\n%s", ca)
	gen := l.cli(t, "keys", "generate", "alice@example.com", "--smime")
	t.Logf("postern keys generate alice@example.com --smime:\n%s", gen)
	if !strings.Contains(gen, "smime") || !strings.Contains(gen, "sign,encrypt") || !strings.Contains(gen, "yes") {
		t.Fatalf("generate:\n%s", gen)
	}
	// the partner: an ordinary openssl certificate, imported
	bobKey, bobCert := l.dir+"/bob.key", l.dir+"/bob.pem"
	mustTool(t, nil, "", "openssl", "req", "-x509", "-newkey", "rsa:3072", "-nodes", "-keyout", bobKey, "-out", bobCert,
		"-subj", "/CN=Bob Partner", "-addext", "subjectAltName=email:bob@partner.org", "-addext", "keyUsage=digitalSignature,keyEncipherment", "-days", "30")
	imp := l.cli(t, "keys", "import", bobCert)
	if !strings.Contains(imp, "bob@partner.org") {
		t.Fatalf("import:\n%s", imp)
	}
	// the certificates are where LDAP clients look for them, with ;binary
	for _, f := range []string{"(cn=alice@example.com)", "(mail=bob@partner.org)"} {
		out := mustTool(t, nil, "", "ldapsearch", "-x", "-LLL", "-H", l.x.ldapURL(), "-D", "cn=admin,dc=postern,dc=local", "-w", adminPassword,
			"-b", "dc=postern,dc=local", f, "userCertificate;binary", "posternPrivateKey")
		if !strings.Contains(out, "userCertificate;binary:: MII") {
			t.Fatalf("ldapsearch %s:\n%s", f, out)
		}
		if strings.Contains(f, "alice") && !strings.Contains(unfold(out), "posternPrivateKey: smime ") {
			t.Fatalf("alice's sealed key:\n%s", out)
		}
	}
	l.cli(t, "policy", "set", "--user", "alice@example.com", "--sign", "always")
	caPEM := l.file(t, "ca.pem", l.cli(t, "keys", "export", "internal-ca"))

	mustSend(t, l.x.addr["smtp"], "alice@example.com", []string{"bob@partner.org"}, plainMessage("alice@example.com", "bob@partner.org", "quarterly", "the figures are good"))
	got := l.sink.waitFor(t, "bob@partner.org", 20*time.Second)
	if !strings.Contains(got.Data, "application/pkcs7-mime; smime-type=enveloped-data") || strings.Contains(got.Data, "the figures") {
		t.Fatalf("not encrypted:\n%s", got.Data)
	}
	msg := l.file(t, "out.eml", got.Data)
	dec := mustTool(t, nil, "", "openssl", "cms", "-decrypt", "-in", msg, "-recip", bobCert, "-inkey", bobKey)
	ver := mustTool(t, nil, "", "openssl", "cms", "-verify", "-in", l.file(t, "dec.eml", dec), "-CAfile", caPEM, "-purpose", "smimesign")
	if !strings.Contains(ver, "Verification successful") || !strings.Contains(ver, "the figures are good") {
		t.Fatalf("openssl cms -verify:\n%s", ver)
	}
	t.Logf("openssl cms -decrypt | openssl cms -verify -CAfile (internal CA): %s; %s", lineOf(ver, "Verification"), lineOf(ver, "figures"))

	// and back: openssl signs as bob and encrypts for alice's certificate
	alicePEM := l.file(t, "alice.pem", l.cli(t, "keys", "export", "alice@example.com", "--smime"))
	inner := l.file(t, "inner.txt", "Content-Type: text/plain\n\nreply from bob\n")
	signed := mustTool(t, nil, "", "openssl", "cms", "-sign", "-in", inner, "-signer", bobCert, "-inkey", bobKey, "-md", "sha256")
	enc := mustTool(t, nil, "", "openssl", "cms", "-encrypt", "-in", l.file(t, "signed.eml", signed), "-aes256", "-recip", alicePEM,
		"-keyopt", "rsa_padding_mode:oaep", "-from", "bob@partner.org", "-to", "alice@example.com", "-subject", "reply")
	forged := "X-Postern-Secure: forged; decrypted=smime; signature=valid; trusted=yes\n" + enc
	mustSend(t, l.x.addr["smtp"], "bob@partner.org", []string{"alice@example.com"}, forged)
	in := l.sink.waitFor(t, "alice@example.com", 20*time.Second)
	flat := unfold(in.Data)
	if strings.Contains(flat, "forged") {
		t.Fatalf("the forged result header was delivered:\n%s", in.Data)
	}
	for _, want := range []string{"decrypted=smime", "signature=valid", "signer=bob@partner.org", "trusted=yes", "reply from bob"} {
		if !strings.Contains(flat, want) {
			t.Fatalf("delivered to alice lacks %q:\n%s", want, in.Data)
		}
	}
	t.Logf("delivered to alice: %s", lineOf(flat, "X-Postern-Secure"))
	metrics := scrape(t, l.x)
	for _, want := range []string{`postern_secure_messages_total{method="smime",op="encrypt",outcome="ok"} 1`, `postern_secure_messages_total{method="smime",op="decrypt",outcome="ok"} 1`,
		`postern_secure_messages_total{method="smime",op="sign",outcome="ok"} 1`, `postern_secure_messages_total{method="smime",op="verify",outcome="ok"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("metrics lack %s:\n%s", want, lineOf(metrics, "postern_secure"))
		}
	}
	if strings.Contains(l.x.out.String(), "PRIVATE KEY") {
		t.Fatal("the appliance's log holds key material")
	}
}
