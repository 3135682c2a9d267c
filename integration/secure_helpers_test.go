package integration

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// secureLab is one appliance with example.com managed (delivered to a
// sink) and every other domain relayed to the same sink, for secure mail.
type secureLab struct {
	x    *appliance
	sink *sink
	dir  string
}

func newSecureLab(t *testing.T, ip string) *secureLab {
	t.Helper()
	s := startSink(t, ip)
	x := startAppliance(t, ip)
	l := &secureLab{x: x, sink: s, dir: t.TempDir()}
	l.cli(t, "domain", "add", "example.com", "--deliver-to", s.addr)
	l.cli(t, "relay", "networks", "127.0.0.0/8")
	l.cli(t, "relay", "smarthost", s.addr)
	return l
}

// cli runs a postern command and fails the test when it fails.
func (l *secureLab) cli(t *testing.T, args ...string) string {
	t.Helper()
	out, err := l.x.cli(args...)
	if err != nil {
		t.Fatalf("postern %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (l *secureLab) file(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(l.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// send submits a message over SMTP; the error is the server's reply.
func send(addr, from string, to []string, msg string) error {
	c, err := gosmtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return err
	}
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, strings.ReplaceAll(strings.ReplaceAll(msg, "\r\n", "\n"), "\n", "\r\n")); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func mustSend(t *testing.T, addr, from string, to []string, msg string) {
	t.Helper()
	if err := send(addr, from, to, msg); err != nil {
		t.Fatalf("SMTP from %s to %v: %v", from, to, err)
	}
}

func plainMessage(from, to, subject, body string) string {
	return "From: <" + from + ">\nTo: <" + to + ">\nSubject: " + subject + "\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <" +
		strings.ReplaceAll(subject, " ", "-") + "@example.com>\nContent-Type: text/plain; charset=us-ascii\n\n" + body + "\n"
}

// waitFor returns the first message the sink got for rcpt after skip
// messages.
func (s *sink) waitFor(t *testing.T, rcpt string, d time.Duration) sunk {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		s.mu.Lock()
		for i, m := range s.msgs {
			for _, r := range m.To {
				if strings.EqualFold(r, rcpt) {
					s.msgs = append(s.msgs[:i:i], s.msgs[i+1:]...)
					s.mu.Unlock()
					return m
				}
			}
		}
		s.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no message for %s within %v", rcpt, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var armouredPGPMessage = regexp.MustCompile(`(?s)-----BEGIN PGP MESSAGE-----.*?-----END PGP MESSAGE-----`)

// gnupgHome is a GnuPG home directory of its own; its agent (started by
// gpg for this home) is stopped by gpgconf at the end.
func gnupgHome(t *testing.T) []string {
	t.Helper()
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"GNUPGHOME=" + home}
	t.Cleanup(func() {
		tool(t, env, "", "gpgconf", "--kill", "gpg-agent")
		os.RemoveAll(home)
	})
	return env
}

func gpgArgs(args ...string) []string {
	return append([]string{"--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--trust-model", "always"}, args...)
}

func lineOf(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// unfold joins folded header lines, so a field reads as one line.
func unfold(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\n\t", " "), "\n ", " ")
}

// replyOf renders an SMTP error as "554 5.7.1 text" (nil stays nil).
func replyOf(err error) error {
	var se *gosmtp.SMTPError
	if errors.As(err, &se) {
		return fmt.Errorf("%d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], se.Message)
	}
	return err
}
