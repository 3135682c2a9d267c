package appliance

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postern/ldapstore"
	"postern/smtp/secure"
)

// mustRun runs a third-party program (openssl, gpg) and fails the test
// when it is missing or fails (.ci/deps.sh installs them).
func mustRun(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s not installed (run .ci/deps.sh): %v", name, err)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// osslReq is `openssl req -x509` (CA:TRUE unless ext says otherwise);
// it returns the certificate's file.
func osslReq(t *testing.T, dir, name, subj string, ext ...string) string {
	t.Helper()
	cert := filepath.Join(dir, name+".pem")
	args := []string{"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", filepath.Join(dir, name+".key"), "-out", cert, "-days", "30", "-subj", subj}
	for _, e := range ext {
		args = append(args, "-addext", e)
	}
	mustRun(t, nil, "openssl", args...)
	return cert
}

// TestSecureCLIUsage: what `postern keys`, `ca` and `policy` refuse, with
// the exit code (2: a usage error, refused before the appliance is asked;
// 1: the appliance refuses) and a message that says what is wrong.
func TestSecureCLIUsage(t *testing.T) {
	a := startTest(t)
	if code, out := run(t, a, "", "domain", "add", "example.com", "--deliver-to", "127.0.0.1:25"); code != 0 {
		t.Fatalf("domain add: %d %s", code, out)
	}
	if code, out := run(t, a, "", "keys", "generate", "alice@example.com", "--smime", "--self-signed"); code != 0 {
		t.Fatalf("keys generate: %d %s", code, out)
	}
	dir := t.TempDir()
	bob := osslReq(t, dir, "bob", "/CN=Bob", "subjectAltName=email:bob@partner.example")
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("secret\n"), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"quote", []string{"keys", "generate", `x"@example.com`, "--smime"}, 2, `invalid address "x\"@example.com": it has a quote`},
		{"space", []string{"keys", "generate", "x y@example.com", "--pgp"}, 2, "it has a space"},
		{"control", []string{"keys", "generate", "x\x01@example.com", "--smime"}, 2, "it has a control character"},
		{"non-ASCII", []string{"keys", "generate", "jörg@example.com", "--smime"}, 2, "non-ASCII"},
		{"dots", []string{"keys", "generate", "a..b@example.com", "--smime"}, 2, "two in a row"},
		{"bracket", []string{"keys", "generate", "a<b@example.com", "--smime"}, 2, `the local part has '<'`},
		{"literal", []string{"keys", "generate", "a@[127.0.0.1]", "--smime"}, 2, "address literals"},
		{"long local part", []string{"keys", "generate", strings.Repeat("a", 65) + "@example.com", "--smime"}, 2, "longer than 64"},
		{"bad domain", []string{"keys", "generate", "a@exa_mple.com", "--smime"}, 2, `"exa_mple.com" is not a domain name`},
		{"algo", []string{"keys", "generate", "alice@example.com", "--smime", "--algo", "ed25519"}, 2, `--algo "ed25519": smime keys are rsa3072 or ecdsa`},
		{"selector", []string{"keys", "generate", "example.com", "--dkim", "--selector", "a.b"}, 2, `--selector "a.b"`},
		{"ca algo", []string{"ca", "init", "--algo", "ed25519"}, 2, "the CA's key is ecdsa or rsa3072"},
		{"import owner syntax", []string{"keys", "import", bob, "--owner", `x"@example.com`}, 2, `--owner: invalid address`},
		{"import owner with --ca", []string{"keys", "import", bob, "--owner", "bob@partner.example", "--ca"}, 2, "leave out --owner"},
		{"encrypt value", []string{"policy", "set", "--encrypt", "sometimes"}, 2, `encrypt "sometimes": want never, if-key or always`},
		{"sign value", []string{"policy", "set", "--sign", "maybe"}, 2, `sign "maybe": want never or always`},
		{"method value", []string{"policy", "set", "--method", "rot13"}, 2, `method "rot13": want smime or pgp`},
		{"no-key value", []string{"policy", "set", "--no-key", "drop"}, 2, `no-key "drop": want reject or bounce`},
		{"trigger control", []string{"policy", "set", "--trigger", "[s]\x1b[2J"}, 2, "without control characters"},
		{"global on a level", []string{"policy", "set", "--domain", "example.com", "--no-key", "bounce"}, 2, "global settings"},
		{"both levels", []string{"policy", "show", "--domain", "example.com", "--user", "alice@example.com"}, 2, "not both"},
		{"address as domain", []string{"policy", "show", "--domain", "alice@example.com"}, 2, "--domain wants a domain name"},
		{"domain as user", []string{"policy", "set", "--user", "example.com", "--sign", "always"}, 2, "--user wants an address"},
		{"user syntax", []string{"policy", "show", "--user", `x"@example.com`}, 2, "it has a quote"},
		{"show unmanaged domain", []string{"policy", "show", "--domain", "nope.example"}, 1, `no managed domain "nope.example"`},
		{"set unmanaged domain", []string{"policy", "set", "--domain", "nope.example", "--encrypt", "always"}, 1, `no managed domain "nope.example"`},
		{"show external user", []string{"policy", "show", "--user", "bob@partner.example"}, 1, "bob@partner.example is not in a managed domain"},
		{"show managed domain", []string{"policy", "show", "--domain", "example.com"}, 0, "policy of example.com"},
		{"show user", []string{"policy", "show", "--user", "alice@example.com"}, 0, "policy of alice@example.com"},
		{"delete nothing", []string{"keys", "delete", "nobody@nowhere.example"}, 1, "no key of nobody@nowhere.example to delete: the gateway holds none"},
		{"delete fingerprint", []string{"keys", "delete", "alice@example.com", "--fingerprint", "AA:BB"}, 1, "alice@example.com has no key with the fingerprint AA:BB"},
		{"import /dev/zero", []string{"keys", "import", "/dev/zero"}, 1, "certificate or key file /dev/zero is larger than 16 MiB"},
		{"import a directory", []string{"keys", "import", dir}, 1, "is a directory"},
		{"password /dev/zero", []string{"keys", "import", bob, "--password-file", "/dev/zero"}, 1, "the first line is longer than 4 KiB"},
		{"export password /dev/zero", []string{"keys", "export", "alice@example.com", "--private", "--password-file", "/dev/zero"}, 1, "the first line is longer than 4 KiB"},
		{"admin password /dev/zero", []string{"admin", "password", "--password-file", "/dev/zero"}, 1, "the first line is longer than 4 KiB"},
		{"clusterid /dev/zero", []string{"cluster", "join", "--id", "/dev/zero", "--password-file", pw, "--member", "127.0.0.1:1", "--self", "127.0.0.1:2"}, 1, "cluster identifier /dev/zero is larger than 64 KiB"},
		{"cluster check /dev/zero", []string{"cluster", "check", "--id", "/dev/zero", "--password-file", pw, "--member", "127.0.0.1:1", "--self", "127.0.0.1:2"}, 1, "larger than 64 KiB"},
		{"frontend attach /dev/zero", []string{"cluster", "frontend", "attach", "--id", "/dev/zero", "--password-file", pw, "--backend", "127.0.0.1:1", "--self", "127.0.0.1:2"}, 1, "larger than 64 KiB"},
		{"ldif import /dev/zero", []string{"ldif", "import", "/dev/zero"}, 1, "line too long (a record may hold 16 MiB)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := run(t, a, "", tc.args...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Fatalf("postern %q: exit %d, want %d with %q:\n%s", tc.args, code, tc.code, tc.want, out)
			}
		})
	}
	// the API refuses what the CLI refuses (the web menu and scripts use it)
	ctx := context.Background()
	if _, err := a.GenerateKey(ctx, KeyGenerate{Owner: `x"@example.com`, Kind: "smime"}); err == nil || !strings.Contains(err.Error(), "it has a quote") {
		t.Fatalf("API generate: %v", err)
	}
	if _, err := a.SetPolicy(ctx, PolicySet{Encrypt: "sometimes"}); err == nil || !strings.Contains(err.Error(), "want never, if-key or always") {
		t.Fatalf("API policy set: %v", err)
	}
	if _, err := a.ShowPolicy(ctx, "nope.example", ""); err == nil || !strings.Contains(err.Error(), "no managed domain") {
		t.Fatalf("API policy show: %v", err)
	}
	if _, err := a.ImportKeys(ctx, KeyImport{Data: make([]byte, maxKeyFile+1)}); err == nil || !strings.Contains(err.Error(), "more than the 16 MiB") {
		t.Fatalf("API import of 16 MiB + 1: %v", err)
	}
	// a key stored for such an address before the check is still listed
	// and deleted
	legacy := `x"@example.com`
	cert, _, err := secure.NewSMIME(legacy, secure.AlgoECDSA, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.storeSMIME(ctx, &owner{name: legacy}, cert, nil, "generated"); err != nil {
		t.Fatal(err)
	}
	if code, out := run(t, a, "", "keys", "list", legacy); code != 0 || !strings.Contains(out, legacy) {
		t.Fatalf("keys list %s: %d\n%s", legacy, code, out)
	}
	if code, out := run(t, a, "", "keys", "delete", legacy); code != 0 || !strings.Contains(out, "1 key of "+legacy+" deleted") {
		t.Fatalf("keys delete %s: %d\n%s", legacy, code, out)
	}
}

// TestKeysImportOwner: a certificate or OpenPGP key is kept only for an
// address or domain it names; --ca takes CA certificates only; the roots
// are the internal CA's and the imported anchors' entries, nothing else;
// a collected certificate names its external address.
func TestKeysImportOwner(t *testing.T) {
	a := startTest(t)
	ctx := context.Background()
	if code, out := run(t, a, "", "domain", "add", "example.com", "--deliver-to", "127.0.0.1:25"); code != 0 {
		t.Fatalf("domain add: %d %s", code, out)
	}
	dir := t.TempDir()
	bob := osslReq(t, dir, "bob", "/CN=Bob", "subjectAltName=email:bob@partner.example")
	dom := osslReq(t, dir, "dom", "/CN=partner2.example")
	dns := osslReq(t, dir, "dns", "/CN=Gateway", "subjectAltName=DNS:partner3.example")
	leaf := osslReq(t, dir, "leaf", "/CN=Leaf", "subjectAltName=email:leaf@partner.example", "basicConstraints=critical,CA:FALSE")
	pca := osslReq(t, dir, "pca", "/CN=Partner CA", "basicConstraints=critical,CA:TRUE", "keyUsage=keyCertSign")
	gnupg, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"GNUPGHOME=" + gnupg}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--kill", "gpg-agent").Run()
		os.RemoveAll(gnupg)
	})
	t.Setenv("GNUPGHOME", gnupg) // for the cleanup's gpgconf
	mustRun(t, env, "gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", "Bob <bob@partner.example>", "future-default", "default", "never")
	bobPGP := filepath.Join(dir, "bob.asc")
	os.WriteFile(bobPGP, []byte(mustRun(t, env, "gpg", "--batch", "--armor", "--export", "bob@partner.example")), 0o600)

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"someone else's", []string{"keys", "import", bob, "--owner", "ceo@example.com"}, 1,
			`the certificate names "bob@partner.example, CN=Bob", not ceo@example.com: a certificate is kept only for an address (or domain) it names`},
		{"another domain", []string{"keys", "import", bob, "--owner", "example.com"}, 1, "not example.com"},
		{"pgp someone else's", []string{"keys", "import", bobPGP, "--owner", "ceo@example.com"}, 1, `its user IDs name "bob@partner.example", not ceo@example.com`},
		{"the address it names", []string{"keys", "import", bob}, 0, "bob@partner.example"},
		{"its domain", []string{"keys", "import", bob, "--owner", "partner.example"}, 0, "partner.example"},
		{"pgp the address", []string{"keys", "import", bobPGP}, 0, "bob@partner.example"},
		{"pgp its domain", []string{"keys", "import", bobPGP, "--owner", "Partner.Example"}, 0, "partner.example"},
		{"domain certificate by CN", []string{"keys", "import", dom, "--owner", "partner2.example"}, 0, "partner2.example"},
		{"domain certificate, no --owner", []string{"keys", "import", dom}, 0, "partner2.example"},
		{"domain certificate elsewhere", []string{"keys", "import", dom, "--owner", "x@partner2.example"}, 1, "not x@partner2.example"},
		{"domain certificate by dNSName", []string{"keys", "import", dns, "--owner", "partner3.example"}, 0, "partner3.example"},
		{"names nobody usable", []string{"keys", "import", dns}, 1, `whose certificate? it names "partner3.example, CN=Gateway"`},
		{"a leaf as trust anchor", []string{"keys", "import", leaf, "--ca"}, 1, "is not a CA certificate (no basicConstraints CA:TRUE): import it without --ca"},
		{"a CA as trust anchor", []string{"keys", "import", pca, "--ca"}, 0, "trusted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := run(t, a, "", tc.args...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Fatalf("postern %q: exit %d, want %d with %q:\n%s", tc.args, code, tc.code, tc.want, out)
			}
		})
	}
	if _, out := run(t, a, "", "keys", "list", "ceo@example.com"); strings.Contains(out, "Bob") {
		t.Fatalf("bob's certificate is held for ceo:\n%s", out)
	}

	// roots: the anchor imported with --ca and nothing written elsewhere
	bobDER := derOf(t, bob)
	if err := a.store.Modify(ctx, a.keyEntryDN("bob@partner.example"), []ldapstore.Modification{{Op: ldapstore.ModAdd,
		Attr: ldapstore.Attribute{Type: attrCACert, Vals: []string{string(bobDER)}}}}, a.cfg.AdminDN()); err != nil {
		t.Fatal(err)
	}
	roots, err := (&ldapKeys{a: a}).Roots(ctx)
	if err != nil || len(roots) != 1 || string(roots[0]) != string(derOf(t, pca)) {
		t.Fatalf("roots: %d %v", len(roots), err)
	}

	// collect: a certificate of the external address it names, only
	k := &ldapKeys{a: a}
	if err := k.Collect(ctx, "ceo@example.com", bobDER); err == nil {
		t.Fatal("collected bob's certificate for an internal address")
	}
	if err := k.Collect(ctx, "carol@partner.example", bobDER); err == nil {
		t.Fatal("collected bob's certificate for carol")
	}
	if err := k.Collect(ctx, "bob@partner.example", bobDER); err != nil {
		t.Fatalf("collect bob's for bob: %v", err)
	}
}

func derOf(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", file)
	}
	if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
		t.Fatal(err)
	}
	return blk.Bytes
}
