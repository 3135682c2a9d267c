package smtp

import (
	"bytes"
	"crypto/tls"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

func TestEHLOAdvertisesExtensions(t *testing.T) {
	dir := newMemDir()
	gw := startGateway(t, fastConfig(t, dir))
	rc, greeting := dialRaw(t, gw.addr)
	expectCode(t, "greeting", greeting, "220 mx.postern.test")
	rc.send("EHLO client.test\r\n")
	lines := strings.Join(rc.replyLines(), "\n")
	for _, ext := range []string{"PIPELINING", "8BITMIME", "SIZE 10240000", "ENHANCEDSTATUSCODES", "STARTTLS", "SMTPUTF8", "CHUNKING", "DSN"} {
		if !strings.Contains(lines, "250-"+ext) && !strings.Contains(lines, "250 "+ext) {
			t.Errorf("EHLO lacks %s:\n%s", ext, lines)
		}
	}

	// After STARTTLS: TLS 1.2+, no greeting, no STARTTLS in EHLO.
	c, err := gosmtp.DialStartTLS(gw.addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil && !strings.Contains(err.Error(), "Hello called after") {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS advertised inside TLS")
	}
	st, ok := c.TLSConnectionState()
	if !ok || st.Version < tls.VersionTLS12 {
		t.Fatalf("TLS state %v %x", ok, st.Version)
	}
}

func TestRefusals(t *testing.T) {
	sink := startSink(t, sinkOpts{})
	dir := newMemDir()
	dir.setDomain("example.com", sink.addr, TLSMay)
	dir.setDomain("users.test", sink.addr, TLSMay)
	dir.addUser("alice@users.test")
	cfg := fastConfig(t, dir)
	cfg.MaxRecipients = 3
	cfg.MaxMessageBytes = 2000
	gw := startGateway(t, cfg)

	cases := []struct {
		name string
		cmds []string // all but the last must succeed (2xx/3xx)
		want string
	}{
		{"unknown command", []string{"EHLO c.test", "FOOBAR baz"}, "500 5.5.2"},
		{"unknown short command", []string{"EHLO c.test", "XYZW"}, "500 5.5.2"},
		{"mail before helo", []string{"MAIL FROM:<a@b.test>"}, "503 5.5.1"},
		{"rcpt before mail", []string{"EHLO c.test", "RCPT TO:<x@example.com>"}, "503 5.5.1"},
		{"data before rcpt", []string{"EHLO c.test", "MAIL FROM:<a@b.test>", "DATA"}, "503 5.5.1"},
		{"nested mail", []string{"EHLO c.test", "MAIL FROM:<a@b.test>", "MAIL FROM:<a@b.test>"}, "503 5.5.1"},
		{"helo without domain", []string{"HELO"}, "501 5.5.2"},
		{"data with argument", []string{"EHLO c.test", "MAIL FROM:<a@b.test>", "RCPT TO:<x@example.com>", "DATA now"}, "501 5.5.4"},
		{"bad recipient syntax", []string{"EHLO c.test", "MAIL FROM:<a@b.test>", "RCPT TO:<nodomain>"}, "501 5.1.3"},
		{"bad recipient domain", []string{"EHLO c.test", "MAIL FROM:<a@b.test>", "RCPT TO:<x@-bad-.test>"}, "501 5.1.3"},
		{"bad sender syntax", []string{"EHLO c.test", "MAIL FROM:<a@>"}, "501 5.1.7"},
		{"unknown mail parameter", []string{"EHLO c.test", "MAIL FROM:<a@b.test> FOO=BAR"}, "555 5.5.4"},
		{"non-ascii without smtputf8", []string{"EHLO c.test", "MAIL FROM:<a@b.test>", "RCPT TO:<jösé@example.com>"}, "553 5.6.7"},
		{"relay denied", []string{"EHLO c.test", "MAIL FROM:<a@b.test>", "RCPT TO:<x@elsewhere.test>"}, "554 5.7.1"},
		{"unknown user", []string{"EHLO c.test", "MAIL FROM:<a@b.test>", "RCPT TO:<bob@users.test>"}, "550 5.1.1"},
		{"known user", []string{"EHLO c.test", "MAIL FROM:<a@b.test>", "RCPT TO:<Alice@users.test>"}, "250 2.0.0"},
		{"postmaster always", []string{"EHLO c.test", "MAIL FROM:<a@b.test>", "RCPT TO:<postmaster@users.test>"}, "250 2.0.0"},
		{"domain without users", []string{"EHLO c.test", "MAIL FROM:<a@b.test>", "RCPT TO:<anyone@example.com>"}, "250 2.0.0"},
		{"too many recipients", []string{"EHLO c.test", "MAIL FROM:<a@b.test>", "RCPT TO:<r1@example.com>",
			"RCPT TO:<r2@example.com>", "RCPT TO:<r3@example.com>", "RCPT TO:<r4@example.com>"}, "452 4.5.3"},
		{"declared size too big", []string{"EHLO c.test", "MAIL FROM:<a@b.test> SIZE=999999"}, "552 5.3.4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc, _ := dialRaw(t, gw.addr)
			var last string
			for i, c := range tc.cmds {
				last = rc.cmd(c)
				if i < len(tc.cmds)-1 && !(last[0] == '2' || last[0] == '3') {
					t.Fatalf("%q: %q", c, last)
				}
			}
			expectCode(t, tc.name, last, tc.want)
			// The connection stays usable after a refusal.
			expectCode(t, "NOOP after "+tc.name, rc.cmd("NOOP"), "250")
		})
	}

	t.Run("oversized data", func(t *testing.T) {
		rc, _ := dialRaw(t, gw.addr)
		rc.cmd("EHLO c.test")
		rc.cmd("MAIL FROM:<a@b.test>")
		rc.cmd("RCPT TO:<x@example.com>")
		expectCode(t, "DATA", rc.cmd("DATA"), "354")
		rc.send("Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("y", 70)+"\r\n", 100) + ".\r\n")
		expectCode(t, "end of data", rc.reply(), "552 5.3.4")
		expectCode(t, "RSET", rc.cmd("RSET"), "250")
	})
	t.Run("line too long", func(t *testing.T) {
		rc, _ := dialRaw(t, gw.addr)
		rc.cmd("EHLO c.test")
		expectCode(t, "long line", rc.cmd("NOOP "+strings.Repeat("x", 3000)), "500 5.5.2")
		if r := rc.reply(); !strings.HasPrefix(r, "EOF") {
			t.Errorf("connection not closed after over-long line: %q", r)
		}
	})
	t.Run("too many errors", func(t *testing.T) {
		rc, _ := dialRaw(t, gw.addr)
		for range 4 {
			rc.cmd("BOGUS")
		}
		expectCode(t, "after errors", rc.reply(), "421 4.7.0")
	})
	if n := gw.q.Len(); n != 0 {
		t.Fatalf("refused transactions left %d messages in the queue", n)
	}
}

func TestTimeoutsAndCaps(t *testing.T) {
	dir := newMemDir()
	dir.setDomain("example.com", "127.0.0.1:1", TLSMay)
	cfg := fastConfig(t, dir)
	cfg.DataTimeout = 300 * time.Millisecond
	cfg.ReadTimeout = 2 * time.Second
	cfg.MaxConnsPerIP = 2
	cfg.MaxConns = 3
	gw := startGateway(t, cfg)

	t.Run("data timeout", func(t *testing.T) {
		rc, _ := dialRaw(t, gw.addr)
		rc.cmd("EHLO c.test")
		rc.cmd("MAIL FROM:<a@b.test>")
		rc.cmd("RCPT TO:<x@example.com>")
		rc.cmd("DATA")
		rc.send("Subject: stalled\r\n\r\npartial")
		start := time.Now()
		expectCode(t, "stalled DATA", rc.reply(), "421 4.4.2")
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Errorf("DATA timeout after %v", d)
		}
		if r := rc.reply(); !strings.HasPrefix(r, "EOF") {
			t.Errorf("after 421: %q, want the connection closed", r)
		}
		if gw.q.Len() != 0 {
			t.Error("a message without end of data was queued")
		}
	})
	t.Run("command timeout", func(t *testing.T) {
		rc, _ := dialRaw(t, gw.addr)
		expectCode(t, "idle", rc.reply(), "421 4.4.2")
	})
	t.Run("connection caps", func(t *testing.T) {
		waitIdle(t, gw.Gateway)
		a, g1 := dialRaw(t, gw.addr)
		_, g2 := dialRaw(t, gw.addr)
		expectCode(t, "first", g1, "220")
		expectCode(t, "second", g2, "220")
		_, g3 := dialRaw(t, gw.addr)
		expectCode(t, "third from the same IP", g3, "421 4.7.0")
		a.cmd("QUIT")
		time.Sleep(100 * time.Millisecond)
		_, g4 := dialRaw(t, gw.addr)
		expectCode(t, "after one closed", g4, "220")
		// Total cap: a client from another loopback address.
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
		c, err := d.Dial("tcp", gw.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		rc := &rawClient{t: t, conn: c, r: newReader(c)}
		expectCode(t, "third connection in all", rc.reply(), "220")
		c2, err := d.Dial("tcp", gw.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		rc2 := &rawClient{t: t, conn: c2, r: newReader(c2)}
		expectCode(t, "fourth connection in all", rc2.reply(), "421 4.7.0")
	})
}

func TestSwaks(t *testing.T) {
	swaks, err := exec.LookPath("swaks")
	if err != nil {
		t.Fatal("swaks is required (apt-get install swaks): ", err)
	}
	sink := startSink(t, sinkOpts{})
	dir := newMemDir()
	dir.setDomain("example.com", sink.addr, TLSMay)
	gw := startGateway(t, fastConfig(t, dir))
	host, port, _ := net.SplitHostPort(gw.addr)

	run := func(args ...string) (string, error) {
		base := []string{"--server", host, "--port", port, "--helo", "client.test", "--from", "a@remote.test", "--timeout", "20"}
		out, err := exec.Command(swaks, append(base, args...)...).CombinedOutput()
		return string(out), err
	}
	cases := []struct {
		name  string
		args  []string
		proto string
	}{
		{"plain", []string{"--to", "bob@example.com"}, "with ESMTP id"},
		{"starttls", []string{"--to", "bob@example.com", "--tls"}, "with ESMTPS id"},
		{"pipelining", []string{"--to", "bob@example.com,carol@example.com", "--pipeline"}, "with ESMTP id"},
		{"starttls and pipelining", []string{"--to", "bob@example.com", "--tls", "--pipeline"}, "with ESMTPS id"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(append(tc.args, "--header", "Subject: swaks "+tc.name)...)
			if err != nil {
				t.Fatalf("swaks: %v\n%s", err, out)
			}
			if !strings.Contains(out, "<~  250 2.0.0 Ok: queued as ") && !strings.Contains(out, "<-  250 2.0.0 Ok: queued as ") {
				t.Fatalf("no queued reply:\n%s", out)
			}
			if strings.Contains(tc.name, "starttls") && !strings.Contains(out, "220 2.0.0 Ready to start TLS") {
				t.Fatalf("no STARTTLS:\n%s", out)
			}
			msgs := sink.waitFor(t, i+1, 10*time.Second)
			m := msgs[len(msgs)-1]
			if !bytes.Contains(m.Data, []byte("Subject: swaks "+tc.name)) || !bytes.Contains(m.Data, []byte(tc.proto)) {
				t.Fatalf("delivered message:\n%s", m.Data)
			}
		})
	}
	t.Run("relay denied", func(t *testing.T) {
		out, err := run("--to", "x@elsewhere.test")
		if err == nil || !strings.Contains(out, "554 5.7.1") {
			t.Fatalf("want 554 5.7.1 refusal (err %v):\n%s", err, out)
		}
	})
	t.Run("oversized", func(t *testing.T) {
		body := filepath.Join(t.TempDir(), "big.txt")
		if err := os.WriteFile(body, bytes.Repeat([]byte(strings.Repeat("z", 76)+"\r\n"), 11<<20/78), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := run("--to", "bob@example.com", "--body", body)
		if err == nil || !strings.Contains(out, "552 5.3.4") {
			t.Fatalf("want 552 5.3.4 (err %v):\n%.2000s", err, out)
		}
	})
}

// TestStaleRelayPolicyRefusesNothing: a relay policy marked Stale (a
// frontend between backends) still lets its networks relay, but a client
// outside them is told 451 4.4.3 (try again), never 554 5.7.1.
func TestStaleRelayPolicyRefusesNothing(t *testing.T) {
	dir := newMemDir()
	dir.relay = RelayPolicy{Networks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, Stale: true}
	gw := startGateway(t, fastConfig(t, dir))
	rc, _ := dialRaw(t, gw.addr)
	rc.cmd("EHLO c.test")
	rc.cmd("MAIL FROM:<a@b.test>")
	expectCode(t, "RCPT with a stale policy", rc.cmd("RCPT TO:<x@elsewhere.test>"), "451 4.4.3")
	dir.mu.Lock()
	dir.relay.Stale = false
	dir.mu.Unlock()
	expectCode(t, "RCPT with a current policy", rc.cmd("RCPT TO:<x@elsewhere.test>"), "554 5.7.1")
}
