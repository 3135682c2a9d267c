package smtp

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"postern/internal/testnet"
	"postern/smtp/queue"
)

// freeAddr returns a loopback address nobody listens on (yet).
func freeAddr(t testing.TB) string {
	t.Helper()
	return testnet.FreePort(t, "127.0.0.1")
}

func waitUntil(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func metricValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func TestDeferredThenDelivered(t *testing.T) {
	addr := freeAddr(t)
	dir := newMemDir()
	dir.setDomain("example.com", addr, TLSMay)
	gw := startGateway(t, fastConfig(t, dir))
	reply, err := sendMail(t, gw.addr, "a@remote.test", []string{"bob@example.com"}, "Subject: later\r\n\r\nx\r\n")
	if err != nil {
		t.Fatal(err)
	}
	id := queueID(reply)
	waitUntil(t, "a deferral", 10*time.Second, func() bool {
		m, ok := gw.q.Get(id)
		return ok && m.Recipients[0].Status == queue.Deferred && m.Recipients[0].Attempts >= 1
	})
	m, _ := gw.q.Get(id)
	if r := m.Recipients[0]; r.Enhanced != "4.4.1" || !r.NextAttempt.After(r.LastAttempt) {
		t.Fatalf("deferred recipient %+v", r)
	}
	if v := metricValue(t, gw.reg, "postern_smtp_messages_deferred_total"); v < 1 {
		t.Fatalf("deferred_total %v", v)
	}
	sink := startSink(t, sinkOpts{addr: addr})
	sink.waitFor(t, 1, 10*time.Second)
	waitUntil(t, "empty queue", 5*time.Second, func() bool { return gw.q.Len() == 0 })
	if v := metricValue(t, gw.reg, "postern_smtp_messages_delivered_total"); v != 1 {
		t.Fatalf("delivered_total %v", v)
	}
	if v := metricValue(t, gw.reg, "postern_smtp_delivery_latency_seconds"); v != 1 {
		t.Fatalf("latency samples %v", v)
	}
}

// parseDSN checks the RFC 3464 structure and returns the delivery-status
// part and the returned headers.
func parseDSN(t testing.TB, data []byte) (status, returned string) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("DSN content type %q %v", msg.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var types []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		ct := p.Header.Get("Content-Type")
		types = append(types, strings.Split(ct, ";")[0])
		switch {
		case strings.HasPrefix(ct, "message/delivery-status"):
			status = string(b)
		case strings.HasPrefix(ct, "text/rfc822-headers"), strings.HasPrefix(ct, "message/rfc822"):
			returned = string(b)
		}
	}
	if strings.Join(types, ",") != "text/plain,message/delivery-status,text/rfc822-headers" {
		t.Fatalf("DSN parts %v", types)
	}
	return status, returned
}

func TestPermanentFailureBouncesOnlyThatRecipient(t *testing.T) {
	sink := startSink(t, sinkOpts{reject: func(a string) error {
		if strings.HasPrefix(a, "bad@") {
			return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}})
	senders := startSink(t, sinkOpts{})
	dir := newMemDir()
	dir.setDomain("example.com", sink.addr, TLSMay)
	dir.setDomain("senders.test", senders.addr, TLSMay)
	gw := startGateway(t, fastConfig(t, dir))

	body := "Subject: three recipients\r\nMessage-ID: <m1@senders.test>\r\n\r\nbody\r\n"
	if _, err := sendMail(t, gw.addr, "sender@senders.test", []string{"good1@example.com", "bad@example.com", "good2@example.com"}, body); err != nil {
		t.Fatal(err)
	}
	got := sink.waitFor(t, 1, 10*time.Second)
	if strings.Join(got[0].To, ",") != "good1@example.com,good2@example.com" {
		t.Fatalf("delivered to %v", got[0].To)
	}
	dsns := senders.waitFor(t, 1, 10*time.Second)
	d := dsns[0]
	if d.From != "" || len(d.To) != 1 || d.To[0] != "sender@senders.test" {
		t.Fatalf("DSN envelope from %q to %v", d.From, d.To)
	}
	status, returned := parseDSN(t, d.Data)
	for _, want := range []string{"Reporting-MTA: dns; mx.postern.test", "Final-Recipient: rfc822; bad@example.com",
		"Action: failed", "Status: 5.1.1", "Diagnostic-Code: smtp; 550 5.1.1 no such user", "Remote-MTA: dns; 127.0.0.1"} {
		if !strings.Contains(status, want) {
			t.Errorf("delivery-status lacks %q:\n%s", want, status)
		}
	}
	if strings.Contains(status, "good1") || strings.Contains(status, "good2") {
		t.Errorf("DSN reports delivered recipients:\n%s", status)
	}
	if !strings.Contains(returned, "Subject: three recipients") || strings.Contains(returned, "body") {
		t.Errorf("returned headers:\n%s", returned)
	}
	waitUntil(t, "empty queue", 5*time.Second, func() bool { return gw.q.Len() == 0 })
	if v := metricValue(t, gw.reg, "postern_smtp_messages_bounced_total"); v != 1 {
		t.Errorf("bounced_total %v", v)
	}

	// A failure of a message from the null sender produces no DSN.
	if _, err := sendMail(t, gw.addr, "", []string{"bad@example.com"}, "Subject: bounce of a bounce\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "null-sender failure to leave the queue", 5*time.Second, func() bool {
		return metricValue(t, gw.reg, "postern_smtp_messages_bounced_total") == 2 && gw.q.Len() == 0
	})
	time.Sleep(300 * time.Millisecond)
	if n := senders.count(); n != 1 {
		t.Fatalf("%d DSNs, want 1 (none for the null sender)", n)
	}
}

func TestExpiryBounces(t *testing.T) {
	senders := startSink(t, sinkOpts{})
	dir := newMemDir()
	dir.setDomain("example.com", freeAddr(t), TLSMay)
	dir.setDomain("senders.test", senders.addr, TLSMay)
	cfg := fastConfig(t, dir)
	cfg.QueueLifetime = 700 * time.Millisecond
	gw := startGateway(t, cfg)
	if _, err := sendMail(t, gw.addr, "sender@senders.test", []string{"bob@example.com"}, "Subject: never\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	d := senders.waitFor(t, 1, 10*time.Second)[0]
	status, _ := parseDSN(t, d.Data)
	if !strings.Contains(status, "Status: 4.4.7") || !strings.Contains(status, "delivery time expired") {
		t.Fatalf("expiry DSN:\n%s", status)
	}
	waitUntil(t, "empty queue", 5*time.Second, func() bool { return gw.q.Len() == 0 })
}

func TestOutboundTLSPolicy(t *testing.T) {
	tlsSink := startSink(t, sinkOpts{tls: true})
	plainSink := startSink(t, sinkOpts{})
	dir := newMemDir()
	dir.setDomain("may.test", tlsSink.addr, TLSMay)
	dir.setDomain("none.test", tlsSink.addr, TLSNone)
	dir.setDomain("encrypt.test", tlsSink.addr, TLSEncrypt)
	dir.setDomain("encrypt-plain.test", plainSink.addr, TLSEncrypt)
	dir.setDomain("may-plain.test", plainSink.addr, TLSMay)
	gw := startGateway(t, fastConfig(t, dir))

	for _, rc := range []string{"a@may.test", "a@none.test", "a@encrypt.test"} {
		if _, err := sendMail(t, gw.addr, "s@remote.test", []string{rc}, "Subject: "+rc+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	msgs := tlsSink.waitFor(t, 3, 10*time.Second)
	for _, m := range msgs {
		want := m.To[0] != "a@none.test"
		if m.TLS != want {
			t.Errorf("%s: TLS %v, want %v", m.To[0], m.TLS, want)
		}
	}
	if _, err := sendMail(t, gw.addr, "s@remote.test", []string{"a@may-plain.test"}, "Subject: plain ok\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	reply, err := sendMail(t, gw.addr, "s@remote.test", []string{"a@encrypt-plain.test"}, "Subject: must not go in clear\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	id := queueID(reply)
	waitUntil(t, "a TLS deferral", 10*time.Second, func() bool {
		m, ok := gw.q.Get(id)
		return ok && m.Recipients[0].Attempts >= 2
	})
	m, _ := gw.q.Get(id)
	if r := m.Recipients[0]; r.Status != queue.Deferred || r.Enhanced != "4.7.10" {
		t.Fatalf("encrypt without STARTTLS: %+v", r)
	}
	got := plainSink.waitFor(t, 1, 5*time.Second)
	if len(got) != 1 || got[0].To[0] != "a@may-plain.test" {
		t.Fatalf("plain sink got %d messages (%v); the encrypt one must never arrive", len(got), got[0].To)
	}
}

type stubResolver map[string][]*net.MX

func (r stubResolver) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	if mx, ok := r[name]; ok {
		return mx, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func TestRelay(t *testing.T) {
	mxSink := startSink(t, sinkOpts{})
	smart := startSink(t, sinkOpts{})
	dir := newMemDir()
	dir.setRelay(RelayPolicy{Networks: []netip.Prefix{mustPrefix("127.0.0.0/8")}})
	cfg := fastConfig(t, dir)
	cfg.Resolver = stubResolver{
		"far.test":  {{Host: "mx2.far.test.", Pref: 20}, {Host: "mx1.far.test.", Pref: 10}},
		"null.test": {{Host: ".", Pref: 0}},
	}
	var mu sync.Mutex
	var dialed []string
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, addr)
		mu.Unlock()
		switch {
		case addr == "mx1.far.test:25":
			return (&net.Dialer{}).DialContext(ctx, network, mxSink.addr)
		case strings.HasSuffix(addr, ":25"):
			return nil, &net.OpError{Op: "dial", Net: network, Err: io.ErrClosedPipe}
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	gw := startGateway(t, cfg)

	if _, err := sendMail(t, gw.addr, "s@inside.test", []string{"x@far.test"}, "Subject: via MX\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	mxSink.waitFor(t, 1, 10*time.Second)
	mu.Lock()
	first := dialed[0]
	mu.Unlock()
	if first != "mx1.far.test:25" {
		t.Errorf("dialed %v, want the lowest preference first", dialed)
	}

	dir.setRelay(RelayPolicy{Networks: []netip.Prefix{mustPrefix("127.0.0.0/8")}, Smarthost: smart.addr})
	time.Sleep(routeCacheTTL + 100*time.Millisecond) // policy changes apply within the route cache TTL
	if _, err := sendMail(t, gw.addr, "s@inside.test", []string{"y@far.test"}, "Subject: via smarthost\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	smart.waitFor(t, 1, 10*time.Second)

	// Null MX (RFC 7505): permanent failure, no retries.
	dir.setRelay(RelayPolicy{Networks: []netip.Prefix{mustPrefix("127.0.0.0/8")}})
	reply, err := sendMail(t, gw.addr, "", []string{"z@null.test"}, "Subject: null MX\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	_ = reply
	waitUntil(t, "null MX bounce", 10*time.Second, func() bool {
		return metricValue(t, gw.reg, "postern_smtp_messages_bounced_total") == 1 && gw.q.Len() == 0
	})

	// The relay networks come from the directory on every RCPT.
	dir.setRelay(RelayPolicy{})
	if _, err := sendMail(t, gw.addr, "s@inside.test", []string{"x@far.test"}, "x"); err == nil || !strings.Contains(err.Error(), "554") {
		t.Fatalf("relay after removing the network: %v", err)
	}
}

func TestQueueOperations(t *testing.T) {
	addr := freeAddr(t)
	dir := newMemDir()
	dir.setDomain("example.com", addr, TLSMay)
	cfg := fastConfig(t, dir)
	cfg.RetryMin = time.Hour // only Flush makes it retry
	cfg.RetryMax = time.Hour
	gw := startGateway(t, cfg)
	ctx := context.Background()
	var ids []string
	for i := range 2 {
		reply, err := sendMail(t, gw.addr, "a@remote.test", []string{"bob@example.com"}, "Subject: queued "+itoa(i)+"\r\n\r\nbody\r\n")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, queueID(reply))
	}
	waitUntil(t, "both deferred", 10*time.Second, func() bool {
		l, _ := gw.List(ctx)
		n := 0
		for _, m := range l {
			if m.Recipients[0].Status == queue.Deferred {
				n++
			}
		}
		return n == 2
	})
	m, hdr, err := gw.Show(ctx, ids[0])
	if err != nil || m.ID != ids[0] || !strings.Contains(string(hdr), "Subject: queued 0") || strings.Contains(string(hdr), "body") {
		t.Fatalf("Show: %+v %q %v", m, hdr, err)
	}
	if err := gw.Delete(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, _, err := gw.Show(ctx, ids[0]); err != queue.ErrNotFound {
		t.Fatalf("Show after Delete: %v", err)
	}
	sink := startSink(t, sinkOpts{addr: addr})
	time.Sleep(200 * time.Millisecond)
	if sink.count() != 0 {
		t.Fatal("delivered before flush")
	}
	if n, err := gw.Flush(ctx); err != nil || n != 1 {
		t.Fatalf("Flush: %d %v", n, err)
	}
	got := sink.waitFor(t, 1, 5*time.Second)
	if !bytes.Contains(got[0].Data, []byte("Subject: queued 1")) {
		t.Fatalf("flushed the wrong message: %s", got[0].Data)
	}
	waitUntil(t, "empty queue", 5*time.Second, func() bool { return gw.q.Len() == 0 })
}

func TestInjection(t *testing.T) {
	sink := startSink(t, sinkOpts{})
	dir := newMemDir()
	dir.setRelay(RelayPolicy{Smarthost: sink.addr})
	cfg := fastConfig(t, dir)
	cfg.InjectAllowed = func(member string) bool { return member == "member-2" }
	gw := startGateway(t, cfg)
	serve := func(member string) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				gw.ServeInjected(c, member)
			}
		}()
		return l.Addr().String()
	}
	allowed, refused := serve("member-2"), serve("member-3")
	_, greeting := dialRaw(t, refused)
	expectCode(t, "refused member", greeting, "550 5.7.1")
	// An injected session may relay anywhere.
	if _, err := sendMail(t, allowed, "a@inside.test", []string{"x@far.test"}, "Subject: injected\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	got := sink.waitFor(t, 1, 10*time.Second)
	if !bytes.Contains(got[0].Data, []byte("injected by member member-2")) {
		t.Fatalf("Received does not name the member:\n%s", got[0].Data)
	}
}
