package smtp

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestQuotedLocalPartsKeepTheirQuotes: an address is stored and sent on in
// the form RFC 5321 §4.1.2 requires, so a quoted local part cannot turn
// into parameters at the next hop (issue 9, item 2); MAIL FROM the same.
func TestQuotedLocalPartsKeepTheirQuotes(t *testing.T) {
	next := startWireSink(t, "127.0.20.10")
	dir := newMemDir()
	dir.setDomain("nousers.test", next.addr, TLSNone) // managed, no users: every local part
	gw := startGateway(t, fastConfig(t, dir))

	cases := []struct{ from, to, wantFrom, wantTo string }{
		{`<a@remote.test>`, `<"victim@external.org> ORCPT=rfc822;x"@nousers.test>`,
			`<a@remote.test>`, `<"victim@external.org> ORCPT=rfc822;x"@nousers.test>`},
		{`<"x> SIZE=1 BODY=8BITMIME"@remote.test>`, `<a@nousers.test>`,
			`<"x> SIZE=1 BODY=8BITMIME"@remote.test>`, `<a@nousers.test>`},
		{`<"odd sender"@remote.test>`, `<"quote\"and\\backslash"@nousers.test>`,
			`<"odd sender"@remote.test>`, `<"quote\"and\\backslash"@nousers.test>`},
		// Quotes that are not needed go; needed ones come.
		{`<"plain"@remote.test>`, `<"plain.name"@nousers.test>`, `<plain@remote.test>`, `<plain.name@nousers.test>`},
		{`<a@remote.test>`, `<a..b@nousers.test>`, `<a@remote.test>`, `<"a..b"@nousers.test>`},
		{`<a@remote.test>`, `<.dot@nousers.test>`, `<a@remote.test>`, `<".dot"@nousers.test>`},
		// Source routes are dropped (RFC 5321 §4.1.2, C.2); domains lower-cased.
		{`<@relay.test:a@Remote.TEST>`, `<@relay.test,@other.test:Mixed@NoUsers.Test>`, `<a@remote.test>`, `<Mixed@nousers.test>`},
	}
	for i, tc := range cases {
		rc, _ := dialRaw(t, gw.addr)
		rc.cmd("EHLO c.test")
		expectCode(t, "MAIL "+tc.from, rc.cmd("MAIL FROM:"+tc.from), "250")
		expectCode(t, "RCPT "+tc.to, rc.cmd("RCPT TO:"+tc.to), "250")
		expectCode(t, "DATA", rc.cmd("DATA"), "354")
		expectCode(t, "end of data", rc.cmd("Subject: "+itoa(i)+"\r\n\r\nbody\r\n."), "250 2.0.0 Ok: queued as")
		tx := next.waitFor(t, i+1, 10*time.Second)[i]
		if want := "MAIL FROM:" + tc.wantFrom; tx.Mail != want {
			t.Errorf("next hop got %q, want %q", tx.Mail, want)
		}
		if want := "RCPT TO:" + tc.wantTo; len(tx.Rcpts) != 1 || tx.Rcpts[0] != want {
			t.Errorf("next hop got %q, want %q", tx.Rcpts, want)
		}
		if !bytes.Contains(tx.Wire, []byte("\r\n\tfor "+tc.wantTo+";")) {
			t.Errorf("Received lacks %q:\n%s", "for "+tc.wantTo, tx.Wire)
		}
	}
}

// TestControlCharactersRefused: NUL and the other control characters are
// part of no address, host name or DSN parameter: 501 with the code for
// the field (issue 9, item 3), and the connection stays usable.
func TestControlCharactersRefused(t *testing.T) {
	dir := newMemDir()
	dir.setDomain("nousers.test", "127.0.20.11:1", TLSNone)
	gw := startGateway(t, fastConfig(t, dir))
	mail := "MAIL FROM:<a@remote.test>"
	mailU := "MAIL FROM:<a@remote.test> SMTPUTF8"
	cases := []struct {
		name string
		cmds []string // all but the last succeed
		want string
	}{
		{"NUL in recipient", []string{mail, "RCPT TO:<a\x00b@nousers.test>"}, "501 5.1.3"},
		{"NUL quoted", []string{mail, "RCPT TO:<\"a\x00b\"@nousers.test>"}, "501 5.1.3"},
		{"control as quoted-pair", []string{mail, "RCPT TO:<\"a\\\x01b\"@nousers.test>"}, "501 5.1.3"},
		{"DEL", []string{mail, "RCPT TO:<a\x7fb@nousers.test>"}, "501 5.1.3"},
		{"bare CR", []string{mail, "RCPT TO:<a\rb@nousers.test>"}, "501 5.1.3"},
		{"ESC in domain", []string{mail, "RCPT TO:<ab@nousers\x1b.test>"}, "501 5.1.3"},
		{"NUL in literal", []string{mail, "RCPT TO:<ab@[127.0.20.1\x00]>"}, "501 5.1.3"},
		{"bad IPv4 literal", []string{mail, "RCPT TO:<ab@[1.2.3.4.5]>"}, "501 5.1.3"},
		{"general literal", []string{mail, "RCPT TO:<ab@[x-tag:foo]>"}, "501 5.1.3"},
		{"C1 control with SMTPUTF8", []string{mailU, "RCPT TO:<a\u0085b@nousers.test>"}, "501 5.1.3"},
		{"invalid UTF-8 with SMTPUTF8", []string{mailU, "RCPT TO:<a\xffb@nousers.test>"}, "501 5.1.3"},
		{"8-bit without SMTPUTF8", []string{mail, "RCPT TO:<a\xffb@nousers.test>"}, "553 5.6.7"},
		{"NUL in sender", []string{"MAIL FROM:<a\x00b@remote.test>"}, "501 5.1.7"},
		{"control quoted in sender", []string{"MAIL FROM:<\"x\x01\"@remote.test>"}, "501 5.1.7"},
		{"ORCPT xtext NUL", []string{mail, "RCPT TO:<ok@nousers.test> ORCPT=rfc822;a+00b@x.test"}, "501 5.5.4"},
		{"ORCPT utf-8 control", []string{mail, "RCPT TO:<ok@nousers.test> ORCPT=utf-8;a\\x{1}b@x.test"}, "501 5.5.4"},
		{"ORCPT utf-8 DEL", []string{mail, "RCPT TO:<ok@nousers.test> ORCPT=utf-8;a\\x{7F}b@x.test"}, "501 5.5.4"},
		{"ORCPT utf-8 C1", []string{mail, "RCPT TO:<ok@nousers.test> ORCPT=utf-8;a\\x{85}b@x.test"}, "501 5.5.4"},
		{"ENVID xtext CR", []string{"MAIL FROM:<a@remote.test> ENVID=a+0Db"}, "501 5.5.4"},
		{"ENVID too long", []string{"MAIL FROM:<a@remote.test> ENVID=" + strings.Repeat("e", 101)}, "501 5.5.4"},
		{"EHLO with NUL", []string{"EHLO a\x00b"}, "501 5.5.2"},
		{"HELO with ESC", []string{"HELO a\x1bb"}, "501 5.5.2"},
		{"EHLO invalid UTF-8", []string{"EHLO a\xffb"}, "501 5.5.2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc, _ := dialRaw(t, gw.addr)
			expectCode(t, "EHLO", rc.cmd("EHLO c.test"), "250")
			var last string
			for i, c := range tc.cmds {
				last = rc.cmd(c)
				if i < len(tc.cmds)-1 && last[0] != '2' {
					t.Fatalf("%q: %q", c, last)
				}
			}
			expectCode(t, tc.name, last, tc.want)
			expectCode(t, "NOOP after "+tc.name, rc.cmd("NOOP"), "250")
		})
	}
	if n := gw.q.Len(); n != 0 {
		t.Fatalf("%d messages queued", n)
	}
}

// TestDSNFieldsEncoded: values the client gave (ORCPT, ENVID, addresses)
// reach a bounce report encoded for a US-ASCII message/delivery-status part
// (RFC 3461 §4, RFC 6533 §3), never raw.
func TestDSNFieldsEncoded(t *testing.T) {
	next := startWireSink(t, "127.0.20.12", "8BITMIME", "SMTPUTF8", "DSN")
	next.reject = func(line string) string {
		if strings.Contains(line, "@nousers.test") {
			return "550 5.1.1 no such user"
		}
		return ""
	}
	dir := newMemDir()
	dir.setDomain("nousers.test", next.addr, TLSNone)
	dir.setDomain("remote.test", next.addr, TLSNone)
	gw := startGateway(t, fastConfig(t, dir))

	rc, _ := dialRaw(t, gw.addr)
	for _, c := range []string{"EHLO c.test",
		`MAIL FROM:<"the sender"@remote.test> SMTPUTF8 ENVID=env+2Bid=x`,
		`RCPT TO:<"v@x> y"@nousers.test> ORCPT=utf-8;j\x{F6}rg\x{20}@x.test`,
		`RCPT TO:<rcpt2@nousers.test> ORCPT=rfc822;orig+20two@x.test`} {
		if c == `MAIL FROM:<"the sender"@remote.test> SMTPUTF8 ENVID=env+2Bid=x` {
			// '=' must be xtext-encoded: go-smtp refuses the raw one.
			expectCode(t, "raw = in ENVID", rc.cmd(c), "501 5.5.4")
			c = `MAIL FROM:<"the sender"@remote.test> SMTPUTF8 ENVID=env+2Bid+3Dx`
		}
		expectCode(t, c, rc.cmd(c), "250")
	}
	expectCode(t, "DATA", rc.cmd("DATA"), "354")
	expectCode(t, "end", rc.cmd("Subject: bounce me\r\n\r\nbody\r\n."), "250 2.0.0 Ok: queued as")

	// The rejected recipients come back to the sender as one DSN.
	var dsn wireTx
	waitUntil(t, "the DSN", 10*time.Second, func() bool {
		for _, tx := range next.transactions() {
			if tx.Mail == "MAIL FROM:<> BODY=8BITMIME" || strings.HasPrefix(tx.Mail, "MAIL FROM:<>") {
				dsn = tx
				return true
			}
		}
		return false
	})
	if len(dsn.Rcpts) != 1 || !strings.HasPrefix(dsn.Rcpts[0], `RCPT TO:<"the sender"@remote.test>`) {
		t.Fatalf("DSN recipients %q", dsn.Rcpts)
	}
	body, err := checkWire(dsn.Wire)
	if err != nil {
		t.Fatalf("DSN on the wire: %v", err)
	}
	report := string(body[bytes.Index(body, []byte("message/delivery-status")):])
	for _, want := range []string{
		"Original-Envelope-Id: env+2Bid+3Dx\r\n",
		`Original-Recipient: utf-8; j\x{F6}rg\x{20}@x.test` + "\r\n",
		`Final-Recipient: rfc822; "v@x> y"@nousers.test` + "\r\n",
		"Original-Recipient: rfc822; orig two@x.test\r\n",
		"Final-Recipient: rfc822; rcpt2@nousers.test\r\n",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	part := report[:strings.Index(report, "\r\n--")]
	for i := 0; i < len(part); i++ {
		if part[i] >= 0x80 || part[i] < 0x20 && part[i] != '\r' && part[i] != '\n' {
			t.Fatalf("delivery-status part has octet %#x: %q", part[i], around([]byte(part), i))
		}
	}
}

// lockedBuffer is a log destination shared by the gateway's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLogsQuoteClientStrings: what a client sends reaches the log only as
// slog attribute values, quoted by the handler; a log line never carries a
// raw control character a client chose.
func TestLogsQuoteClientStrings(t *testing.T) {
	var logs lockedBuffer
	next := startWireSink(t, "127.0.20.13")
	dir := newMemDir()
	dir.setDomain("nousers.test", next.addr, TLSNone)
	cfg := fastConfig(t, dir)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	gw := startGateway(t, cfg)

	rc, _ := dialRaw(t, gw.addr)
	for _, c := range []string{"EHLO evil\x1b[2Jname", "EHLO good\"<name> x", "MAIL FROM:<\"a\x00\"@remote.test>",
		`MAIL FROM:<"x y=z"@remote.test>`, "RCPT TO:<\"v\x1b\"@nousers.test>", `RCPT TO:<"v w"@nousers.test>`, "DATA"} {
		rc.cmd(c)
	}
	expectCode(t, "end", rc.cmd("Subject: x\r\n\r\nbody\r\n."), "250")
	rc.send("BDAT 5 \x1b[2J\r\nabcdeBDAT x\x00y\r\n")
	rc.reply()
	rc.reply()
	next.waitFor(t, 1, 10*time.Second)
	waitUntil(t, "the delivery log", 5*time.Second, func() bool { return strings.Contains(logs.String(), "smtp: delivery") })
	out := logs.String()
	for i := 0; i < len(out); i++ {
		if c := out[i]; c < 0x20 && c != '\n' || c == 0x7f {
			t.Fatalf("raw control character %#x in the log: %q", c, around([]byte(out), i))
		}
	}
	if !strings.Contains(out, `from="\"x y=z\"@remote.test"`) {
		t.Errorf("the sender is not a quoted attribute value:\n%s", out)
	}
}
