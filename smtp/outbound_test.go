package smtp

import (
	"strings"
	"testing"
	"time"

	"postern/smtp/queue"
)

// TestOutboundPipelining: with a next hop that offers PIPELINING (RFC 2920)
// the gateway sends MAIL, RCPT and DATA as one group and still tells the
// replies apart: a refused recipient gets its own outcome, the others get
// the message, dot-stuffed (RFC 5321 §4.5.2); a transaction whose every
// recipient is refused leaves the connection usable for the next one.
func TestOutboundPipelining(t *testing.T) {
	next := startWireSink(t, "127.0.20.77", "PIPELINING", "8BITMIME")
	next.reject = func(line string) string {
		if strings.Contains(line, "<no") {
			return "550 5.1.1 no such user"
		}
		return ""
	}
	dir := newMemDir()
	dir.setDomain("dom.test", next.addr, TLSNone)
	gw := startGateway(t, fastConfig(t, dir))

	send := func(rcpts []string, body string) {
		t.Helper()
		rc, _ := dialRaw(t, gw.addr)
		expectCode(t, "EHLO", rc.cmd("EHLO c.test"), "250")
		expectCode(t, "MAIL", rc.cmd("MAIL FROM:<>"), "250")
		for _, r := range rcpts {
			expectCode(t, r, rc.cmd("RCPT TO:<"+r+">"), "250")
		}
		expectCode(t, "DATA", rc.cmd("DATA"), "354")
		expectCode(t, "end of data", rc.cmd(body+"."), "250 2.0.0 Ok: queued as")
	}
	// Only refused recipients: no content is sent (this sink says 354 to
	// DATA even then, which RFC 2920 §3.1 forbids: it gets the end of
	// data alone), and the next message follows on the same connection.
	send([]string{"no1@dom.test", "no2@dom.test"}, "Subject: none\r\n\r\nx\r\n")
	waitUntil(t, "the refusals recorded", 10*time.Second, func() bool { return gw.q.Len() == 0 })
	send([]string{"a@dom.test", "no@dom.test", "b@dom.test"}, "Subject: p\r\n\r\n..lead\r\n...two\r\nend\r\n") // dot-stuffed by the client
	txs := next.waitFor(t, 2, 10*time.Second)
	var tx wireTx
	for _, x := range txs {
		if len(x.Rcpts) > 0 {
			tx = x
		}
	}
	if len(tx.Rcpts) != 2 || tx.Rcpts[0] != "RCPT TO:<a@dom.test>" || tx.Rcpts[1] != "RCPT TO:<b@dom.test>" {
		t.Fatalf("accepted RCPT lines %q", tx.Rcpts)
	}
	body, err := checkWire(tx.Wire)
	if err != nil {
		t.Fatalf("DATA on the wire: %v", err)
	}
	if !strings.HasSuffix(string(body), "\r\n\r\n.lead\r\n..two\r\nend\r\n") {
		t.Fatalf("content after unstuffing: %q", body)
	}
	if !strings.Contains(string(tx.Wire), "\r\n..lead\r\n...two\r\n") {
		t.Fatalf("not dot-stuffed: %q", tx.Wire)
	}
	waitUntil(t, "the message done", 10*time.Second, func() bool { return gw.q.Len() == 0 })
	for _, x := range next.transactions() {
		if len(x.Rcpts) == 0 && len(x.Wire) > 3 {
			t.Fatalf("content sent without an accepted recipient: %q", x.Wire)
		}
	}
}

// TestOutboundPipelinedMailRefused: when the next hop refuses MAIL, the
// pipelined RCPT and DATA replies are read and dropped, every recipient
// gets the MAIL reply (a temporary one defers them), and no content is
// sent.
func TestOutboundPipelinedMailRefused(t *testing.T) {
	next := startWireSink(t, "127.0.20.78", "PIPELINING")
	next.refuse = "452 4.3.1 Insufficient system storage"
	dir := newMemDir()
	dir.setDomain("dom.test", next.addr, TLSNone)
	cfg := fastConfig(t, dir)
	cfg.RetryMin, cfg.RetryMax = time.Hour, time.Hour
	gw := startGateway(t, cfg)

	rc, _ := dialRaw(t, gw.addr)
	for _, c := range []string{"EHLO c.test", "MAIL FROM:<>", "RCPT TO:<a@dom.test>", "RCPT TO:<b@dom.test>"} {
		expectCode(t, c, rc.cmd(c), "250")
	}
	expectCode(t, "DATA", rc.cmd("DATA"), "354")
	expectCode(t, "end of data", rc.cmd("Subject: m\r\n\r\nx\r\n."), "250 2.0.0 Ok: queued as")
	waitUntil(t, "both recipients deferred", 10*time.Second, func() bool {
		ms := gw.q.List()
		if len(ms) != 1 {
			return false
		}
		for _, r := range ms[0].Recipients {
			if r.Status != queue.Deferred || !strings.HasPrefix(r.Diagnostic, "452 4.3.1") {
				return false
			}
		}
		return true
	})
	for _, x := range next.transactions() {
		if len(x.Wire) > 3 {
			t.Fatalf("content sent after MAIL was refused: %q", x.Wire)
		}
	}
}
