package smtp

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestOutboundCanonical: whatever line ends a client sends, over DATA or
// BDAT, the next hop receives CRLF lines only, dot-stuffed, never a bare
// CR or LF, and a bare CR or LF never ends the data (RFC 5321 §2.3.8,
// §4.5.2; issue 9, item 6).
func TestOutboundCanonical(t *testing.T) {
	next := startWireSink(t, "127.0.20.30", "8BITMIME")
	dir := newMemDir()
	dir.setDomain("dom.test", next.addr, TLSNone)
	gw := startGateway(t, fastConfig(t, dir))

	cases := []struct {
		name string
		data string // after DATA, with the end of data; or the BDAT chunks
		bdat []string
		want string // content delivered after our Received header
	}{
		{name: "bare LF", data: "Subject: lf\n\nline1\nline2\r\n.\r\n", want: "Subject: lf\r\n\r\nline1\r\nline2\r\n"},
		{name: "bare CR", data: "Subject: cr\r\n\r\na\rb\r\n.\r\n", want: "Subject: cr\r\n\r\na\r\nb\r\n"},
		{name: "CR CR LF is one line end", data: "Subject: crcr\r\r\n\r\nx\r\r\n.\r\n", want: "Subject: crcr\r\n\r\nx\r\n"},
		{name: "LF dot CRLF does not end the data", data: "Subject: s\r\n\r\nx\n.\r\nMAIL FROM:<evil@x.test>\r\n.\r\n",
			want: "Subject: s\r\n\r\nx\r\n.\r\nMAIL FROM:<evil@x.test>\r\n"},
		{name: "CR dot CRLF does not end the data", data: "Subject: s\r\n\r\nx\r.\r\nRCPT TO:<evil@x.test>\r\n.\r\n",
			want: "Subject: s\r\n\r\nx\r\n.\r\nRCPT TO:<evil@x.test>\r\n"},
		{name: "the first CRLF.CRLF ends the data", data: "Subject: s\r\n\r\nx\r\n.\r\n\r\n.\r\n",
			want: "Subject: s\r\n\r\nx\r\n"}, // ends at the first CRLF.CRLF; the rest is commands
		{name: "dot CR line then the end", data: "Subject: s\r\n\r\na\r\n.\r\r\n.\r\n", want: "Subject: s\r\n\r\na\r\n\r\n"},
		{name: "leading dots", data: "Subject: s\r\n\r\n..x\r\n...\r\n.y\r\n.\r\n", want: "Subject: s\r\n\r\n.x\r\n..\r\ny\r\n"},
		// It would continue our Received field: an empty header section goes first.
		{name: "first line starts with white space", data: " folded: into Received?\r\nbody\r\n.\r\n", want: "\r\n folded: into Received?\r\nbody\r\n"},
		{name: "BDAT first line starts with a tab", bdat: []string{"\tby evil.test\r\n"}, want: "\r\n\tby evil.test\r\n"},
		{name: "BDAT with LF and no last line end", bdat: []string{"Subject: b\n\n.body\nend"}, want: "Subject: b\r\n\r\n.body\r\nend\r\n"},
		{name: "BDAT CR and LF in two chunks", bdat: []string{"Subject: b\r\n\r\na\r", "\nb\r\n"}, want: "Subject: b\r\n\r\na\r\nb\r\n"},
		{name: "BDAT a dot line", bdat: []string{"Subject: b\r\n\r\n.\r\n..\r\n"}, want: "Subject: b\r\n\r\n.\r\n..\r\n"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc, _ := dialRaw(t, gw.addr)
			for _, c := range []string{"EHLO c.test", "MAIL FROM:<a@remote.test>", "RCPT TO:<x@dom.test>"} {
				expectCode(t, c, rc.cmd(c), "250")
			}
			if tc.bdat == nil {
				expectCode(t, "DATA", rc.cmd("DATA"), "354")
				rc.send(tc.data + "NOOP\r\n")
			} else {
				for j, c := range tc.bdat {
					last := ""
					if j == len(tc.bdat)-1 {
						last = " LAST"
					}
					rc.send("BDAT " + itoa(len(c)) + last + "\r\n" + c)
				}
				rc.send("NOOP\r\n")
				for range tc.bdat[1:] {
					expectCode(t, "chunk", rc.reply(), "250 2.0.0")
				}
			}
			expectCode(t, "end of data", rc.reply(), "250 2.0.0 Ok: queued as")
			r := rc.reply()
			if tc.name == "the first CRLF.CRLF ends the data" {
				// "\r\n.\r\n" after the end is an empty line and a "." line.
				expectCode(t, "the empty line", r, "500")
				r = rc.reply()
				expectCode(t, "the dot line", r, "500")
				r = rc.reply()
			}
			if !strings.Contains(r, "successfully done nothing") {
				t.Fatalf("after the message: %q, want the NOOP's reply", r)
			}
			tx := next.waitFor(t, i+1, 10*time.Second)[i]
			content, err := checkWire(tx.Wire)
			if err != nil {
				t.Fatalf("on the wire: %v\n%q", err, tx.Wire)
			}
			if got := string(stripReceived(t, content)); got != tc.want {
				t.Fatalf("delivered %q, want %q", got, tc.want)
			}
		})
	}
}

// TestLongLinesRefused: a text line over 998 octets (RFC 5322 §2.1.1) is
// refused at the end of the data with 554 5.6.0 and the connection keeps
// its framing; 998 octets are fine.
func TestLongLinesRefused(t *testing.T) {
	next := startWireSink(t, "127.0.20.31", "8BITMIME")
	dir := newMemDir()
	dir.setDomain("dom.test", next.addr, TLSNone)
	gw := startGateway(t, fastConfig(t, dir))
	rc, _ := dialRaw(t, gw.addr)
	rc.cmd("EHLO c.test")
	cases := []struct {
		name string
		line int
		bdat bool
		want string
	}{
		{"998 octets", 998, false, "250 2.0.0 Ok: queued as"},
		{"999 octets", 999, false, "554 5.6.0"},
		{"beyond the command line limit", 5000, false, "554 5.6.0"},
		{"BDAT 998", 998, true, "250 2.0.0 Ok: queued as"},
		{"BDAT 1200", 1200, true, "554 5.6.0"},
		{"999 octets of bare-LF text", 999, false, "554 5.6.0"},
	}
	queued := 0
	for _, tc := range cases {
		expectCode(t, tc.name, rc.cmd("MAIL FROM:<a@remote.test>"), "250")
		expectCode(t, tc.name, rc.cmd("RCPT TO:<x@dom.test>"), "250")
		body := "Subject: long\r\n\r\n" + strings.Repeat("l", tc.line) + "\r\nshort\r\n"
		if strings.Contains(tc.name, "bare-LF") {
			body = strings.ReplaceAll(body, "\r\n", "\n")
		}
		if tc.bdat {
			rc.send("BDAT " + itoa(len(body)) + " LAST\r\n" + body)
		} else {
			expectCode(t, "DATA", rc.cmd("DATA"), "354")
			rc.send(body + "\r\n.\r\n")
		}
		expectCode(t, tc.name, rc.reply(), tc.want)
		if tc.want[0] == '2' {
			queued++
		} else {
			rc.cmd("RSET")
		}
		expectCode(t, "NOOP after "+tc.name, rc.cmd("NOOP"), "250")
	}
	for _, tx := range next.waitFor(t, queued, 10*time.Second) {
		if _, err := checkWire(tx.Wire); err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(tx.Wire, []byte(strings.Repeat("l", 998)+"\r\n")) {
			t.Fatal("the 998-octet line was changed")
		}
	}
}
