package smtp

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestStorageLowRefusedEarly: with the queue's file system below
// MinFreeBytes, MAIL and RCPT answer 452 4.3.1 before the client sends a
// body (issue 9, item 7), a declared SIZE counts, and mail is taken again
// when space returns.
func TestStorageLowRefusedEarly(t *testing.T) {
	dir := newMemDir()
	dir.setDomain("dom.test", "127.0.20.20:1", TLSNone)
	cfg := fastConfig(t, dir)
	cfg.RetryMin, cfg.RetryMax = time.Hour, time.Hour
	cfg.MaxMessageBytes = 1 << 20
	var free atomic.Int64
	free.Store(100 << 20)
	var broken atomic.Bool
	cfg.FreeSpace = func(string) (int64, error) {
		if broken.Load() {
			return 0, errors.New("statfs failed")
		}
		return free.Load(), nil
	}
	gw := startGateway(t, cfg)
	if gw.cfg.MinFreeBytes != 3<<19 {
		t.Fatalf("default MinFreeBytes %d, want 1.5 × MaxMessageBytes", gw.cfg.MinFreeBytes)
	}
	send := func(rc *rawClient) {
		t.Helper()
		expectCode(t, "DATA", rc.cmd("DATA"), "354")
		expectCode(t, "end", rc.cmd("Subject: s\r\n\r\nbody\r\n."), "250 2.0.0 Ok: queued as")
	}

	rc, _ := dialRaw(t, gw.addr)
	rc.cmd("EHLO c.test")
	expectCode(t, "MAIL with room", rc.cmd("MAIL FROM:<a@remote.test>"), "250")
	expectCode(t, "RCPT with room", rc.cmd("RCPT TO:<x@dom.test>"), "250")
	send(rc)

	free.Store(1 << 20) // under 1.5 MiB
	expectCode(t, "MAIL on a full disk", rc.cmd("MAIL FROM:<a@remote.test>"), "452 4.3.1")
	expectCode(t, "RSET", rc.cmd("RSET"), "250")

	free.Store(2 << 20) // 0.5 MiB over MinFreeBytes
	expectCode(t, "MAIL with a SIZE that does not fit", rc.cmd("MAIL FROM:<a@remote.test> SIZE=600000"), "452 4.3.1")
	expectCode(t, "MAIL with a SIZE that fits", rc.cmd("MAIL FROM:<a@remote.test> SIZE=400000"), "250")
	free.Store(1 << 20) // the disk fills between MAIL and RCPT
	expectCode(t, "RCPT on a full disk", rc.cmd("RCPT TO:<x@dom.test>"), "452 4.3.1")
	expectCode(t, "RSET", rc.cmd("RSET"), "250")

	free.Store(100 << 20)
	rc.cmd("MAIL FROM:<a@remote.test>")
	rc.cmd("RCPT TO:<x@dom.test>")
	send(rc)

	broken.Store(true) // cannot tell: refuse nothing
	rc.cmd("MAIL FROM:<a@remote.test>")
	rc.cmd("RCPT TO:<x@dom.test>")
	send(rc)
	if n := gw.q.Len(); n != 3 {
		t.Fatalf("queue holds %d messages, want 3", n)
	}
}
