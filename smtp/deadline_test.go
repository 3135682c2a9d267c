package smtp

import (
	"net"
	"strings"
	"testing"
	"time"
)

// dialFrom connects to addr from a loopback source address.
func dialFrom(t testing.TB, src, addr string) (*rawClient, string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &rawClient{t: t, conn: c, r: newReader(c)}
	return rc, rc.reply()
}

// trickle sends s one octet every step until the server closes or s is
// sent; it returns the first reply line the server wrote meanwhile.
func trickle(rc *rawClient, s string, step time.Duration) string {
	got := make(chan string, 1)
	go func() { got <- rc.reply() }()
	for i := 0; i < len(s); i++ {
		select {
		case r := <-got:
			return r
		case <-time.After(step):
		}
		if _, err := rc.conn.Write([]byte{s[i]}); err != nil {
			break
		}
	}
	return <-got
}

// TestTricklingClientsLoseTheirSlots is the slow-DATA attack scaled
// down (issue 9, item 4): clients that fill every connection slot and keep
// each read inside DataTimeout by sending one octet at a time are cut by
// the per-message deadline, and the next client is served.
func TestTricklingClientsLoseTheirSlots(t *testing.T) {
	dir := newMemDir()
	dir.setDomain("dom.test", "127.0.20.1:1", TLSNone)
	cfg := fastConfig(t, dir)
	cfg.MaxConns, cfg.MaxConnsPerIP = 4, 2
	cfg.ReadTimeout = 10 * time.Second
	cfg.DataTimeout = 2 * time.Second // each read comes well within it
	cfg.MinDataRate = 100             // octets per second; 20 are sent
	gw := startGateway(t, cfg)

	body := strings.Repeat("slow body line\r\n", 40) // 32 s at 20 octets/s
	type cut struct {
		reply string
		took  time.Duration
	}
	var clients []*rawClient
	for i, src := range []string{"127.0.20.1", "127.0.20.1", "127.0.20.2", "127.0.20.2"} {
		rc, g := dialFrom(t, src, gw.addr)
		expectCode(t, "greeting", g, "220")
		for _, c := range []string{"EHLO c" + itoa(i) + ".test", "MAIL FROM:<a@remote.test>", "RCPT TO:<x@dom.test>"} {
			expectCode(t, c, rc.cmd(c), "250")
		}
		clients = append(clients, rc)
	}
	results := make(chan cut, 4)
	for i, rc := range clients {
		if i%2 == 0 {
			expectCode(t, "DATA", rc.cmd("DATA"), "354")
		} else {
			rc.send("BDAT " + itoa(len(body)) + " LAST\r\n")
		}
		go func() {
			start := time.Now()
			results <- cut{trickle(rc, body, 50*time.Millisecond), time.Since(start)}
		}()
	}
	// Every slot is taken now.
	_, g := dialFrom(t, "127.0.20.3", gw.addr)
	expectCode(t, "fifth client while the slots are held", g, "421 4.7.0")

	for range 4 {
		select {
		case r := <-results:
			expectCode(t, "trickling client", r.reply, "421 4.4.2")
			t.Logf("trickler cut after %v: %s", r.took.Round(10*time.Millisecond), r.reply)
		case <-time.After(20 * time.Second):
			t.Fatal("a trickling client still holds its slot after 20 s")
		}
	}
	waitIdle(t, gw.Gateway)
	_, g = dialFrom(t, "127.0.20.3", gw.addr)
	expectCode(t, "a client after the tricklers", g, "220")
	if n := gw.q.Len(); n != 0 {
		t.Fatalf("%d cut messages were queued", n)
	}
}

// TestCommandAndSessionDeadlines: a command line must be whole within
// ReadTimeout, and a session takes no command after SessionTimeout, however
// often the client talks.
func TestCommandAndSessionDeadlines(t *testing.T) {
	dir := newMemDir()
	cfg := fastConfig(t, dir)
	cfg.ReadTimeout = 500 * time.Millisecond
	cfg.SessionTimeout = 1500 * time.Millisecond
	gw := startGateway(t, cfg)

	t.Run("command line trickled", func(t *testing.T) {
		rc, _ := dialFrom(t, "127.0.20.4", gw.addr)
		r := trickle(rc, "NOOP "+strings.Repeat("x", 40)+"\r\n", 100*time.Millisecond)
		expectCode(t, "trickled NOOP", r, "421 4.4.2")
		if r := rc.reply(); !strings.HasPrefix(r, "EOF") {
			t.Errorf("after 421: %q", r)
		}
	})
	t.Run("session", func(t *testing.T) {
		start := time.Now() // before the server can have accepted
		rc, _ := dialFrom(t, "127.0.20.5", gw.addr)
		for i := 0; i < 200; i++ {
			r := rc.cmd("NOOP")
			if strings.HasPrefix(r, "421 4.4.2") {
				if d := time.Since(start); d < cfg.SessionTimeout {
					t.Fatalf("cut after %v, before SessionTimeout", d)
				}
				t.Logf("session cut after %d commands, %v", i, time.Since(start).Round(10*time.Millisecond))
				return
			}
			expectCode(t, "NOOP", r, "250")
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("the session outlived SessionTimeout")
	})
	t.Run("a fast message is not cut", func(t *testing.T) {
		sink := startSink(t, sinkOpts{})
		dir.setDomain("dom.test", sink.addr, TLSNone)
		rc, _ := dialFrom(t, "127.0.20.6", gw.addr)
		for _, c := range []string{"EHLO c.test", "MAIL FROM:<a@remote.test>", "RCPT TO:<x@dom.test>", "DATA"} {
			rc.cmd(c)
		}
		rc.send(strings.Repeat(strings.Repeat("z", 900)+"\r\n", 1000) + ".\r\n")
		expectCode(t, "900 kB at loopback speed", rc.reply(), "250 2.0.0 Ok: queued as")
	})
}
