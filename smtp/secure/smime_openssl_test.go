package secure

import (
	"encoding/pem"
	"strings"
	"testing"
	"time"
)

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// TestSMIMEToOpenSSL: mail Postern signs and encrypts for an external
// recipient is decrypted and verified by `openssl cms`.
func TestSMIMEToOpenSSL(t *testing.T) {
	for _, kt := range []KeyTransport{TransportOAEP, TransportPKCS1} {
		t.Run(string(kt), func(t *testing.T) {
			k := newMemKeys("example.com")
			caCert, caKey, err := NewCA("Postern test CA", AlgoECDSA, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			ca := issuer(t, caCert, caKey)
			k.addSMIME(t, "alice@example.com", ca, true)
			bobCert, bobKey := k.addSMIME(t, "bob@partner.org", nil, false)
			k.users["alice@example.com"] = Layer{Sign: SignAlways, Encrypt: EncryptAlways}
			p, err := New(Config{Keys: k, Hostname: "gw.example.com", KeyTransport: kt})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			out := prepareOne(t, p, "alice@example.com", "bob@partner.org", testMessage("alice@example.com", "bob@partner.org", "hello", "Grüße from Alice\r\n"))
			if !strings.Contains(string(out), "application/pkcs7-mime; smime-type=enveloped-data") {
				t.Fatalf("not enveloped:\n%s", out)
			}
			dir := t.TempDir()
			certF := writeFile(t, dir, "bob.pem", pemOf("CERTIFICATE", bobCert))
			keyF := writeFile(t, dir, "bob.key", pemOf("PRIVATE KEY", bobKey))
			caF := writeFile(t, dir, "ca.pem", pemOf("CERTIFICATE", caCert))
			msgF := writeFile(t, dir, "msg.eml", out)
			dec, err := tool(t, nil, "openssl", "cms", "-decrypt", "-in", msgF, "-recip", certF, "-inkey", keyF)
			if err != nil {
				t.Fatalf("openssl cms -decrypt: %v\n%s", err, dec)
			}
			t.Logf("openssl cms -decrypt: %d octets, %s", len(dec), firstLine(dec))
			decF := writeFile(t, dir, "dec.eml", []byte(dec))
			ver, err := tool(t, nil, "openssl", "cms", "-verify", "-in", decF, "-CAfile", caF, "-purpose", "smimesign")
			if err != nil {
				t.Fatalf("openssl cms -verify: %v\n%s", err, ver)
			}
			if !strings.Contains(ver, "Verification successful") || !strings.Contains(ver, "Gr=C3=BC=C3=9Fe from Alice") {
				t.Fatalf("openssl cms -verify:\n%s", ver)
			}
			t.Logf("openssl cms -verify: %s", lineWith(ver, "Verification"))
			alg, _ := tool(t, nil, "openssl", "cms", "-cmsout", "-print", "-in", msgF)
			if !strings.Contains(alg, "aes-256-cbc") || strings.Contains(strings.ToLower(alg), "des-") || strings.Contains(alg, "rc2") {
				t.Fatalf("content encryption:\n%s", lineWith(alg, "algorithm"))
			}
			want := "rsaesOaep"
			if kt == TransportPKCS1 {
				want = "rsaEncryption"
			}
			if !strings.Contains(alg, want) {
				t.Fatalf("key transport is not %s:\n%s", want, alg)
			}
		})
	}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}
