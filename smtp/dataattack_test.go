package smtp

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// sendSplit writes s to the client's connection in pieces cut at cuts,
// pausing between them so that the server reads them separately.
func (rc *rawClient) sendSplit(s string, cuts ...int) {
	rc.t.Helper()
	prev := 0
	for _, c := range append(cuts, len(s)) {
		if c <= prev || c > len(s) {
			continue
		}
		rc.send(s[prev:c])
		time.Sleep(15 * time.Millisecond)
		prev = c
	}
}

// TestDataEndSplitAcrossReads: the end of data is found and only CRLF.CRLF
// ends it whatever way the octets are cut into reads, including around the
// 32 KB read size; SMTP smuggling endings never end it, even split.
func TestDataEndSplitAcrossReads(t *testing.T) {
	next := startWireSink(t, "127.0.0.221", "8BITMIME")
	dir := newMemDir()
	dir.setDomain("dom.test", next.addr, TLSNone)
	gw := startGateway(t, fastConfig(t, dir))

	pad := strings.Repeat(strings.Repeat("p", 70)+"\r\n", readSize/72)
	smuggle := []string{"\n.\n", "\r\n.\n", "\n.\r\n", "\r.\r\n", "\r\n.\r", "\r\n.\rX\r\n", "\n.\r\r\n"}
	var cases []struct {
		name, data string
		cuts       []int
		want       string
	}
	add := func(name, data, want string, cuts ...int) {
		cases = append(cases, struct {
			name, data string
			cuts       []int
			want       string
		}{name, data, cuts, want})
	}
	for _, sm := range smuggle {
		body := "Subject: s\r\n\r\nx" + sm + "MAIL FROM:<evil@x.test>\r\n"
		data := body + ".\r\n"
		want := canonicalString(strings.Replace(body, "\r\n.\rX", "\r\n\rX", 1))
		if sm == "\r\n.\n" {
			// a line that starts with a period and is not "." alone
			// loses the period (RFC 5321 §4.5.2); the bare LF is content
			want = canonicalString(strings.Replace(body, "\r\n.\n", "\r\n\n", 1))
		}
		if sm == "\r\n.\r" {
			// "\r\n.\rMAIL..." unstuffs to "\r\n\rMAIL..."
			want = canonicalString(strings.Replace(body, "\r\n.\r", "\r\n\r", 1))
		}
		// every cut in and around the smuggled ending
		for cut := len("Subject: s\r\n\r\nx"); cut <= len("Subject: s\r\n\r\nx")+len(sm)+1; cut++ {
			add(fmt.Sprintf("%q cut at %d", sm, cut), data, want, cut)
		}
	}
	// the real end split at every position
	end := "Subject: e\r\n\r\nbody\r\n.\r\n"
	for cut := len(end) - 6; cut < len(end); cut++ {
		add(fmt.Sprintf("CRLF.CRLF cut at %d", cut), end, "Subject: e\r\n\r\nbody\r\n", cut)
	}
	// the end around the 32 KB read size, and dot-stuffed lines there
	for d := -6; d <= 6; d++ {
		n := readSize + d
		body := "Subject: big\r\n\r\n" + pad
		body += strings.Repeat("q", max(0, n-len(body)-len("\r\n..x\r\n.\r\n")))
		data := body + "\r\n..x\r\n.\r\n"
		add(fmt.Sprintf("end at read size %+d", d), data, body+"\r\n.x\r\n")
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc, _ := dialRaw(t, gw.addr)
			for _, c := range []string{"EHLO c.test", "MAIL FROM:<a@remote.test>", "RCPT TO:<x@dom.test>"} {
				expectCode(t, c, rc.cmd(c), "250")
			}
			expectCode(t, "DATA", rc.cmd("DATA"), "354")
			rc.sendSplit(tc.data+"NOOP\r\n", tc.cuts...)
			expectCode(t, "end of data", rc.reply(), "250 2.0.0 Ok: queued as")
			if r := rc.reply(); !strings.Contains(r, "successfully done nothing") {
				t.Fatalf("after the message: %q, want the NOOP's reply", r)
			}
			tx := next.waitFor(t, i+1, 10*time.Second)[i]
			content, err := checkWire(tx.Wire)
			if err != nil {
				t.Fatalf("on the wire: %v\n%q", err, tx.Wire)
			}
			if got := string(stripReceived(t, content)); got != tc.want {
				t.Fatalf("delivered %q, want %q", trunc(got), trunc(tc.want))
			}
		})
	}
}

func trunc(s string) string {
	if len(s) > 200 {
		return s[:100] + "…" + s[len(s)-100:]
	}
	return s
}

func canonicalString(s string) string { return string(canonical([]byte(s))) }

// TestDataSizeLimitBoundary: a body of exactly MaxMessageBytes is taken,
// one octet more is refused with 552, and the session goes on.
func TestDataSizeLimitBoundary(t *testing.T) {
	next := startWireSink(t, "127.0.0.222", "8BITMIME")
	dir := newMemDir()
	dir.setDomain("dom.test", next.addr, TLSNone)
	cfg := fastConfig(t, dir)
	cfg.MaxMessageBytes = 70000
	gw := startGateway(t, cfg)
	mk := func(n int) string {
		b := "Subject: z\r\n\r\n"
		for len(b)+100 <= n {
			b += strings.Repeat("z", 98) + "\r\n"
		}
		b += strings.Repeat("y", n-len(b)-2) + "\r\n"
		return b
	}
	rc, _ := dialRaw(t, gw.addr)
	rc.cmd("EHLO c.test")
	for _, tc := range []struct {
		n    int
		want string
	}{{70000, "250 2.0.0"}, {70001, "552"}, {69999, "250 2.0.0"}, {70002, "552"}} {
		expectCode(t, "MAIL", rc.cmd("MAIL FROM:<a@remote.test>"), "250")
		expectCode(t, "RCPT", rc.cmd("RCPT TO:<x@dom.test>"), "250")
		expectCode(t, "DATA", rc.cmd("DATA"), "354")
		body := mk(tc.n)
		if len(body) != tc.n {
			t.Fatalf("body %d, want %d", len(body), tc.n)
		}
		rc.send(body + ".\r\n")
		expectCode(t, fmt.Sprint(tc.n, " octets"), rc.reply(), tc.want)
		if tc.want != "250 2.0.0" {
			rc.cmd("RSET")
		}
	}
	expectCode(t, "NOOP", rc.cmd("NOOP"), "250")
}

// TestConcurrentBodiesStayApart: many sessions at once, with bodies of
// many sizes, some refused as too big and some cut off mid-body: every
// delivered message holds its own body and nothing of another's (the body
// and read buffers are pooled).
func TestConcurrentBodiesStayApart(t *testing.T) {
	next := startWireSink(t, "127.0.0.223", "8BITMIME")
	dir := newMemDir()
	dir.setDomain("dom.test", next.addr, TLSNone)
	cfg := fastConfig(t, dir)
	cfg.MaxMessageBytes = 200000
	gw := startGateway(t, cfg)
	const sessions, perSession = 12, 6
	bodyOf := func(s, m int) string {
		tag := fmt.Sprintf("S%02dM%02d", s, m)
		n := (s*perSession + m) * 7919 % 150000
		var b strings.Builder
		b.WriteString("Subject: " + tag + "\r\n\r\n")
		for b.Len() < n {
			b.WriteString(tag + strings.Repeat(string(rune('a'+(s+m)%26)), 60) + "\r\n")
		}
		return b.String()
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	want := map[string]string{}
	for s := 0; s < sessions; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc, _ := dialRaw(t, gw.addr)
			rc.cmd("EHLO c.test")
			for m := 0; m < perSession; m++ {
				rc.cmd("MAIL FROM:<a@remote.test>")
				rc.cmd("RCPT TO:<x@dom.test>")
				if r := rc.cmd("DATA"); !strings.HasPrefix(r, "354") {
					t.Errorf("DATA: %q", r)
					return
				}
				body := bodyOf(s, m)
				if m == 2 {
					// too big: refused, its octets must not reach another
					rc.send(strings.Repeat("X"+fmt.Sprintf("S%02dBIG", s)+strings.Repeat("x", 90)+"\r\n", 2100) + ".\r\n")
					if r := rc.reply(); !strings.HasPrefix(r, "552") {
						t.Errorf("too big: %q", r)
					}
					continue
				}
				rc.send(body + ".\r\n")
				r := rc.reply()
				if !strings.HasPrefix(r, "250 2.0.0") {
					t.Errorf("end of data: %q", r)
					return
				}
				mu.Lock()
				want[fmt.Sprintf("S%02dM%02d", s, m)] = body
				mu.Unlock()
			}
			// a session that leaves in the middle of a body
			rc.cmd("MAIL FROM:<a@remote.test>")
			rc.cmd("RCPT TO:<x@dom.test>")
			rc.cmd("DATA")
			rc.send(fmt.Sprintf("Subject: S%02dCUT\r\n\r\n", s) + strings.Repeat("c", 40000))
			rc.conn.Close()
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	txs := next.waitFor(t, len(want), 30*time.Second)
	time.Sleep(200 * time.Millisecond)
	txs = next.transactions()
	if len(txs) != len(want) {
		t.Fatalf("%d delivered, want %d", len(txs), len(want))
	}
	for _, tx := range txs {
		content, err := checkWire(tx.Wire)
		if err != nil {
			t.Fatalf("on the wire: %v", err)
		}
		got := stripReceived(t, content)
		tag := string(got[len("Subject: ") : len("Subject: ")+6])
		w, ok := want[tag]
		if !ok {
			t.Fatalf("delivered an unknown message %q", trunc(string(got)))
		}
		if !bytes.Equal(got, []byte(w)) {
			t.Fatalf("message %s: delivered %d octets %q, want %d %q", tag, len(got), trunc(string(got)), len(w), trunc(w))
		}
		delete(want, tag)
	}
}

// TestDataPipelinedAfterEnd: commands sent in the same packet as the end
// of data, a whole second transaction included, are read as commands after
// the first message, and each message gets only its own body; a long HELO
// name and recipient (a Received field near its largest) change nothing.
func TestDataPipelinedAfterEnd(t *testing.T) {
	next := startWireSink(t, "127.0.0.225", "8BITMIME")
	dir := newMemDir()
	dir.setDomain("dom.test", next.addr, TLSNone)
	long := strings.Repeat("d", 63) + "." + strings.Repeat("e", 63) + "." + strings.Repeat("f", 63) + "." + strings.Repeat("g", 61)
	dir.setDomain(long, next.addr, TLSNone)
	gw := startGateway(t, fastConfig(t, dir))
	rc, _ := dialRaw(t, gw.addr)
	expectCode(t, "EHLO", rc.cmd("EHLO "+long), "250")
	expectCode(t, "MAIL", rc.cmd("MAIL FROM:<a@remote.test>"), "250")
	expectCode(t, "RCPT", rc.cmd("RCPT TO:<"+strings.Repeat("l", 64)+"@"+long+">"), "250")
	expectCode(t, "DATA", rc.cmd("DATA"), "354")
	rc.send("Subject: one\r\n\r\nfirst\r\n.\r\nMAIL FROM:<b@remote.test>\r\nRCPT TO:<y@dom.test>\r\nDATA\r\n" +
		"Subject: two\r\n\r\n..second\r\n.\r\nNOOP\r\n")
	expectCode(t, "first end of data", rc.reply(), "250 2.0.0 Ok: queued as")
	expectCode(t, "MAIL", rc.reply(), "250")
	expectCode(t, "RCPT", rc.reply(), "250")
	expectCode(t, "DATA", rc.reply(), "354")
	expectCode(t, "second end of data", rc.reply(), "250 2.0.0 Ok: queued as")
	expectCode(t, "NOOP", rc.reply(), "250")
	txs := next.waitFor(t, 2, 10*time.Second)
	got := map[string]string{}
	for _, tx := range txs {
		content, err := checkWire(tx.Wire)
		if err != nil {
			t.Fatal(err)
		}
		got[tx.Mail] = string(stripReceived(t, content))
	}
	if got["MAIL FROM:<a@remote.test> BODY=8BITMIME"] != "Subject: one\r\n\r\nfirst\r\n" ||
		got["MAIL FROM:<b@remote.test> BODY=8BITMIME"] != "Subject: two\r\n\r\n.second\r\n" {
		t.Fatalf("delivered %q", got)
	}
}

// TestDataAndBDATMixed: DATA inside a BDAT transaction is refused (RFC
// 3030 §4.2), the BDAT message is unchanged by it, and a DATA message
// after a BDAT one (and the other way round) carries only its own body.
func TestDataAndBDATMixed(t *testing.T) {
	next := startWireSink(t, "127.0.0.226", "8BITMIME")
	dir := newMemDir()
	dir.setDomain("dom.test", next.addr, TLSNone)
	gw := startGateway(t, fastConfig(t, dir))
	rc, _ := dialRaw(t, gw.addr)
	rc.cmd("EHLO c.test")
	expectCode(t, "MAIL", rc.cmd("MAIL FROM:<a@remote.test>"), "250")
	expectCode(t, "RCPT", rc.cmd("RCPT TO:<x@dom.test>"), "250")
	c1 := "Subject: b1\r\n\r\n"
	rc.send("BDAT " + itoa(len(c1)) + "\r\n" + c1)
	expectCode(t, "BDAT", rc.reply(), "250")
	r := rc.cmd("DATA")
	if !strings.HasPrefix(r, "5") {
		t.Fatalf("DATA inside BDAT: %q", r)
	}
	// octets that would have been a DATA body are commands now
	expectCode(t, "body line as a command", rc.cmd("junk.\r\n."), "500")
	expectCode(t, "dot line as a command", rc.reply(), "500")
	c2 := "chunk2\r\n"
	rc.send("BDAT " + itoa(len(c2)) + " LAST\r\n" + c2)
	expectCode(t, "BDAT LAST", rc.reply(), "250 2.0.0 Ok: queued as")
	expectCode(t, "MAIL", rc.cmd("MAIL FROM:<b@remote.test>"), "250")
	expectCode(t, "RCPT", rc.cmd("RCPT TO:<x@dom.test>"), "250")
	expectCode(t, "DATA", rc.cmd("DATA"), "354")
	expectCode(t, "end of data", rc.cmd("Subject: d\r\n\r\ndata body\r\n."), "250 2.0.0 Ok: queued as")
	expectCode(t, "MAIL", rc.cmd("MAIL FROM:<c@remote.test>"), "250")
	expectCode(t, "RCPT", rc.cmd("RCPT TO:<x@dom.test>"), "250")
	c3 := "Subject: b3\r\n\r\nlast\r\n"
	rc.send("BDAT " + itoa(len(c3)) + " LAST\r\n" + c3)
	expectCode(t, "BDAT LAST", rc.reply(), "250 2.0.0 Ok: queued as")
	txs := next.waitFor(t, 3, 10*time.Second)
	got := map[string]string{}
	for _, tx := range txs {
		content, err := checkWire(tx.Wire)
		if err != nil {
			t.Fatal(err)
		}
		got[tx.Mail] = string(stripReceived(t, content))
	}
	want := map[string]string{
		"MAIL FROM:<a@remote.test> BODY=8BITMIME": c1 + c2,
		"MAIL FROM:<b@remote.test> BODY=8BITMIME": "Subject: d\r\n\r\ndata body\r\n",
		"MAIL FROM:<c@remote.test> BODY=8BITMIME": c3,
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("delivered %q, want %q", got, want)
		}
	}
}

// TestDataLongLineBounded: a DATA body that is one endless line, or
// endless bare LFs, is refused at its end (554 5.6.0 or 552) and the
// session goes on.
func TestDataLongLineBounded(t *testing.T) {
	next := startWireSink(t, "127.0.0.227", "8BITMIME")
	dir := newMemDir()
	dir.setDomain("dom.test", next.addr, TLSNone)
	cfg := fastConfig(t, dir)
	cfg.MaxMessageBytes = 100000
	gw := startGateway(t, cfg)
	rc, _ := dialRaw(t, gw.addr)
	rc.cmd("EHLO c.test")
	for _, tc := range []struct{ body, want string }{
		{strings.Repeat("x", 300000) + "\r\n", "552"},
		// each bare LF becomes CRLF: 120000 octets; the "." after a
		// bare LF would not end the data (RFC 5321 §4.1.1.4), CRLF does
		{strings.Repeat("\n", 60000) + "\r\n", "552"},
		{strings.Repeat("\n", 40000) + "\r\n", "250 2.0.0"},
	} {
		expectCode(t, "MAIL", rc.cmd("MAIL FROM:<a@remote.test>"), "250")
		expectCode(t, "RCPT", rc.cmd("RCPT TO:<x@dom.test>"), "250")
		expectCode(t, "DATA", rc.cmd("DATA"), "354")
		rc.send(tc.body + ".\r\n")
		expectCode(t, "end of data", rc.reply(), tc.want)
		if tc.want != "250 2.0.0" {
			rc.cmd("RSET")
		}
	}
	expectCode(t, "NOOP", rc.cmd("NOOP"), "250")
}
