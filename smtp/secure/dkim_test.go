package secure

import (
	"context"
	"strings"
	"testing"

	"postern/smtp"
)

// dkimVerifier checks a message with dkimpy (Debian's python3-dkim), the
// public key given through its dnsfunc instead of DNS.
const dkimVerifier = `
import sys, dkim
txt = sys.argv[1].encode()
msg = sys.stdin.buffer.read()
def lookup(name, timeout=5):
    return txt if name == sys.argv[2].encode() else None
ok = dkim.verify(msg, dnsfunc=lookup)
print("dkim verify:", ok)
sys.exit(0 if ok else 1)
`

// TestDKIMVerifiedByDkimpy: outgoing mail of a managed domain is DKIM-signed
// and an independent verifier accepts it; a changed body fails.
func TestDKIMVerifiedByDkimpy(t *testing.T) {
	for _, algo := range []string{"rsa", AlgoEd25519} {
		t.Run(algo, func(t *testing.T) {
			k := newMemKeys("example.com")
			key, spki, err := NewDKIM(algo)
			if err != nil {
				t.Fatal(err)
			}
			k.dkim["example.com"] = PrivateKey{Owner: "example.com", Kind: KindDKIM, Key: key, Selector: "s2024", Fingerprint: "x"}
			name, txt, err := DKIMRecord("example.com", "s2024", spki)
			if err != nil {
				t.Fatal(err)
			}
			p := newProcessor(t, k)
			msg := testMessage("alice@example.com", "bob@partner.org", "dkim", "signed by the domain\r\n")
			out, e := p.Seal(context.Background(), smtp.Envelope{ID: "T1", From: "alice@example.com", Rcpts: []string{"bob@partner.org"}}, msg)
			if e != nil {
				t.Fatal(e)
			}
			if !strings.HasPrefix(string(out), "DKIM-Signature:") {
				t.Fatalf("not signed:\n%s", out)
			}
			res, err := tool(t, out, "/usr/bin/python3", "-c", dkimVerifier, txt, name+".")
			if err != nil {
				t.Fatalf("dkimpy: %v\n%s\n%s", err, res, out)
			}
			t.Logf("%s TXT %q; %s", name, txt, strings.TrimSpace(res))
			bad := []byte(strings.Replace(string(out), "signed by the domain", "signed by the d0main", 1))
			if res, err := tool(t, bad, "/usr/bin/python3", "-c", dkimVerifier, txt, name+"."); err == nil {
				t.Fatalf("a changed body verified: %s", res)
			}
			// mail between internal domains is not signed
			in, _ := p.Seal(context.Background(), smtp.Envelope{From: "alice@example.com", Rcpts: []string{"carol@example.com"}}, msg)
			if strings.HasPrefix(string(in), "DKIM-Signature:") {
				t.Fatal("internal mail DKIM-signed")
			}
		})
	}
}
