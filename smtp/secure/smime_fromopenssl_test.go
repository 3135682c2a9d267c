package secure

import (
	"strings"
	"testing"
	"time"
)

// TestSMIMEFromOpenSSL: mail `openssl cms` signs and encrypts for an
// internal user is decrypted and verified by Postern and delivered in
// clear with the result header; a forged copy of the header is dropped,
// and the sender's certificate is collected.
func TestSMIMEFromOpenSSL(t *testing.T) {
	k := newMemKeys("example.com")
	aliceCert, _ := k.addSMIME(t, "alice@example.com", nil, true)
	caCert, caKey, err := NewCA("Partner CA", AlgoECDSA, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	k.roots = [][]byte{caCert}
	bobCert, bobKey, err := NewSMIME("bob@partner.org", AlgoRSA3072, issuer(t, caCert, caKey), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p := newProcessor(t, k)
	dir := t.TempDir()
	aliceF := writeFile(t, dir, "alice.pem", pemOf("CERTIFICATE", aliceCert))
	bobF := writeFile(t, dir, "bob.pem", pemOf("CERTIFICATE", bobCert))
	bobK := writeFile(t, dir, "bob.key", pemOf("PRIVATE KEY", bobKey))
	inner := writeFile(t, dir, "inner.txt", []byte("Content-Type: text/plain\r\n\r\nsecret plans\r\n"))
	signed, err := tool(t, nil, "openssl", "cms", "-sign", "-in", inner, "-signer", bobF, "-inkey", bobK, "-md", "sha256")
	if err != nil {
		t.Fatalf("openssl cms -sign: %v\n%s", err, signed)
	}
	signedF := writeFile(t, dir, "signed.eml", []byte(signed))
	for _, keyopt := range [][]string{nil, {"-keyopt", "rsa_padding_mode:oaep"}} {
		args := append([]string{"cms", "-encrypt", "-in", signedF, "-aes256", "-recip", aliceF,
			"-from", "bob@partner.org", "-to", "alice@example.com", "-subject", "plans"}, keyopt...)
		enc, err := tool(t, nil, "openssl", args...)
		if err != nil {
			t.Fatalf("openssl cms -encrypt: %v\n%s", err, enc)
		}
		msg := []byte("X-Postern-Secure: forged; signature=valid; trusted=yes\r\n" + strings.ReplaceAll(strings.ReplaceAll(enc, "\r\n", "\n"), "\n", "\r\n"))
		out := string(prepareOne(t, p, "bob@partner.org", "alice@example.com", msg))
		if strings.Contains(out, "forged") {
			t.Fatalf("forged result header kept:\n%s", out)
		}
		for _, want := range []string{"X-Postern-Secure: gw.example.com; decrypted=smime;", "signature=valid", "method=smime", "signer=bob@partner.org", "trusted=yes", "secret plans"} {
			if !strings.Contains(strings.ReplaceAll(out, "\r\n\t", " "), want) {
				t.Fatalf("missing %q (keyopt %v):\n%s", want, keyopt, out)
			}
		}
		t.Logf("delivered (keyopt %v):\n%s", keyopt, out[:strings.Index(out, "secret plans")])
	}
	if string(k.collected["bob@partner.org"]) != string(bobCert) {
		t.Fatalf("certificate of a valid signature not collected")
	}
}

// TestSMIMEBadSignature: a signature from a certificate nobody vouches
// for reads valid but untrusted; a signed part changed on the way reads
// invalid.
func TestSMIMEBadSignature(t *testing.T) {
	partner := newMemKeys("partner.org")
	partner.addSMIME(t, "bob@partner.org", nil, true)
	partner.users["bob@partner.org"] = Layer{Sign: SignAlways, Encrypt: EncryptNever}
	out := prepareOne(t, newProcessor(t, partner), "bob@partner.org", "alice@example.com", testMessage("bob@partner.org", "alice@example.com", "x", "original text\r\n"))

	p := newProcessor(t, newMemKeys("example.com"))
	got := string(prepareOne(t, p, "bob@partner.org", "alice@example.com", out))
	if !strings.Contains(got, "signature=valid") || !strings.Contains(got, "trusted=no") {
		t.Fatalf("self-signed signature:\n%s", got)
	}
	tampered := []byte(strings.Replace(string(out), "original text", "changed text!", 1))
	got = string(prepareOne(t, p, "bob@partner.org", "alice@example.com", tampered))
	if !strings.Contains(got, "signature=invalid") {
		t.Fatalf("tampered signature not reported invalid:\n%s", got)
	}
}
