package integration

import (
	"strings"
	"testing"
	"time"
)

// TestSecureSignerTrust: through a running appliance, the tester's
// findings. A partner's certificate (openssl req -x509: CA:TRUE) is not
// kept for an internal address it does not name; imported for its own
// address it vouches for its own signatures only, not for a certificate
// for ceo@example.com issued with its key; a valid signature whose signer
// does not name the From address is delivered with signer-mismatch and
// trusted=no; a key file without end is refused, not read.
func TestSecureSignerTrust(t *testing.T) {
	l := newSecureLab(t, "127.0.0.110")
	l.cli(t, "ca", "init")
	bobKey, bobCert := l.dir+"/bob.key", l.dir+"/bob.pem"
	mustTool(t, nil, "", "openssl", "req", "-x509", "-newkey", "rsa:3072", "-nodes", "-keyout", bobKey, "-out", bobCert,
		"-subj", "/CN=Bob", "-addext", "subjectAltName=email:bob@partner.example", "-days", "30")

	out, err := l.x.cli("keys", "import", bobCert, "--owner", "ceo@example.com")
	t.Logf("postern keys import bob.pem --owner ceo@example.com: exit %d: %s", exitCode(err), strings.TrimSpace(out))
	if exitCode(err) != 1 || !strings.Contains(out, `names "bob@partner.example, CN=Bob", not ceo@example.com`) {
		t.Fatalf("a certificate for someone else accepted: exit %d\n%s", exitCode(err), out)
	}
	imp := l.cli(t, "keys", "import", bobCert)
	if !strings.Contains(imp, "bob@partner.example") || !strings.Contains(imp, "encrypt,ca") {
		t.Fatalf("keys import:\n%s", imp)
	}

	// a certificate for ceo@example.com issued with bob's key
	ceoKey, ceoCSR, ceoCert := l.dir+"/ceo.key", l.dir+"/ceo.csr", l.dir+"/ceo.pem"
	mustTool(t, nil, "", "openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", ceoKey, "-out", ceoCSR,
		"-subj", "/CN=CEO", "-addext", "subjectAltName=email:ceo@example.com")
	mustTool(t, nil, "", "openssl", "x509", "-req", "-in", ceoCSR, "-CA", bobCert, "-CAkey", bobKey, "-days", "10", "-copy_extensions", "copy", "-out", ceoCert)
	inner := l.file(t, "inner.txt", "Content-Type: text/plain\n\nwire the money today\n")
	signed := func(cert, key, from, subject string) string {
		return mustTool(t, nil, "", "openssl", "cms", "-sign", "-in", inner, "-signer", cert, "-inkey", key, "-md", "sha256",
			"-from", from, "-to", "alice@example.com", "-subject", subject)
	}
	for _, tc := range []struct {
		name, cert, key, from string
		want                  []string
	}{
		{"issued with bob's key", ceoCert, ceoKey, "ceo@example.com", []string{"signature=valid", "signer=ceo@example.com", "trusted=no"}},
		{"bob as the CEO", bobCert, bobKey, "ceo@example.com", []string{"signature=valid", "signer=bob@partner.example", "signer-mismatch=ceo@example.com", "trusted=no"}},
		{"bob as bob", bobCert, bobKey, "bob@partner.example", []string{"signature=valid", "signer=bob@partner.example", "trusted=yes"}},
	} {
		mustSend(t, l.x.addr["smtp"], tc.from, []string{"alice@example.com"}, signed(tc.cert, tc.key, tc.from, tc.name))
		got := l.sink.waitFor(t, "alice@example.com", 20*time.Second)
		res := lineOf(unfold(got.Data), "X-Postern-Secure:")
		t.Logf("%s, From: %s: %s", tc.name, tc.from, res)
		for _, w := range tc.want {
			if !strings.Contains(res+";", w+";") {
				t.Fatalf("%s: result lacks %q:\n%s", tc.name, w, got.Data)
			}
		}
		if tc.from != "bob@partner.example" && strings.Contains(res, "trusted=yes") {
			t.Fatalf("%s: trusted:\n%s", tc.name, res)
		}
	}

	start := time.Now()
	out, err = l.x.cli("keys", "import", "/dev/zero")
	t.Logf("postern keys import /dev/zero: exit %d after %v: %s", exitCode(err), time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
	if exitCode(err) != 1 || !strings.Contains(out, "larger than 16 MiB") {
		t.Fatalf("keys import /dev/zero: exit %d\n%s", exitCode(err), out)
	}
	out, err = l.x.cli("keys", "generate", `x"@example.com`, "--smime")
	if exitCode(err) != 2 || !strings.Contains(out, "it has a quote") {
		t.Fatalf("keys generate with a quote: exit %d\n%s", exitCode(err), out)
	}
	out, err = l.x.cli("policy", "show", "--domain", "nope.example")
	if exitCode(err) != 1 || !strings.Contains(out, "no managed domain") {
		t.Fatalf("policy show of an unmanaged domain: exit %d\n%s", exitCode(err), out)
	}
}
