package secure

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"postern/smtp"
)

// fuzzFixture is one gateway with keys for example.com and seed messages
// of every kind it reads: S/MIME enveloped (signed inside), PGP/MIME
// encrypted, multipart/signed of both kinds, plain.
type fuzzFixture struct {
	p     *Processor
	seeds [][]byte
}

var (
	fuzzOnce sync.Once
	fuzzFix  *fuzzFixture
)

func fuzzSetup(t testing.TB) *fuzzFixture {
	fuzzOnce.Do(func() {
		k := newMemKeys("example.com", "partner.org")
		k.addSmallSMIME(t, "alice@example.com")
		k.addPGP(t, "alice@example.com", true)
		k.addSmallSMIME(t, "bob@partner.org")
		k.addPGP(t, "bob@partner.org", true)
		p, err := New(Config{Keys: k, Hostname: "gw.example.com"})
		if err != nil {
			t.Fatal(err)
		}
		f := &fuzzFixture{p: p}
		for _, l := range []Layer{{Encrypt: EncryptAlways, Sign: SignAlways}, {Encrypt: EncryptAlways, Sign: SignAlways, Method: MethodPGP},
			{Encrypt: EncryptNever, Sign: SignAlways}, {Encrypt: EncryptNever, Sign: SignAlways, Method: MethodPGP}} {
			k.users["bob@partner.org"] = l
			// bob's gateway is this one too: mail from bob to alice is
			// "outgoing" when alice's domain is not managed; seeds are
			// made with a processor that sees alice as external
			k.managed["example.com"] = false
			vs := p.Prepare(context.Background(), smtp.Envelope{From: "bob@partner.org", Rcpts: []string{"alice@example.com"}},
				testMessage("bob@partner.org", "alice@example.com", "seed", "seed body\r\n"))
			k.managed["example.com"] = true
			if len(vs) == 1 && vs[0].Err == nil {
				f.seeds = append(f.seeds, vs[0].Content)
			}
		}
		k.managed["partner.org"] = false
		f.seeds = append(f.seeds, testMessage("bob@partner.org", "alice@example.com", "plain", "plain\r\n"))
		fuzzFix = f
	})
	return fuzzFix
}

// FuzzIncoming feeds incoming mail through the secure step (MIME, S/MIME,
// PGP/MIME parsing, decryption and verification): it never panics, every
// recipient gets exactly one outcome, and the result header the recipient
// reads is the gateway's alone, whatever copies the message carried.
func FuzzIncoming(f *testing.F) {
	fx := fuzzSetup(f)
	for _, s := range fx.seeds {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Add([]byte("Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b\r\n\r\nAAAA\r\n--b--\r\n"), true)
	f.Add([]byte("Content-Type: application/pkcs7-mime\r\n\r\nMIIB\r\n"), false)
	f.Fuzz(func(t *testing.T, msg []byte, forge bool) {
		if forge {
			msg = append([]byte("X-Postern-Secure: FORGED; signature=valid\r\n"), msg...)
		}
		vs := fx.p.Prepare(context.Background(), smtp.Envelope{ID: "F", From: "bob@partner.org", Rcpts: []string{"alice@example.com", "carol@example.com"}}, msg)
		seen := map[int]int{}
		for _, v := range vs {
			for _, i := range v.Rcpts {
				seen[i]++
			}
			if v.Err != nil {
				continue
			}
			hdr, _ := splitEntity(v.Content)
			n := 0
			for _, fl := range parseFields(hdr) {
				if fl.name == strings.ToLower(ResultHeader) {
					n++
					if !bytes.HasPrefix(bytes.TrimSpace(fl.raw[len(ResultHeader)+1:]), []byte("gw.example.com;")) {
						t.Fatalf("a result header not the gateway's: %q", fl.raw)
					}
				}
			}
			if n > 1 {
				t.Fatalf("%d result headers", n)
			}
		}
		if seen[0] != 1 || seen[1] != 1 || len(seen) != 2 {
			t.Fatalf("recipients' outcomes: %v", seen)
		}
	})
}

// FuzzMultipartParts: parts are found inside the body, and a body built
// from parts gives them back.
func FuzzMultipartParts(f *testing.F) {
	f.Add([]byte("--b\r\nA\r\n--b\r\nB\r\n--b--\r\n"), "b", "part one", "part two")
	f.Add([]byte("preamble\r\n--x \r\n\r\n--x--"), "x", "", "z")
	f.Fuzz(func(t *testing.T, body []byte, boundary, p1, p2 string) {
		parts, err := multipartParts(body, boundary)
		if err == nil {
			for _, p := range parts {
				if len(p) > 0 && !bytes.Contains(body, p) {
					t.Fatalf("part %q not in the body", p)
				}
			}
		}
		if boundary == "" || len(boundary) > 70 || strings.ContainsAny(boundary, "\r\n") ||
			strings.Contains(p1, "--"+boundary) || strings.Contains(p2, "--"+boundary) || strings.Contains(p1, "\r") || strings.Contains(p2, "\r") || strings.Contains(p1, "\n") || strings.Contains(p2, "\n") {
			return
		}
		built := []byte("pre\r\n--" + boundary + "\r\n" + p1 + "\r\n--" + boundary + "\r\n" + p2 + "\r\n--" + boundary + "--\r\n")
		got, err := multipartParts(built, boundary)
		if err != nil || len(got) != 2 || string(got[0]) != p1 || string(got[1]) != p2 {
			t.Fatalf("built from %q %q with %q: %q %v", p1, p2, boundary, got, err)
		}
	})
}
