package integration

import (
	"strings"
	"testing"
	"time"
)

// TestSecurePGPWithGnuPG: OpenPGP both ways through a running appliance:
// gpg imports the key `postern keys export` gives and decrypts and verifies
// what the gateway sends; the gateway imports gpg's key and decrypts and
// verifies what `gpg --encrypt --sign` made; a private key exported with a
// password is one gpg imports and signs with.
func TestSecurePGPWithGnuPG(t *testing.T) {
	l := newSecureLab(t, "127.0.0.63")
	env := gnupgHome(t)
	gen := l.cli(t, "keys", "generate", "alice@example.com", "--pgp", "--algo", "ed25519")
	t.Logf("postern keys generate alice@example.com --pgp --algo ed25519:\n%s", gen)
	mustTool(t, env, "", "gpg", gpgArgs("--quick-gen-key", "Bob <bob@partner.org>", "default", "default", "never")...)
	bobPub := l.file(t, "bob.asc", mustTool(t, env, "", "gpg", gpgArgs("--armor", "--export", "bob@partner.org")...))
	imp := l.cli(t, "keys", "import", bobPub)
	if !strings.Contains(imp, "bob@partner.org") || !strings.Contains(imp, "pgp") {
		t.Fatalf("postern keys import (gpg's key):\n%s", imp)
	}
	t.Logf("postern keys import bob.asc (exported by gpg):\n%s", imp)
	alicePub := l.cli(t, "keys", "export", "alice@example.com", "--pgp")
	t.Logf("gpg --import (postern keys export): %s", lineOf(mustTool(t, env, alicePub, "gpg", gpgArgs("--import")...), "imported"))
	l.cli(t, "policy", "set", "--user", "alice@example.com", "--method", "pgp", "--sign", "always")

	mustSend(t, l.x.addr["smtp"], "alice@example.com", []string{"bob@partner.org"}, plainMessage("alice@example.com", "bob@partner.org", "pgp out", "only bob reads this"))
	got := l.sink.waitFor(t, "bob@partner.org", 20*time.Second)
	block := armouredPGPMessage.FindString(got.Data)
	if block == "" || strings.Contains(got.Data, "only bob reads") {
		t.Fatalf("not PGP/MIME encrypted:\n%s", got.Data)
	}
	dec, err := tool(t, env, "", "gpg", "--batch", "--trust-model", "always", "--decrypt", l.file(t, "m.asc", block))
	if err != nil || !strings.Contains(dec, "only bob reads this") || !strings.Contains(dec, `Good signature from "alice@example.com`) {
		t.Fatalf("gpg --decrypt: %v\n%s", err, dec)
	}
	t.Logf("gpg --decrypt: %s | %s", lineOf(dec, "Good signature"), lineOf(dec, "only bob"))

	// back: gpg encrypts for alice and signs as bob
	inner := l.file(t, "inner", "Content-Type: text/plain; charset=us-ascii\n\nbob answers\n")
	enc := mustTool(t, env, "", "gpg", gpgArgs("--armor", "--encrypt", "--sign", "--local-user", "bob@partner.org", "--recipient", "alice@example.com", "--output", "-", inner)...)
	msg := "From: Bob <bob@partner.org>\nTo: alice@example.com\nSubject: pgp in\nMIME-Version: 1.0\n" +
		"Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"XX\"\n\n--XX\n" +
		"Content-Type: application/pgp-encrypted\n\nVersion: 1\n\n--XX\nContent-Type: application/octet-stream\n\n" + enc + "\n--XX--\n"
	mustSend(t, l.x.addr["smtp"], "bob@partner.org", []string{"alice@example.com"}, msg)
	in := l.sink.waitFor(t, "alice@example.com", 20*time.Second)
	flat := unfold(in.Data)
	for _, want := range []string{"decrypted=pgp", "signature=valid", "method=pgp", "signer=bob@partner.org", "bob answers"} {
		if !strings.Contains(flat, want) {
			t.Fatalf("delivered to alice lacks %q:\n%s", want, in.Data)
		}
	}
	t.Logf("delivered to alice: %s", lineOf(flat, "X-Postern-Secure"))

	// the private key leaves only protected, and gpg takes it
	pw := l.file(t, "pw", "export secret\n")
	priv := l.cli(t, "keys", "export", "alice@example.com", "--pgp", "--private", "--password-file", pw)
	if !strings.Contains(priv, "BEGIN PGP PRIVATE KEY BLOCK") {
		t.Fatalf("private export:\n%s", priv)
	}
	env2 := gnupgHome(t)
	mustTool(t, env2, priv, "gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "export secret", "--import")
	sig := mustTool(t, env2, "signed by alice's exported key\n", "gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "export secret", "--clearsign")
	ver := mustTool(t, env, sig, "gpg", "--batch", "--trust-model", "always", "--verify")
	t.Logf("gpg --import (postern keys export --private) then --clearsign, --verify: %s", lineOf(ver, "Good signature"))
}
