package smtp

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
)

// memDir is an in-memory Directory for tests.
type memDir struct {
	mu      sync.Mutex
	domains map[string]Domain
	users   map[string]bool // addresses
	relay   RelayPolicy
}

func newMemDir() *memDir {
	return &memDir{domains: map[string]Domain{}, users: map[string]bool{}}
}

func (d *memDir) setDomain(name, deliverTo string, pol TLSPolicy) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.domains[name] = Domain{Name: name, DeliverTo: deliverTo, TLS: pol}
}

func (d *memDir) addUser(addr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.users[strings.ToLower(addr)] = true
}

func (d *memDir) setRelay(rp RelayPolicy) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.relay = rp
}

func (d *memDir) Domain(_ context.Context, name string) (Domain, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dom, ok := d.domains[name]
	return dom, ok, nil
}

func (d *memDir) HasUsers(_ context.Context, domain string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for a := range d.users {
		if strings.HasSuffix(a, "@"+domain) {
			return true, nil
		}
	}
	return false, nil
}

func (d *memDir) UserExists(_ context.Context, addr string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.users[strings.ToLower(addr)], nil
}

func (d *memDir) Relay(context.Context) (RelayPolicy, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.relay, nil
}

// testCert returns a self-signed certificate for localhost.
func testCert(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func serverTLS(t testing.TB) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{testCert(t)}, MinVersion: tls.VersionTLS12}
}

type testGW struct {
	*Gateway
	addr string
	dir  *memDir
	reg  *prometheus.Registry
}

// fastConfig has timings in milliseconds so that retries happen in tests.
func fastConfig(t testing.TB, dir *memDir) Config {
	return Config{
		Hostname:       "mx.postern.test",
		TLSConfig:      serverTLS(t),
		DataDir:        t.TempDir(),
		Directory:      dir,
		RetryMin:       200 * time.Millisecond,
		RetryMax:       time.Second,
		ConnCacheTime:  100 * time.Millisecond,
		ConnectTimeout: 2 * time.Second,
		CommandTimeout: 10 * time.Second,
		Logger:         testLogger(),
	}
}

func testLogger() *slog.Logger {
	if os.Getenv("POSTERN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func startGateway(t testing.TB, cfg Config) *testGW {
	t.Helper()
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := g.Serve(l); err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		g.Close()
		<-done
	})
	dir, _ := cfg.Directory.(*memDir)
	return &testGW{Gateway: g, addr: l.Addr().String(), dir: dir, reg: cfg.Registry}
}

// sinkMsg is a message received by a goSink.
type sinkMsg struct {
	From string
	To   []string
	Data []byte
	TLS  bool
}

// goSink is a go-smtp based next hop that records what it receives.
type goSink struct {
	addr string
	srv  *gosmtp.Server
	done chan struct{}

	mu     sync.Mutex
	msgs   []sinkMsg
	notify chan struct{}
	// reject gives the RCPT reply for an address; nil accepts.
	reject func(addr string) error
}

type sinkOpts struct {
	addr   string // "" = 127.0.0.1:0
	tls    bool
	reject func(addr string) error
}

func startSink(t testing.TB, o sinkOpts) *goSink {
	t.Helper()
	s := &goSink{notify: make(chan struct{}, 1), reject: o.reject, done: make(chan struct{})}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return &sinkSession{s: s, c: c}, nil
	}))
	srv.Domain = "sink.test"
	srv.EnableSMTPUTF8 = true
	srv.EnableDSN = true
	srv.MaxLineLength = 0
	srv.ErrorLog = slogPrinter{testLogger()}
	if o.tls {
		srv.TLSConfig = serverTLS(t)
	}
	addr := o.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var l net.Listener
	var err error
	for i := 0; i < 50; i++ { // a fixed port may still be in TIME_WAIT use
		if l, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	s.srv = srv
	go func() {
		defer close(s.done)
		srv.Serve(l)
	}()
	t.Cleanup(s.stop)
	return s
}

func (s *goSink) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.srv.Close()
	<-s.done
}

func (s *goSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

func (s *goSink) messages() []sinkMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkMsg(nil), s.msgs...)
}

// waitFor waits until the sink holds n messages.
func (s *goSink) waitFor(t testing.TB, n int, timeout time.Duration) []sinkMsg {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if s.count() >= n {
			return s.messages()
		}
		select {
		case <-s.notify:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("sink %s got %d messages, want %d", s.addr, s.count(), n)
		}
	}
}

type sinkSession struct {
	s    *goSink
	c    *gosmtp.Conn
	from string
	to   []string
}

func (x *sinkSession) Reset()        { x.from, x.to = "", nil }
func (x *sinkSession) Logout() error { return nil }
func (x *sinkSession) Mail(from string, _ *gosmtp.MailOptions) error {
	x.from = from
	return nil
}
func (x *sinkSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if x.s.reject != nil {
		if err := x.s.reject(to); err != nil {
			return err
		}
	}
	x.to = append(x.to, to)
	return nil
}
func (x *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := x.c.TLSConnectionState()
	x.s.mu.Lock()
	x.s.msgs = append(x.s.msgs, sinkMsg{From: x.from, To: x.to, Data: b, TLS: isTLS})
	x.s.mu.Unlock()
	select {
	case x.s.notify <- struct{}{}:
	default:
	}
	return nil
}

// rawClient speaks SMTP line by line to check exact replies.
type rawClient struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(t testing.TB, addr string) (*rawClient, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &rawClient{t: t, conn: c, r: bufio.NewReader(c)}
	return rc, rc.reply()
}

// reply reads one (multi-line) reply and returns its last line.
func (rc *rawClient) reply() string {
	rc.t.Helper()
	rc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		line, err := rc.r.ReadString('\n')
		if err != nil {
			return "EOF " + err.Error()
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 4 || line[3] != '-' {
			return line
		}
	}
}

// replyLines reads one reply and returns all its lines.
func (rc *rawClient) replyLines() []string {
	rc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var out []string
	for {
		line, err := rc.r.ReadString('\n')
		if err != nil {
			return append(out, "EOF")
		}
		line = strings.TrimRight(line, "\r\n")
		out = append(out, line)
		if len(line) < 4 || line[3] != '-' {
			return out
		}
	}
}

func (rc *rawClient) send(s string) {
	rc.t.Helper()
	if _, err := rc.conn.Write([]byte(s)); err != nil {
		rc.t.Fatal(err)
	}
}

func (rc *rawClient) cmd(line string) string {
	rc.t.Helper()
	rc.send(line + "\r\n")
	return rc.reply()
}

// expectCode fails unless reply starts with code and enhanced code.
func expectCode(t testing.TB, what, reply, want string) {
	t.Helper()
	if !strings.HasPrefix(reply, want) {
		t.Errorf("%s: got %q, want %q", what, reply, want)
	}
}

// sendMail sends one message with the go-smtp client; it returns the reply
// text of the end of data ("2.0.0 Ok: queued as ID").
func sendMail(t testing.TB, addr, from string, to []string, body string) (string, error) {
	t.Helper()
	c, err := gosmtp.Dial(addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return "", err
	}
	if err := c.Mail(from, nil); err != nil {
		return "", err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return "", err
		}
	}
	w, err := c.Data()
	if err != nil {
		return "", err
	}
	if _, err := io.WriteString(w, body); err != nil {
		return "", err
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", err
	}
	c.Quit()
	return resp.StatusText, nil
}

// queueID extracts the ID from "... queued as ID".
func queueID(reply string) string {
	i := strings.LastIndex(reply, "queued as ")
	if i < 0 {
		return ""
	}
	return strings.TrimSpace(reply[i+len("queued as "):])
}

// stripReceived removes the first header line block (our Received header).
func stripReceived(t testing.TB, data []byte) []byte {
	t.Helper()
	s := string(data)
	if !strings.HasPrefix(s, "Received: ") {
		t.Fatalf("message does not start with Received: %q", s[:min(len(s), 80)])
	}
	i := 0
	for {
		j := strings.Index(s[i:], "\r\n")
		if j < 0 {
			t.Fatal("unterminated Received header")
		}
		i += j + 2
		if i >= len(s) || (s[i] != '\t' && s[i] != ' ') {
			return data[i:]
		}
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func itoa(i int) string { return strconv.Itoa(i) }

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

// waitIdle waits until the gateway holds no client connection.
func waitIdle(t testing.TB, g *Gateway) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		g.lim.mu.Lock()
		n := g.lim.total
		g.lim.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
