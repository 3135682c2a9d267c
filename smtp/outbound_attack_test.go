package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// fakeHop is a next hop that keeps RFC 5321 transaction state as Postfix
// does (a MAIL inside a transaction is "503 5.5.1 Error: nested MAIL
// command") and answers DATA as dataReply says for each transaction.
type fakeHop struct {
	addr      string
	ext       []string
	dataReply func(n int) string       // reply to DATA of transaction n; "" = 354
	rcptReply func(line string) string // reply to a RCPT line; "" = 250
	dropAt    string                   // close the connection on the command starting with this
	pipelined bool                     // a command came with more behind it, without PIPELINING
	extra     string                   // sent after the reply to the end of data
	extraOn   int                      // of transaction extraOn only (0: every one)
	mu        sync.Mutex
	bodies    [][]byte
	cmds      []string
}

func startFakeHop(t *testing.T, ip string, ext ...string) *fakeHop {
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	h := &fakeHop{addr: l.Addr().String(), ext: ext}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); h.serve(c) }()
		}
	}()
	return h
}

func (h *fakeHop) serve(c net.Conn) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	say := func(s string) {
		w.WriteString(s + "\r\n")
		if r.Buffered() == 0 {
			w.Flush()
		}
	}
	say("220 fake.test ESMTP")
	inTx, rcpts, n := false, 0, 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		h.mu.Lock()
		h.cmds = append(h.cmds, line)
		if r.Buffered() > 0 && !slices.Contains(h.ext, "PIPELINING") {
			h.pipelined = true
		}
		h.mu.Unlock()
		if h.dropAt != "" && strings.HasPrefix(line, h.dropAt) {
			w.Flush()
			return
		}
		verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch {
		case verb == "EHLO":
			say("250-fake.test")
			for _, e := range h.ext {
				say("250-" + e)
			}
			say("250 8BITMIME")
		case verb == "MAIL":
			if inTx {
				say("503 5.5.1 Error: nested MAIL command")
				continue
			}
			inTx, rcpts = true, 0
			say("250 2.1.0 Ok")
		case verb == "RCPT":
			if !inTx {
				say("503 5.5.1 Error: need MAIL command")
				continue
			}
			if h.rcptReply != nil {
				if rep := h.rcptReply(line); rep != "" {
					say(rep)
					continue
				}
			}
			rcpts++
			say("250 2.1.5 Ok")
		case verb == "DATA":
			n++
			if !inTx || rcpts == 0 {
				say("503 5.5.1 Error: need RCPT command")
				continue
			}
			if rep := h.dataReply(n); rep != "" {
				say(rep)
				continue
			}
			say("354 End data with <CR><LF>.<CR><LF>")
			var body bytes.Buffer
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				body.WriteString(l)
			}
			h.mu.Lock()
			h.bodies = append(h.bodies, body.Bytes())
			h.mu.Unlock()
			inTx = false
			if h.extraOn == 0 || h.extraOn == n {
				say("250 2.0.0 Ok: queued" + h.extra)
			} else {
				say("250 2.0.0 Ok: queued")
			}
		case verb == "RSET":
			inTx = false
			say("250 2.0.0 Ok")
		case verb == "QUIT":
			say("221 2.0.0 Bye")
			return
		default:
			say("502 5.5.2 Error: command not recognized")
		}
	}
}

func dialHop(t *testing.T, h *fakeHop) *outConn {
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	oc := newOutConn(c, "fake.test", nil, func() bool { return true }, 5*time.Second)
	oc.conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := oc.reply(220); err != nil {
		t.Fatal(err)
	}
	if oc.ext, err = oc.hello("gw.test"); err != nil {
		t.Fatal(err)
	}
	return oc
}

// TestOutboundDataRefusedResets: a next hop that refuses DATA after
// accepting recipients (a 4xx or 5xx, with or without pipelining) leaves
// its transaction open; the connection must be reset before it is reused,
// or the next message's MAIL meets "503 nested MAIL command" and its
// recipients are bounced for a reply that was never about them.
func TestOutboundDataRefusedResets(t *testing.T) {
	for _, tc := range []struct {
		name string
		ext  []string
		rep  string
	}{
		{"pipelined 451", []string{"PIPELINING"}, "451 4.3.0 Error: queue file write error"},
		{"pipelined 554", []string{"PIPELINING"}, "554 5.5.1 Error: no valid recipients"},
		{"not pipelined 452", nil, "452 4.3.1 Insufficient system storage"},
		{"multi-line 451", nil, "451-4.3.0 first\r\n451 4.3.0 second"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startFakeHop(t, "127.0.0.224", tc.ext...)
			h.dataReply = func(n int) string {
				if n == 1 {
					return tc.rep
				}
				return ""
			}
			oc := dialHop(t, h)
			tx, err := oc.transaction("MAIL FROM:<a@x.test>", []string{"RCPT TO:<b@dom.test>"}, []byte("Subject: 1\r\n\r\none\r\n"))
			if err != nil {
				t.Fatalf("first transaction: %v", err)
			}
			var se *gosmtp.SMTPError
			if !errors.As(tx.data, &se) || se.Code != atoiCode(tc.rep) {
				t.Fatalf("first DATA reply %v, want %s", tx.data, tc.rep[:3])
			}
			tx, err = oc.transaction("MAIL FROM:<a@x.test>", []string{"RCPT TO:<c@dom.test>"}, []byte("Subject: 2\r\n\r\ntwo\r\n"))
			if err != nil || tx.mail != nil || tx.data != nil || len(tx.rcpts) != 1 || tx.rcpts[0] != nil {
				t.Fatalf("second transaction on the same connection: %+v, %v", tx, err)
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			if len(h.bodies) != 1 || string(h.bodies[0]) != "Subject: 2\r\n\r\ntwo\r\n" {
				t.Fatalf("bodies %q", h.bodies)
			}
		})
	}
}

func atoiCode(s string) int { return int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0') }

// TestWriteStuffed: every line that starts with a period is doubled, and
// the end-of-data line always stands on a line of its own, even when the
// content does not end with CRLF.
func TestWriteStuffed(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ".\r\n"},
		{"a\r\n", "a\r\n.\r\n"},
		{".\r\n", "..\r\n.\r\n"},
		{"a\r\n.\r\n..\r\n.b\r\n", "a\r\n..\r\n...\r\n..b\r\n.\r\n"},
		{"no line end", "no line end\r\n.\r\n"},
		{"a\r\n.", "a\r\n..\r\n.\r\n"},
		{"a\r\nlast\r", "a\r\nlast\r\n.\r\n"},
	} {
		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		if err := writeStuffed(w, []byte(tc.in)); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		if b.String() != tc.want {
			t.Errorf("writeStuffed(%q) = %q, want %q", tc.in, b.String(), tc.want)
		}
	}
}

// TestOutboundRepliesAttributed: each recipient gets the reply to its own
// RCPT, multi-line replies included, pipelined or not; without PIPELINING
// no command is sent before the reply to the one before; a connection that
// drops mid-group leaves the recipients without a reply unanswered (an
// error, never another recipient's reply).
func TestOutboundRepliesAttributed(t *testing.T) {
	rcpts := []string{"RCPT TO:<a@dom.test>", "RCPT TO:<no1@dom.test>", "RCPT TO:<b@dom.test>", "RCPT TO:<no2@dom.test>"}
	for _, tc := range []struct {
		name string
		ext  []string
		drop string
	}{
		{"pipelined", []string{"PIPELINING"}, ""},
		{"not pipelined", nil, ""},
		{"pipelined, dropped at the third RCPT", []string{"PIPELINING"}, "RCPT TO:<b@"},
		{"not pipelined, dropped at the third RCPT", nil, "RCPT TO:<b@"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startFakeHop(t, "127.0.0.228", tc.ext...)
			h.dataReply = func(int) string { return "" }
			h.dropAt = tc.drop
			h.rcptReply = func(line string) string {
				switch {
				case strings.Contains(line, "<no1@"):
					return "550-5.1.1 <no1@dom.test>: Recipient address rejected:\r\n550 5.1.1 User unknown"
				case strings.Contains(line, "<no2@"):
					return "450 4.2.0 <no2@dom.test>: greylisted"
				}
				return ""
			}
			oc := dialHop(t, h)
			tx, err := oc.transaction("MAIL FROM:<a@x.test>", rcpts, []byte("Subject: s\r\n\r\n.dot\r\n"))
			want := []int{0, 550, 0, 450}
			if tc.drop != "" {
				if err == nil {
					t.Fatal("no error from a dropped connection")
				}
				want = want[:2]
			} else if err != nil || tx.data != nil || tx.mail != nil {
				t.Fatalf("transaction: %+v, %v", tx, err)
			}
			if len(tx.rcpts) != len(want) {
				t.Fatalf("%d RCPT replies, want %d: %v", len(tx.rcpts), len(want), tx.rcpts)
			}
			for i, w := range want {
				var se *gosmtp.SMTPError
				got := 0
				if errors.As(tx.rcpts[i], &se) {
					got = se.Code
				}
				if got != w {
					t.Fatalf("%s: reply %v, want %d", rcpts[i], tx.rcpts[i], w)
				}
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.pipelined {
				t.Fatalf("commands pipelined to a next hop without PIPELINING: %q", h.cmds)
			}
			if tc.drop == "" && (len(h.bodies) != 1 || string(h.bodies[0]) != "Subject: s\r\n\r\n..dot\r\n") {
				t.Fatalf("bodies %q", h.bodies)
			}
		})
	}
}

// TestOutboundUnsolicitedReply: a next hop that sends more replies than
// commands (here a second reply after the end of data) cannot be trusted to
// answer the next message's commands in order: the connection is not
// reused for it.
func TestOutboundUnsolicitedReply(t *testing.T) {
	for _, ext := range [][]string{{"PIPELINING"}, nil} {
		h := startFakeHop(t, "127.0.0.229", ext...)
		h.dataReply = func(int) string { return "" }
		h.extra = "\r\n250 2.1.0 Ok"
		oc := dialHop(t, h)
		tx, err := oc.transaction("MAIL FROM:<a@x.test>", []string{"RCPT TO:<b@dom.test>"}, []byte("Subject: 1\r\n\r\none\r\n"))
		if err != nil || tx.data != nil {
			t.Fatalf("%v: transaction: %+v, %v", ext, tx, err)
		}
		if tx.reset == nil {
			t.Fatalf("%v: a connection with an unsolicited reply pending is kept for the next message", ext)
		}
		h.extra = ""
		oc = dialHop(t, h)
		tx, err = oc.transaction("MAIL FROM:<a@x.test>", []string{"RCPT TO:<b@dom.test>"}, []byte("Subject: 1\r\n\r\none\r\n"))
		if err != nil || tx.data != nil || tx.reset != nil {
			t.Fatalf("%v: a clean transaction: %+v, %v", ext, tx, err)
		}
	}
}

// TestDataRefusedNextMessageDelivered: through the gateway, a next hop that
// refuses the first message's DATA with 451 does not make the next message
// on the connection meet "503 nested MAIL command" and bounce: the first is
// deferred, the second delivered.
func TestDataRefusedNextMessageDelivered(t *testing.T) {
	h := startFakeHop(t, "127.0.0.229", "PIPELINING")
	h.dataReply = func(n int) string {
		if n == 1 {
			return "451 4.3.0 Error: queue file write error"
		}
		return ""
	}
	dir := newMemDir()
	dir.setDomain("dom.test", h.addr, TLSNone)
	cfg := fastConfig(t, dir)
	cfg.RetryMin, cfg.RetryMax = time.Hour, time.Hour
	cfg.ConnCacheTime = 5 * time.Second
	gw := startGateway(t, cfg)
	if _, err := sendMail(t, gw.addr, "a@remote.test", []string{"x@dom.test"}, "Subject: 1\r\n\r\none\r\n"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the first DATA refused", 10*time.Second, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return slices.Contains(h.cmds, "DATA")
	})
	time.Sleep(100 * time.Millisecond)
	if _, err := sendMail(t, gw.addr, "b@remote.test", []string{"y@dom.test"}, "Subject: 2\r\n\r\ntwo\r\n"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the second message delivered", 10*time.Second, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.bodies) == 1 && gw.q.Len() == 1
	})
	for _, m := range gw.q.List() {
		if m.From != "a@remote.test" {
			t.Fatalf("queued: %+v", m)
		}
		if r := m.Recipients[0]; !strings.HasPrefix(r.Diagnostic, "451 4.3.0") {
			t.Fatalf("first message: %q", r.Diagnostic)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if string(h.bodies[0]) == "" || !strings.Contains(string(h.bodies[0]), "Subject: 2") {
		t.Fatalf("delivered %q", h.bodies)
	}
}

// TestUnsolicitedReplyNoDuplicate: through the gateway, a message delivered
// on a reused connection whose next hop then sent a reply to no command is
// delivered once: the connection is dropped, the message is not sent again.
func TestUnsolicitedReplyNoDuplicate(t *testing.T) {
	h := startFakeHop(t, "127.0.0.229", "PIPELINING")
	h.dataReply = func(int) string { return "" }
	h.extra, h.extraOn = "\r\n250 2.0.0 Ok", 2
	dir := newMemDir()
	dir.setDomain("dom.test", h.addr, TLSNone)
	cfg := fastConfig(t, dir)
	cfg.ConnCacheTime = 5 * time.Second
	gw := startGateway(t, cfg)
	for i, subj := range []string{"one", "two", "three"} {
		if _, err := sendMail(t, gw.addr, "a@remote.test", []string{"x@dom.test"}, "Subject: "+subj+"\r\n\r\nbody\r\n"); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "delivered", 10*time.Second, func() bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			return len(h.bodies) >= i+1 && gw.q.Len() == 0
		})
	}
	time.Sleep(300 * time.Millisecond)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.bodies) != 3 {
		t.Fatalf("%d deliveries of 3 messages", len(h.bodies))
	}
}
