package smtp

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// FuzzSession feeds arbitrary client bytes to a session over a real socket.
// The gateway must not panic, must answer, and must queue exactly the
// messages it acknowledged with "queued as" (never one without a proper end
// of data).
func FuzzSession(f *testing.F) {
	seeds := []string{
		"EHLO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@example.com>\r\nDATA\r\nSubject: s\r\n\r\nbody\r\n.\r\nQUIT\r\n",
		"EHLO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@example.com>\r\nDATA\r\nno end of data\r\n",
		"EHLO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@example.com>\r\nBDAT 5 LAST\r\nhelloQUIT\r\n",
		"EHLO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@example.com>\r\nBDAT 100\r\nshort",
		"HELO x\r\nMAIL FROM:<> SIZE=10 BODY=8BITMIME\r\nRCPT TO:<c@example.com> NOTIFY=FAILURE,DELAY ORCPT=rfc822;c@example.com\r\nDATA\r\n..dot\r\n.\r\n",
		"EHLO x\r\nSTARTTLS\r\nMAIL FROM:<a@b.test>\r\n",
		"EHLO x\r\nMAIL FROM:<a@b.test> SMTPUTF8\r\nRCPT TO:<ü@example.com>\r\nDATA\r\n\xff\xfe\r\n.\r\n",
		"\x00\x01\x02\r\n\r\n\r\nRSET\r\nVRFY x\r\nNOOP\r\nDATA\r\n",
		"EHLO x\r\nMAIL FROM:<a@b.test>\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<@x:c@example.com>\r\nRCPT TO:<\"q t\"@example.com>\r\nDATA\r\n.\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	dir := newMemDir()
	dir.setDomain("example.com", "127.0.0.1:1", TLSNone)
	cfg := fastConfig(f, dir)
	cfg.RetryMin, cfg.RetryMax = time.Hour, time.Hour
	cfg.ReadTimeout, cfg.DataTimeout = 2*time.Second, 2*time.Second
	cfg.MaxMessageBytes = 1 << 16
	cfg.Registry = prometheus.NewRegistry()
	gw := startGateway(f, cfg)

	f.Fuzz(func(t *testing.T, in []byte) {
		before := metricValue(t, gw.reg, "postern_smtp_messages_received_total")
		c, err := net.Dial("tcp", gw.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		var out bytes.Buffer
		done := make(chan struct{})
		go func() {
			io.Copy(&out, c)
			close(done)
		}()
		c.Write(in)
		c.(*net.TCPConn).CloseWrite()
		<-done
		if !bytes.HasPrefix(out.Bytes(), []byte("220 ")) {
			t.Fatalf("no greeting: %q", out.Bytes())
		}
		acked := bytes.Count(out.Bytes(), []byte("250 2.0.0 Ok: queued as "))
		waitUntil(t, "metrics", 2*time.Second, func() bool {
			return metricValue(t, gw.reg, "postern_smtp_messages_received_total")-before >= float64(acked)
		})
		if got := metricValue(t, gw.reg, "postern_smtp_messages_received_total") - before; got != float64(acked) {
			t.Fatalf("queued %v messages, acknowledged %d\ninput %q\noutput %q", got, acked, in, out.Bytes())
		}
		if acked > 0 && !bytes.Contains(in, []byte("DATA")) && !bytes.Contains(bytes.ToUpper(in), []byte("BDAT")) {
			t.Fatalf("queued without DATA/BDAT: %q", in)
		}
	})
}
