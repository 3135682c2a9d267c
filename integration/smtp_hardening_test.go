package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startPostfixSink runs Postfix's smtp-sink on ip, offering neither
// 8BITMIME nor SMTPUTF8 (-8), and returns its address and a reader of the
// transactions it dumped (its X-Mail-Args/X-Rcpt-Args lines show the
// MAIL and RCPT arguments as they came over the wire).
func startPostfixSink(t *testing.T, ip string) (string, func() string) {
	t.Helper()
	bin := requireTool(t, "smtp-sink")
	dir, err := os.MkdirTemp("", "postern-it-sink") // smtp-sink drops to -u, so not under t.TempDir's 0700 parents
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777)
	dump := filepath.Join(dir, "dump")
	addr := freePort(t, ip)
	args := []string{"-8", "-D", dump, addr, "16"}
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "postfix"}, args...)
	}
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return addr, func() string {
		b, _ := os.ReadFile(dump)
		return string(b)
	}
}

// TestSMTPHardeningThroughAppliance: issue 9's SMTP inputs through a
// running appliance with real clients: swaks sends a quoted local part that
// would be parameters if unquoted, an address with a control character,
// and an 8-bit body; Postfix's smtp-sink, without 8BITMIME and SMTPUTF8,
// gets the quoted address as it must be and the body in quoted-printable.
func TestSMTPHardeningThroughAppliance(t *testing.T) {
	a := startAppliance(t, "127.0.20.60")
	sinkAddr, dump := startPostfixSink(t, "127.0.20.60")
	if out, err := a.cli("domain", "add", "nousers.test", "--deliver-to", sinkAddr, "--tls", "none"); err != nil {
		t.Fatalf("domain add: %v\n%s", err, out)
	}

	out, _ := swaks(t, a, "--from", "a@remote.test", "--to", "bad\x01name@nousers.test")
	if !strings.Contains(out, "501 5.1.3") {
		t.Fatalf("a control character in the address was not refused with 501 5.1.3:\n%s", out)
	}
	out, err := swaks(t, a, "--from", `"odd sender"@remote.test`, "--to", `"victim@external.org> ORCPT=rfc822;x"@nousers.test`,
		"--header", "Subject: hardening", "--body", "Grüße aus Köln")
	if err != nil || !strings.Contains(out, "queued as") {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	var got string
	deadline := time.Now().Add(30 * time.Second)
	for got = dump(); !strings.Contains(got, "Subject: hardening"); got = dump() {
		if time.Now().After(deadline) {
			t.Fatalf("smtp-sink got nothing in 30 s:\n%s", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{
		"X-Mail-Args: <\"odd sender\"@remote.test>\n",
		"X-Rcpt-Args: <\"victim@external.org> ORCPT=rfc822;x\"@nousers.test>\n",
		"for <\"victim@external.org> ORCPT=rfc822;x\"@nousers.test>;",
		"Content-Transfer-Encoding: quoted-printable\n",
		"Gr=C3=BC=C3=9Fe aus K=C3=B6ln",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("smtp-sink's dump lacks %q:\n%s", want, got)
		}
	}
}
