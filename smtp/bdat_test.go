package smtp

import (
	"strings"
	"testing"
	"time"
)

// TestBDATChunkNeverACommand drives every BDAT path, good and bad, with a
// chunk that is itself a command line: whatever the server answers, no octet
// of the chunk may be executed as a command (issue 9, item 1). The reply
// after the chunk must be the one to the NOOP that follows it.
func TestBDATChunkNeverACommand(t *testing.T) {
	sink := startSink(t, sinkOpts{})
	dir := newMemDir()
	dir.setDomain("dom.test", sink.addr, TLSNone)
	cfg := fastConfig(t, dir)
	cfg.MaxMessageBytes = 2000
	gw := startGateway(t, cfg)

	const chunk = "RCPT TO:<second@dom.test>\r\n"
	n := itoa(len(chunk))
	tx := []string{"EHLO c.test", "MAIL FROM:<a@remote.test>", "RCPT TO:<first@dom.test>"}
	big := strings.Repeat(chunk, 100) // over MaxMessageBytes
	cases := []struct {
		name   string
		before []string // commands answered 2xx first
		bdat   string   // the BDAT line, without CRLF
		chunk  string
		want   string // reply to the BDAT line
		closed bool   // the server answers and closes
		queued bool   // the chunk is a whole message
	}{
		// The inputs of the issue.
		{name: "unknown argument FIRST", before: tx, bdat: "BDAT " + n + " FIRST", chunk: chunk, want: "501 5.5.4 Syntax: BDAT count [LAST]"},
		{name: "negative count", before: tx, bdat: "BDAT -5 LAST", chunk: chunk, want: "521 5.5.4 Syntax: BDAT count [LAST]", closed: true},
		{name: "count beyond 64 bits", before: tx, bdat: "BDAT 99999999999999999999 LAST", chunk: chunk, want: "521 5.5.4", closed: true},
		// Their neighbours: every way the line can be wrong.
		{name: "no count", before: tx, bdat: "BDAT", chunk: chunk, want: "521 5.5.4", closed: true},
		{name: "count with a sign", before: tx, bdat: "BDAT +" + n + " LAST", chunk: chunk, want: "521 5.5.4", closed: true},
		{name: "count with letters", before: tx, bdat: "BDAT " + n + "x LAST", chunk: chunk, want: "521 5.5.4", closed: true},
		{name: "count over 32 bits", before: tx, bdat: "BDAT 4294967296 LAST", chunk: chunk, want: "521 5.5.4", closed: true},
		{name: "LAST first", before: tx, bdat: "BDAT LAST " + n, chunk: chunk, want: "521 5.5.4", closed: true},
		{name: "argument after LAST", before: tx, bdat: "BDAT " + n + " LAST now", chunk: chunk, want: "501 5.5.4"},
		{name: "two counts", before: tx, bdat: "BDAT " + n + " 5", chunk: chunk, want: "501 5.5.4"},
		{name: "without a transaction", before: []string{"EHLO c.test"}, bdat: "BDAT " + n + " LAST", chunk: chunk, want: "503 5.5.1"},
		{name: "before EHLO", bdat: "BDAT " + n + " LAST", chunk: chunk, want: "503 5.5.1"},
		{name: "over the size limit", before: tx, bdat: "BDAT " + itoa(len(big)) + " LAST", chunk: big, want: "552 5.3.4"},
		// Good lines: the chunk is the message.
		{name: "good LAST", before: tx, bdat: "BDAT " + n + " LAST", chunk: chunk, want: "250 2.0.0 Ok: queued as", queued: true},
		{name: "lower case and leading zeros", before: tx, bdat: "bdat 000" + n + " last", chunk: chunk, want: "250 2.0.0 Ok: queued as", queued: true},
		{name: "tab separated", before: tx, bdat: "BDAT\t" + n + "\tLAST", chunk: chunk, want: "250 2.0.0 Ok: queued as", queued: true},
		{name: "not last", before: tx, bdat: "BDAT " + n, chunk: chunk, want: "250 2.0.0"},
	}
	queued := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc, _ := dialRaw(t, gw.addr)
			for _, c := range tc.before {
				if r := rc.cmd(c); r[0] != '2' {
					t.Fatalf("%q: %q", c, r)
				}
			}
			// Line, chunk and the NOOP in one write, as a pipelining client does.
			rc.send(tc.bdat + "\r\n" + tc.chunk + "NOOP\r\n")
			expectCode(t, tc.bdat, rc.reply(), tc.want)
			if tc.closed {
				if r := rc.reply(); !strings.HasPrefix(r, "EOF") {
					t.Fatalf("after %q: %q, want the connection closed", tc.want, r)
				}
				return
			}
			if r := rc.reply(); !strings.Contains(r, "successfully done nothing") {
				t.Fatalf("reply after the chunk is %q, not the NOOP's: the chunk was read as commands", r)
			}
			if tc.queued {
				queued++
			}
		})
	}
	msgs := sink.waitFor(t, queued, 10*time.Second)
	time.Sleep(200 * time.Millisecond) // nothing more may arrive
	msgs = sink.messages()
	if len(msgs) != queued {
		t.Fatalf("sink got %d messages, want %d", len(msgs), queued)
	}
	for _, m := range msgs {
		if len(m.To) != 1 || m.To[0] != "first@dom.test" {
			t.Errorf("delivered to %v", m.To)
		}
		if got := string(stripReceived(t, m.Data)); got != chunk {
			t.Errorf("message %q, want the chunk %q", got, chunk)
		}
	}
}

// TestBDATPipelineAfterBadChunk: RFC 3030 §4: after a refused BDAT the
// transaction has failed and the chunks the client pipelined behind it are
// discarded, never appended to a message that lacks the refused chunk.
func TestBDATPipelineAfterBadChunk(t *testing.T) {
	sink := startSink(t, sinkOpts{})
	dir := newMemDir()
	dir.setDomain("dom.test", sink.addr, TLSNone)
	gw := startGateway(t, fastConfig(t, dir))

	rc, _ := dialRaw(t, gw.addr)
	for _, c := range []string{"EHLO c.test", "MAIL FROM:<a@remote.test>", "RCPT TO:<first@dom.test>"} {
		rc.cmd(c)
	}
	rc.send("BDAT 10\r\nfirst part" + "BDAT 6 FIRST\r\nsecond" + "BDAT 11 LAST\r\n third part" + "NOOP\r\n")
	for _, want := range []string{"250 2.0.0", "501 5.5.4", "503 5.5.1", "250 2.0.0 I have successfully done nothing"} {
		expectCode(t, "pipelined BDAT", rc.reply(), want)
	}
	// The client starts over and the next message is whole.
	rc.send("MAIL FROM:<a@remote.test>\r\nRCPT TO:<first@dom.test>\r\nBDAT 5 LAST\r\nwhole")
	for _, want := range []string{"250", "250", "250 2.0.0 Ok: queued as"} {
		expectCode(t, "second transaction", rc.reply(), want)
	}
	msgs := sink.waitFor(t, 1, 10*time.Second)
	if got := string(stripReceived(t, msgs[0].Data)); got != "whole\r\n" {
		t.Fatalf("delivered %q", got)
	}
	time.Sleep(200 * time.Millisecond)
	if n := sink.count(); n != 1 {
		t.Fatalf("sink got %d messages, want 1", n)
	}
}

// TestBDATTruncatedChunk: a client that closes inside a LAST chunk has not
// sent a message; nothing is queued (io.Copy takes a plain EOF for the end
// of the chunk, so the reader must not give it one).
func TestBDATTruncatedChunk(t *testing.T) {
	dir := newMemDir()
	dir.setDomain("dom.test", "127.0.20.1:1", TLSNone)
	gw := startGateway(t, fastConfig(t, dir))
	for _, tail := range []string{"BDAT 100 LAST\r\nonly a part", "DATA\r\nSubject: x\r\n\r\nno end"} {
		rc, _ := dialRaw(t, gw.addr)
		for _, c := range []string{"EHLO c.test", "MAIL FROM:<a@remote.test>", "RCPT TO:<first@dom.test>"} {
			rc.cmd(c)
		}
		rc.send(tail)
		rc.conn.(interface{ CloseWrite() error }).CloseWrite()
		for r := rc.reply(); !strings.HasPrefix(r, "EOF"); r = rc.reply() {
			if strings.Contains(r, "queued as") {
				t.Fatalf("%q: %q", tail, r)
			}
		}
	}
	waitIdle(t, gw.Gateway)
	if n := gw.q.Len(); n != 0 {
		t.Fatalf("%d truncated messages queued", n)
	}
}

// TestBDATResetThenNewTransfer: a BDAT transfer reset before its LAST chunk
// and a new transfer right after it, many times over one connection: each
// new message is answered for itself (go-smtp's goroutine of the reset
// transfer could hand its "aborted" to the next one; see bdatflight.go),
// and empty chunks add nothing.
func TestBDATResetThenNewTransfer(t *testing.T) {
	dir := newMemDir()
	dir.setDomain("dom.test", "127.0.20.2:1", TLSNone) // nothing listens: mail stays queued
	cfg := fastConfig(t, dir)
	cfg.RetryMin, cfg.RetryMax = time.Hour, time.Hour
	gw := startGateway(t, cfg)
	rc, _ := dialRaw(t, gw.addr)
	rc.cmd("EHLO c.test")
	expectCode(t, "empty chunk without a transaction", rc.cmd("BDAT 0"), "503 5.5.1")
	const rounds = 200
	tx := "MAIL FROM:<a@remote.test>\r\nRCPT TO:<x@dom.test>\r\n"
	for i := 0; i < rounds; i++ {
		reset := []string{"RSET", "EHLO c.test", "BDAT 3 BAD"}[i%3]
		chunk := ""
		if reset == "BDAT 3 BAD" {
			chunk = "bad"
		}
		rc.send(tx + "BDAT 5\r\nfirst" + reset + "\r\n" + chunk + tx + "BDAT 0\r\nBDAT 6 LAST\r\nsecond")
		for _, want := range []string{"250", "250", "250 2.0.0 Continue", "", "250", "250", "250 2.0.0 Continue", "250 2.0.0 Ok: queued as"} {
			r := rc.reply()
			if want == "" {
				continue // the reply to the reset
			}
			if !strings.HasPrefix(r, want) {
				t.Fatalf("round %d (%s): got %q, want %q", i, reset, r, want)
			}
		}
	}
	if n := gw.q.Len(); n != rounds {
		t.Fatalf("queue holds %d messages, want %d", n, rounds)
	}
	for _, m := range gw.q.List() {
		c, _ := gw.q.Content(m.ID)
		if got := string(stripReceived(t, c)); got != "second\r\n" {
			t.Fatalf("message %q", got)
		}
	}
}
