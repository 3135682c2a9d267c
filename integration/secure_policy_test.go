package integration

import (
	"strings"
	"testing"
	"time"
)

// TestSecurePolicyAndDKIM: the policy inherited global → domain → user as
// `policy show` tells it; the subject trigger forces encryption and is
// removed; "always" without a key is refused at RCPT (554 5.7.1) or, with
// --no-key bounce, returned to the sender with a DSN; outgoing mail is
// DKIM-signed and dkimpy verifies it with the record `keys generate
// --dkim` printed.
func TestSecurePolicyAndDKIM(t *testing.T) {
	l := newSecureLab(t, "127.0.0.64")
	show := func(args ...string) string { return l.cli(t, append([]string{"policy", "show"}, args...)...) }
	row := func(out, name string) string { return strings.Join(strings.Fields(lineOf(out, name)), " ") }

	if got := row(show(), "encrypt"); got != "encrypt if-key default" {
		t.Fatalf("defaults: %q", got)
	}
	l.cli(t, "policy", "set", "--sign", "always")
	l.cli(t, "policy", "set", "--domain", "example.com", "--encrypt", "never", "--method", "pgp")
	l.cli(t, "policy", "set", "--user", "carol@example.com", "--encrypt", "always")
	out := show("--user", "carol@example.com")
	t.Logf("postern policy show --user carol@example.com:\n%s", out)
	for name, want := range map[string]string{
		"encrypt": "encrypt always user carol@example.com", "sign": "sign always global",
		"method": "method pgp domain example.com", "subject trigger": "subject trigger [secure] default",
	} {
		if got := row(out, name); got != want {
			t.Fatalf("policy show: %q, want %q", got, want)
		}
	}
	if got := row(show("--user", "dave@example.com"), "encrypt"); got != "encrypt never domain example.com" {
		t.Fatalf("dave inherits the domain's: %q", got)
	}
	l.cli(t, "policy", "set", "--sign", "inherit")
	l.cli(t, "policy", "set", "--domain", "example.com", "--encrypt", "inherit", "--method", "inherit")
	if out, err := l.x.cli("policy", "set", "--encrypt", "sometimes"); exitCode(err) != 2 || !strings.Contains(out, `encrypt "sometimes": want never, if-key or always`) {
		t.Fatalf("a bad value: exit %d (want 2, a usage error)\n%s", exitCode(err), out)
	}

	// a partner with a key, one without
	bobKey, bobCert := l.dir+"/bob.key", l.dir+"/bob.pem"
	mustTool(t, nil, "", "openssl", "req", "-x509", "-newkey", "rsa:3072", "-nodes", "-keyout", bobKey, "-out", bobCert,
		"-subj", "/CN=Bob", "-addext", "subjectAltName=email:bob@partner.org", "-days", "30")
	l.cli(t, "keys", "import", bobCert)

	// the subject trigger
	mustSend(t, l.x.addr["smtp"], "alice@example.com", []string{"bob@partner.org"}, plainMessage("alice@example.com", "bob@partner.org", "[secure] salaries", "confidential"))
	got := l.sink.waitFor(t, "bob@partner.org", 20*time.Second)
	if !strings.Contains(got.Data, "smime-type=enveloped-data") || !strings.Contains(got.Data, "Subject: salaries\n") {
		t.Fatalf("trigger: not encrypted or the trigger kept:\n%s", got.Data)
	}
	dec := mustTool(t, nil, "", "openssl", "cms", "-decrypt", "-in", l.file(t, "t.eml", got.Data), "-recip", bobCert, "-inkey", bobKey)
	if !strings.Contains(dec, "confidential") {
		t.Fatalf("openssl cms -decrypt:\n%s", dec)
	}
	// without the trigger and with encrypt never, plain
	l.cli(t, "policy", "set", "--user", "alice@example.com", "--encrypt", "never")
	mustSend(t, l.x.addr["smtp"], "alice@example.com", []string{"bob@partner.org"}, plainMessage("alice@example.com", "bob@partner.org", "lunch", "at noon"))
	if got := l.sink.waitFor(t, "bob@partner.org", 20*time.Second); !strings.Contains(got.Data, "at noon") {
		t.Fatalf("encrypt never: %s", got.Data)
	}
	// the trigger with no key known: refused at the end of data
	err := replyOf(send(l.x.addr["smtp"], "alice@example.com", []string{"carl@nokey.org"}, plainMessage("alice@example.com", "carl@nokey.org", "[secure] x", "y")))
	if err == nil || !strings.HasPrefix(err.Error(), "554 5.7.1 ") {
		t.Fatalf("trigger without a key: %v", err)
	}
	t.Logf("[secure] to a recipient without key: %v", err)

	// always, no key: 554 5.7.1 at RCPT; with --no-key bounce, a DSN
	l.cli(t, "policy", "set", "--user", "carol@example.com", "--encrypt", "always")
	err = replyOf(send(l.x.addr["smtp"], "carol@example.com", []string{"carl@nokey.org"}, plainMessage("carol@example.com", "carl@nokey.org", "x", "y")))
	if err == nil || !strings.HasPrefix(err.Error(), "554 5.7.1 ") || !strings.Contains(err.Error(), "carl@nokey.org") {
		t.Fatalf("always, no key: %v", err)
	}
	t.Logf("encrypt always, no key, no-key reject: %v", err)
	l.cli(t, "policy", "set", "--no-key", "bounce")
	mustSend(t, l.x.addr["smtp"], "carol@example.com", []string{"carl@nokey.org"}, plainMessage("carol@example.com", "carl@nokey.org", "bounce me", "y"))
	dsn := l.sink.waitFor(t, "carol@example.com", 20*time.Second)
	if !strings.Contains(dsn.Data, "Encryption required but no certificate or OpenPGP key is known for carl@nokey.org") || !strings.Contains(dsn.Data, "5.7.1") {
		t.Fatalf("DSN:\n%s", dsn.Data)
	}
	t.Logf("encrypt always, no key, no-key bounce: DSN %s", lineOf(dsn.Data, "Diagnostic-Code"))

	// a message that cannot be processed is never lost: deferred, the
	// reason in the queue
	l.cli(t, "policy", "set", "--user", "dave@example.com", "--sign", "always")
	mustSend(t, l.x.addr["smtp"], "dave@example.com", []string{"bob@partner.org"}, plainMessage("dave@example.com", "bob@partner.org", "unsigned", "z"))
	eventually(t, 20*time.Second, "the unsignable message deferred with its reason", func() string {
		q := l.cli(t, "queue", "list")
		if strings.Contains(q, "deferred") && strings.Contains(q, "451 4.7.0 Signing required but no S/MIME or OpenPGP key of dave@example.com") {
			t.Logf("postern queue list: %s", lineOf(q, "dave@example.com"))
			return ""
		}
		return q
	})

	// DKIM
	gen := l.cli(t, "keys", "generate", "example.com", "--dkim", "--selector", "s1")
	rec := lineOf(gen, "publish in DNS:")
	t.Logf("postern keys generate example.com --dkim --selector s1: %s", rec)
	name, txt, ok := strings.Cut(strings.TrimPrefix(rec, "publish in DNS: "), " IN TXT ")
	if !ok {
		t.Fatalf("no DNS record printed:\n%s", gen)
	}
	txt = strings.Trim(txt, `"`)
	mustSend(t, l.x.addr["smtp"], "alice@example.com", []string{"bob@partner.org"}, plainMessage("alice@example.com", "bob@partner.org", "dkim", "signed by example.com"))
	got = l.sink.waitFor(t, "bob@partner.org", 20*time.Second)
	if !strings.HasPrefix(got.Data, "DKIM-Signature:") {
		t.Fatalf("not DKIM-signed:\n%s", got.Data)
	}
	wire := strings.ReplaceAll(got.Data, "\n", "\r\n")
	res := mustTool(t, nil, wire, "/usr/bin/python3", "-c", dkimVerify, txt, name)
	t.Logf("dkimpy: %s", strings.TrimSpace(res))
	if _, err := tool(t, nil, strings.Replace(wire, "signed by example.com", "signed by example.org", 1), "/usr/bin/python3", "-c", dkimVerify, txt, name); err == nil {
		t.Fatal("dkimpy verified a changed body")
	}
}

// dkimVerify runs dkimpy (Debian's python3-dkim) on standard input, the
// public key given by its dnsfunc instead of a DNS lookup.
const dkimVerify = `
import sys, dkim
txt, name = sys.argv[1].encode(), sys.argv[2].encode()
ok = dkim.verify(sys.stdin.buffer.read(), dnsfunc=lambda n, timeout=5: txt if n == name else None)
print("dkim.verify:", ok)
sys.exit(0 if ok else 1)
`
