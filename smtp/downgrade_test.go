package smtp

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"

	"postern/internal/testnet"
)

// leaves returns the decoded bodies of the leaf parts of a message, in
// order, going into message/rfc822 parts.
func leaves(t *testing.T, raw []byte) []string {
	t.Helper()
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) {
		t.Fatalf("reading the delivered message: %v", err)
	}
	var out []string
	err = e.Walk(func(_ []int, p *message.Entity, err error) error {
		if err != nil && !message.IsUnknownCharset(err) {
			return err
		}
		if mt, _, _ := p.Header.ContentType(); strings.HasPrefix(mt, "multipart/") {
			return nil
		}
		b, err := io.ReadAll(p.Body)
		if err != nil {
			return err
		}
		if mt, _, _ := p.Header.ContentType(); mt == "message/rfc822" {
			out = append(out, leaves(t, b)...)
			return nil
		}
		out = append(out, string(b))
		return nil
	})
	if err != nil {
		t.Fatalf("walking the delivered message: %v", err)
	}
	return out
}

const multipart8bit = "Subject: parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
	"preamble\r\n--b1\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Köln, trailing space \r\n--b1 \r\n" +
	"Content-Type: application/octet-stream\r\n\r\n\x80\x81\xfe\xff binary-ish\r\n--b1\r\n" +
	"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b1\r\n" +
	"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nnaïve inner\r\n--b1--\r\nepilogue\r\n"

// TestDowngrade: a message is fitted to what the next hop offers (issue 9,
// item 5): SMTPUTF8 dropped when nothing needs it, 8-bit content converted
// to quoted-printable or base64 for a hop without 8BITMIME, and only what
// cannot be downgraded bounced (5.6.7, 5.6.3).
func TestDowngrade(t *testing.T) {
	full := startWireSink(t, "127.0.20.40", "8BITMIME", "SMTPUTF8", "DSN")
	noUTF8 := startWireSink(t, "127.0.20.41", "8BITMIME")
	seven := startWireSink(t, "127.0.20.42")
	dir := newMemDir()
	dir.setDomain("full.test", full.addr, TLSNone)
	dir.setDomain("remote.test", full.addr, TLSNone) // senders: DSNs arrive here
	dir.setDomain("noutf8.test", noUTF8.addr, TLSNone)
	dir.setDomain("seven.test", seven.addr, TLSNone)
	gw := startGateway(t, fastConfig(t, dir))

	cases := []struct {
		name    string
		mail    string // MAIL parameters
		rcpt    string
		content string
		sink    *wireSink
		mailArg string   // the MAIL line's parameters at the next hop
		same    bool     // delivered byte for byte (after our Received)
		leaves  []string // else: decoded leaf bodies
		bounce  string   // else: the DSN Status
	}{
		{name: "SMTPUTF8 all ASCII to a hop without it", mail: " SMTPUTF8", rcpt: "x@noutf8.test",
			content: "Subject: ascii\r\n\r\nplain\r\n", sink: noUTF8, mailArg: " BODY=8BITMIME", same: true},
		{name: "SMTPUTF8 8-bit body, ASCII headers, hop with 8BITMIME", mail: " SMTPUTF8 BODY=8BITMIME", rcpt: "x@noutf8.test",
			content: "Subject: b\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße\r\n",
			sink:    noUTF8, mailArg: " BODY=8BITMIME", same: true},
		{name: "SMTPUTF8 8-bit body to a 7-bit hop", mail: " SMTPUTF8 BODY=8BITMIME", rcpt: "x@seven.test",
			content: "Subject: c\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße\r\n",
			sink:    seven, leaves: []string{"Grüße\r\n"}},
		{name: "UTF-8 header to a hop without SMTPUTF8", mail: " SMTPUTF8", rcpt: "x@noutf8.test",
			content: "Subject: Grüße\r\n\r\nbody\r\n", bounce: "5.6.7"},
		{name: "UTF-8 header in a MIME part", mail: " SMTPUTF8", rcpt: "x@noutf8.test",
			content: "Subject: part\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Disposition: attachment; filename=\"ö.txt\"\r\n\r\nx\r\n--b--\r\n",
			bounce:  "5.6.7"},
		{name: "UTF-8 recipient to a hop without SMTPUTF8", mail: " SMTPUTF8", rcpt: "jörg@noutf8.test",
			content: "Subject: rcpt\r\n\r\nbody\r\n", bounce: "5.6.7"},
		{name: "SMTPUTF8 to a hop that has it", mail: " SMTPUTF8", rcpt: "jörg@full.test",
			content: "Subject: Grüße\r\n\r\nbody\r\n", sink: full, mailArg: " BODY=8BITMIME SMTPUTF8", same: true},
		{name: "8-bit non-MIME to a 7-bit hop", mail: " BODY=8BITMIME", rcpt: "x@seven.test",
			content: "Subject: legacy\r\n\r\ncaf\xe9 latin-1\r\n.dot line\r\n", sink: seven,
			leaves: []string{"caf\xe9 latin-1\r\n.dot line\r\n"}},
		{name: "8-bit without BODY= to a 7-bit hop", rcpt: "x@seven.test",
			content: "Subject: undeclared\r\n\r\n\xc3\xa9t\xc3\xa9\r\n", sink: seven, leaves: []string{"\xc3\xa9t\xc3\xa9\r\n"}},
		{name: "multipart to a 7-bit hop", mail: " BODY=8BITMIME", rcpt: "x@seven.test", content: multipart8bit, sink: seven,
			leaves: []string{"Grüße aus Köln, trailing space ", "\x80\x81\xfe\xff binary-ish", "\x89PNG\r\n\x1a\n", "naïve inner"}},
		{name: "multipart to a hop with 8BITMIME", mail: " BODY=8BITMIME", rcpt: "x@noutf8.test", content: multipart8bit,
			sink: noUTF8, mailArg: " BODY=8BITMIME", same: true},
		{name: "8-bit header without SMTPUTF8 to a 7-bit hop", mail: " BODY=8BITMIME", rcpt: "x@seven.test",
			content: "Subject: caf\xe9\r\n\r\nbody\r\n", bounce: "5.6.3"},
		{name: "8-bit inside base64", mail: " BODY=8BITMIME", rcpt: "x@seven.test",
			content: "Subject: b64\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n\r\naGk\xff=\r\n", bounce: "5.6.3"},
		{name: "7-bit to a 7-bit hop", rcpt: "x@seven.test", content: "Subject: seven\r\n\r\nplain\r\n", sink: seven, mailArg: "", same: true},
	}
	counts := map[*wireSink]int{}
	bounces := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc, _ := dialRaw(t, gw.addr)
			rc.cmd("EHLO c.test")
			expectCode(t, "MAIL", rc.cmd("MAIL FROM:<a@remote.test>"+tc.mail), "250")
			expectCode(t, "RCPT", rc.cmd("RCPT TO:<"+tc.rcpt+">"), "250")
			expectCode(t, "DATA", rc.cmd("DATA"), "354")
			// RFC 5321 §4.5.2: the client doubles a leading period.
			stuffed := strings.ReplaceAll("\r\n"+tc.content, "\r\n.", "\r\n..")[2:]
			expectCode(t, "end", rc.cmd(stuffed+"."), "250 2.0.0 Ok: queued as")
			if tc.bounce != "" {
				bounces++
				dsn := full.waitFor(t, counts[full]+bounces, 10*time.Second)[counts[full]+bounces-1]
				body, err := checkWire(dsn.Wire)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(dsn.Mail, "MAIL FROM:<>") || !bytes.Contains(body, []byte("Status: "+tc.bounce+"\r\n")) {
					t.Fatalf("want a DSN with Status %s, got %s\n%s", tc.bounce, dsn.Mail, body)
				}
				return
			}
			counts[tc.sink]++
			tx := tc.sink.waitFor(t, counts[tc.sink]+map[bool]int{true: bounces}[tc.sink == full], 10*time.Second)
			got := tx[len(tx)-1]
			if want := "MAIL FROM:<a@remote.test>" + tc.mailArg; tc.mailArg != "" || tc.same {
				if got.Mail != want {
					t.Errorf("next hop got %q, want %q", got.Mail, want)
				}
			}
			content, err := checkWire(got.Wire)
			if err != nil {
				t.Fatal(err)
			}
			content = stripReceived(t, content)
			if tc.same {
				if string(content) != tc.content {
					t.Fatalf("changed on the way:\n got %q\nwant %q", content, tc.content)
				}
				return
			}
			if tc.sink == seven && has8bit(content) {
				t.Fatalf("8-bit octets sent to a hop without 8BITMIME:\n%s", content)
			}
			if got := leaves(t, content); strings.Join(got, "|") != strings.Join(tc.leaves, "|") {
				t.Fatalf("decoded parts %q, want %q\n%s", got, tc.leaves, content)
			}
			if tc.name == "multipart to a 7-bit hop" && !bytes.Contains(content, []byte("\r\n\r\niVBORw0KGgo=\r\n--b1\r\n")) {
				t.Errorf("the base64 part was changed:\n%s", content)
			}
		})
	}
}

// TestDowngradeToPostfixSink: Postfix's smtp-sink, told not to offer
// 8BITMIME (-8; it offers no SMTPUTF8 either), receives an SMTPUTF8 message
// with an 8-bit body without SMTPUTF8 and BODY=8BITMIME, in quoted-printable.
func TestDowngradeToPostfixSink(t *testing.T) {
	bin := needTool(t, "smtp-sink")
	dumpDir, err := os.MkdirTemp("", "postern-downgrade-sink") // not under t.TempDir's 0700 parents
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dumpDir) })
	os.Chmod(dumpDir, 0o777) // smtp-sink drops privileges (-u) before writing
	dump := filepath.Join(dumpDir, "dump")
	addr := freePortOn(t, "127.0.20.43")
	args := []string{"-8", "-D", dump, addr, "16"}
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "postfix"}, args...)
	}
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	dir := newMemDir()
	dir.setDomain("pf.test", addr, TLSNone)
	gw := startGateway(t, fastConfig(t, dir))
	body := "Subject: to postfix\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGrüße\r\n"
	waitUntil(t, "smtp-sink", 5*time.Second, func() bool {
		_, err := sendMail(t, addr, "probe@remote.test", []string{"probe@pf.test"}, "Subject: probe\r\n\r\n")
		return err == nil
	})
	rc, _ := dialRaw(t, gw.addr)
	rc.cmd("EHLO c.test")
	rc.cmd("MAIL FROM:<a@remote.test> SMTPUTF8 BODY=8BITMIME")
	rc.cmd("RCPT TO:<x@pf.test>")
	rc.cmd("DATA")
	expectCode(t, "end", rc.cmd(body+"."), "250 2.0.0 Ok: queued as")
	var got string
	waitUntil(t, "the message in smtp-sink's dump", 10*time.Second, func() bool {
		b, _ := os.ReadFile(dump)
		got = string(b)
		return strings.Count(got, "X-Mail-Args: ") == 2
	})
	msg := got[strings.LastIndex(got, "X-Mail-Args: "):]
	for _, want := range []string{"X-Mail-Args: <a@remote.test>\n", "Content-Transfer-Encoding: quoted-printable\n", "\nGr=C3=BC=C3=9Fe\n"} {
		if !strings.Contains(msg, want) {
			t.Errorf("smtp-sink got no %q:\n%s", want, msg)
		}
	}
}

// freePortOn returns a free TCP address on ip.
func freePortOn(t testing.TB, ip string) string {
	t.Helper()
	return testnet.FreePort(t, ip)
}
