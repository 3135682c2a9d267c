package secure

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// gnupg is a GnuPG home of its own for one test; its agent is stopped at
// the end (gpgconf --kill for this home only).
type gnupg struct {
	t    testing.TB
	home string
}

func newGnuPG(t testing.TB) *gnupg {
	home, err := os.MkdirTemp("", "pgp")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(home, 0o700)
	g := &gnupg{t: t, home: home}
	t.Cleanup(func() {
		g.run(nil, "gpgconf", "--kill", "gpg-agent")
		os.RemoveAll(home)
	})
	return g
}

func (g *gnupg) run(stdin []byte, prog string, args ...string) (string, error) {
	g.t.Helper()
	os.Setenv("GNUPGHOME", g.home)
	defer os.Unsetenv("GNUPGHOME")
	return tool(g.t, stdin, prog, args...)
}

func (g *gnupg) gpg(stdin []byte, args ...string) string {
	g.t.Helper()
	out, err := g.run(stdin, "gpg", append([]string{"--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--trust-model", "always"}, args...)...)
	if err != nil {
		g.t.Fatalf("gpg %v: %v\n%s", args, err, out)
	}
	return out
}

var armouredMessage = regexp.MustCompile(`(?s)-----BEGIN PGP MESSAGE-----.*?-----END PGP MESSAGE-----`)

// TestPGPToGnuPG: mail Postern signs and encrypts with OpenPGP for an
// external recipient is decrypted and verified by `gpg --decrypt`; signed
// only, by `gpg --verify`. Keys go both ways: gpg imports Postern's
// public key, Postern reads gpg's.
func TestPGPToGnuPG(t *testing.T) {
	g := newGnuPG(t)
	g.gpg(nil, "--quick-gen-key", "Bob <bob@partner.org>", "future-default", "default", "never")
	bobPub := g.gpg(nil, "--armor", "--export", "bob@partner.org")
	k := newMemKeys("example.com")
	_, alicePub, aliceFpr := k.addPGP(t, "alice@example.com", true)
	k.pub["bob@partner.org"] = []PublicKey{{Owner: "bob@partner.org", Kind: KindPGP, Data: []byte(bobPub)}}
	imp := g.gpg(alicePub, "--import")
	t.Logf("gpg --import (Postern's key): %s", lineWith(imp, "imported"))
	k.users["alice@example.com"] = Layer{Sign: SignAlways, Encrypt: EncryptIfKey, Method: MethodPGP}
	p := newProcessor(t, k)

	out := string(prepareOne(t, p, "alice@example.com", "bob@partner.org", testMessage("alice@example.com", "bob@partner.org", "plans", "meet at noon\r\n")))
	if !strings.Contains(out, `multipart/encrypted; protocol="application/pgp-encrypted"`) {
		t.Fatalf("not PGP/MIME encrypted:\n%s", out)
	}
	block := armouredMessage.FindString(out)
	dir := t.TempDir()
	f := writeFile(t, dir, "msg.asc", []byte(block))
	dec, err := g.run(nil, "gpg", "--batch", "--trust-model", "always", "--status-fd", "2", "--decrypt", f)
	if err != nil {
		t.Fatalf("gpg --decrypt: %v\n%s", err, dec)
	}
	if !strings.Contains(dec, "meet at noon") || !strings.Contains(dec, "GOODSIG") || !strings.Contains(dec, aliceFpr) {
		t.Fatalf("gpg --decrypt:\n%s", dec)
	}
	t.Logf("gpg --decrypt: %s | %s", lineWith(dec, "Good signature"), lineWith(dec, "meet at noon"))

	// signed only
	k.users["alice@example.com"] = Layer{Sign: SignAlways, Encrypt: EncryptNever, Method: MethodPGP}
	out = string(prepareOne(t, p, "alice@example.com", "bob@partner.org", testMessage("alice@example.com", "bob@partner.org", "plans", "signed only\r\n")))
	_, body := splitEntity([]byte(out))
	hdr, _ := splitEntity([]byte(out))
	_, params := mediaType(get(parseFields(hdr), "content-type"))
	parts, err := multipartParts(body, params["boundary"])
	if err != nil || len(parts) != 2 {
		t.Fatalf("multipart/signed: %v\n%s", err, out)
	}
	_, sig := splitEntity(parts[1])
	data := writeFile(t, dir, "data", parts[0])
	sigF := writeFile(t, dir, "data.asc", sig)
	ver, err := g.run(nil, "gpg", "--batch", "--trust-model", "always", "--verify", sigF, data)
	if err != nil || !strings.Contains(ver, "Good signature from \"alice@example.com") {
		t.Fatalf("gpg --verify: %v\n%s", err, ver)
	}
	t.Logf("gpg --verify: %s", lineWith(ver, "Good signature"))
}

// TestPGPFromGnuPG: a message `gpg --encrypt --sign` made for an internal
// user is decrypted and verified by Postern; the secret key gpg exports
// is one Postern can use (keys both ways).
func TestPGPFromGnuPG(t *testing.T) {
	g := newGnuPG(t)
	g.gpg(nil, "--quick-gen-key", "Bob <bob@partner.org>", "rsa3072", "default", "never")
	g.gpg(nil, "--quick-gen-key", "Carol <carol@example.com>", "future-default", "default", "never")
	bobPub := g.gpg(nil, "--armor", "--export", "bob@partner.org")
	carolSecret := g.gpg(nil, "--armor", "--export-secret-keys", "carol@example.com")
	k := newMemKeys("example.com")
	_, alicePub, aliceFpr := k.addPGP(t, "alice@example.com", true)
	g.gpg(alicePub, "--import")
	k.pub["bob@partner.org"] = []PublicKey{{Owner: "bob@partner.org", Kind: KindPGP, Data: []byte(bobPub)}}
	carolFprs, err := PGPFingerprints([]byte(carolSecret))
	if err != nil {
		t.Fatal(err)
	}
	k.priv["carol@example.com"] = []PrivateKey{{Owner: "carol@example.com", Kind: KindPGP, Fingerprint: carolFprs[0], Key: []byte(carolSecret)}}
	p := newProcessor(t, k)
	dir := t.TempDir()
	for _, to := range []struct{ addr, fpr string }{{"alice@example.com", aliceFpr}, {"carol@example.com", carolFprs[0]}} {
		inner := writeFile(t, dir, "inner", []byte("Content-Type: text/plain; charset=us-ascii\r\n\r\nfrom gpg with love\r\n"))
		enc := g.gpg(nil, "--armor", "--encrypt", "--sign", "--local-user", "bob@partner.org", "--recipient", to.addr, "--output", "-", inner)
		msg := strings.ReplaceAll("From: Bob <bob@partner.org>\nTo: "+to.addr+"\nSubject: hi\nMIME-Version: 1.0\n"+
			"Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"XX\"\n\n--XX\n"+
			"Content-Type: application/pgp-encrypted\n\nVersion: 1\n\n--XX\nContent-Type: application/octet-stream\n\n"+enc+"\n--XX--\n", "\n", "\r\n")
		out := string(prepareOne(t, p, "bob@partner.org", to.addr, []byte(msg)))
		flat := strings.ReplaceAll(out, "\r\n\t", " ")
		for _, want := range []string{"decrypted=pgp", "key=" + to.fpr, "signature=valid", "method=pgp", "signer=bob@partner.org", "from gpg with love"} {
			if !strings.Contains(flat, want) {
				t.Fatalf("%s: missing %q:\n%s", to.addr, want, out)
			}
		}
		t.Logf("%s: %s", to.addr, lineWith(flat, ResultHeader))
	}
	_ = filepath.Join
}
