package smtp

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// FuzzSession feeds arbitrary client octets to a session over a real socket
// and checks the whole dialogue against the RFC reading of fuzzmodel_test.go:
// every command line gets one reply, no octet of a DATA body or BDAT chunk is
// ever executed as a command, only the end of a body or a BDAT LAST queues,
// exactly the acknowledged messages are queued, and each reaches its next
// hop as canonical CRLF lines (no bare CR or LF, none over 1000 octets,
// dot-stuffed), with the content the client sent.
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
		// Verbs in any case (the old oracle took DaTA for no DATA).
		"ehlo x\r\nmail from:<a@b.test>\r\nrcpt to:<c@example.com>\r\nDaTA\r\nSubject: s\r\n\r\nb\r\n.\r\n",
		// BDAT chunks that are commands, behind good and bad BDAT lines.
		"EHLO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@example.com>\r\nBDAT 27 FIRST\r\nRCPT TO:<second@example.com>\r\nNOOP\r\n",
		"EHLO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@example.com>\r\nBDAT -5 LAST\r\nRCPT TO:<second@example.com>\r\n",
		"EHLO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@example.com>\r\nBDAT 6\r\nNOOP\r\nBDAT 6 LAST\r\nRSET\r\nNOOP\r\n",
		"EHLO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@example.com>\r\nBDAT 10\r\nfirst partBDAT 6 X\r\nsecondBDAT 3 LAST\r\nendRSET\r\n",
		// Bodies that try to end early.
		"EHLO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@example.com>\r\nDATA\r\nx\n.\r\nRCPT TO:<d@example.com>\r\n\r.\r\n.\r\r\n.\r\nNOOP\r\n",
		"EHLO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@example.com>\r\nDATA\r\nlf\nonly\nlines\n.\n.\r\nNOOP\r\n",
		// 8-bit to a hop without 8BITMIME.
		"EHLO x\r\nMAIL FROM:<a@b.test> BODY=8BITMIME\r\nRCPT TO:<c@plain.test>\r\nDATA\r\nSubject: x\r\n\r\ncaf\xe9\r\n.\r\n",
		"EHLO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@plain.test>\r\nBDAT 34 LAST\r\nContent-Type: text/plain\r\n\r\n\xc3\xa9\r\n\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	full := startWireSink(f, "127.0.20.50", "8BITMIME", "SMTPUTF8", "DSN")
	seven := startWireSink(f, "127.0.20.49")
	dir := newMemDir()
	dir.setDomain("example.com", full.addr, TLSNone)
	dir.setDomain("plain.test", seven.addr, TLSNone)
	dir.setRelay(RelayPolicy{Smarthost: full.addr}) // bounces to any sender
	cfg := fastConfig(f, dir)
	cfg.RetryMin, cfg.RetryMax = time.Hour, time.Hour
	cfg.ReadTimeout, cfg.DataTimeout = 2*time.Second, 2*time.Second
	cfg.MaxMessageBytes = 1 << 16
	cfg.Registry = prometheus.NewRegistry()
	gw := startGateway(f, cfg)
	seen := map[*wireSink]int{}

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
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf(format+"\ninput  %q\noutput %q", append(args, in, out.Bytes())...)
		}
		rs, err := parseReplies(out.Bytes())
		if err != nil {
			fail("%v", err)
		}
		acked, err := dialogue(in, rs, gw.cfg.MaxLineLength)
		if err != nil {
			fail("%v", err)
		}
		waitUntil(t, "metrics", 2*time.Second, func() bool {
			return metricValue(t, gw.reg, "postern_smtp_messages_received_total")-before >= float64(len(acked))
		})
		if got := metricValue(t, gw.reg, "postern_smtp_messages_received_total") - before; got != float64(len(acked)) {
			fail("queued %v messages, acknowledged %d", got, len(acked))
		}
		// Everything queued goes out (or bounces, to the full sink).
		deadline := time.Now().Add(10 * time.Second)
		for gw.q.Len() > 0 {
			if time.Now().After(deadline) {
				fail("%d messages still queued after 10 s", gw.q.Len())
			}
			time.Sleep(5 * time.Millisecond)
		}
		want := map[string][]byte{}
		for _, m := range acked {
			w := canonicalRef(m.body)
			if len(w) > 0 && (w[0] == ' ' || w[0] == '\t') {
				// It would fold into our Received field: the gateway
				// puts the empty line of an empty header section first.
				w = append([]byte("\r\n"), w...)
			}
			want[m.id] = w
		}
		for _, s := range []*wireSink{full, seven} {
			txs := s.transactions()
			for _, tx := range txs[seen[s]:] {
				content, err := checkWire(tx.Wire)
				if err != nil {
					fail("next hop %s got a bad DATA section: %v\n%q", s.addr, err, tx.Wire)
				}
				if s == seven && has8bit(content) {
					fail("8-bit octets sent to a hop without 8BITMIME: %q", content)
				}
				id := receivedID(content)
				w, ok := want[id]
				if !ok || (s == seven && !bytes.Equal(content, canonicalRef(content))) {
					continue // a bounce, or converted to 7 bit
				}
				if got := dropFirstField(content); !bytes.Equal(got, w) && !(s == seven && has8bit(w)) {
					fail("message %s reached %s as\n%q\nwant\n%q", id, s.addr, got, w)
				}
			}
			seen[s] = len(txs)
		}
	})
}

// receivedID is the queue ID in our Received header: "... with ESMTP id ID".
func receivedID(content []byte) string {
	s := string(content[:min(len(content), 400)])
	i := strings.Index(s, " id ")
	if i < 0 {
		return ""
	}
	rest := s[i+4:]
	if j := strings.IndexAny(rest, ";\r "); j >= 0 {
		return rest[:j]
	}
	return rest
}

// dropFirstField removes the first header field with its continuation
// lines.
func dropFirstField(b []byte) []byte {
	for i := bytes.Index(b, []byte("\r\n")); i >= 0; {
		b = b[i+2:]
		if len(b) == 0 || (b[0] != ' ' && b[0] != '\t') {
			return b
		}
		i = bytes.Index(b, []byte("\r\n"))
	}
	return nil
}
