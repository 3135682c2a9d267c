package integration

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// sink is a delivery server for tests: it accepts every message and keeps it.
type sink struct {
	addr string
	l    net.Listener
	srv  *gosmtp.Server
	mu   sync.Mutex
	msgs []sunk
}

type sunk struct {
	From string
	To   []string
	Data string
}

func startSink(t *testing.T, ip string) *sink {
	t.Helper()
	s := &sink{}
	s.srv = gosmtp.NewServer(s)
	s.srv.Domain = "sink.test"
	s.srv.AllowInsecureAuth = true
	s.srv.MaxMessageBytes = 64 << 20
	s.srv.ReadTimeout = 30 * time.Second
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	s.l, s.addr = l, l.Addr().String()
	go s.srv.Serve(l)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

func (s *sink) NewSession(*gosmtp.Conn) (gosmtp.Session, error) { return &sinkSession{s: s}, nil }

// wait returns the messages once at least n arrived, or fails after d.
func (s *sink) wait(t *testing.T, n int, d time.Duration) []sunk {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		s.mu.Lock()
		got := append([]sunk(nil), s.msgs...)
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("sink got %d messages within %v, want %d", len(got), d, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type sinkSession struct {
	s    *sink
	from string
	to   []string
}

func (ss *sinkSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *sinkSession) Logout() error { return nil }
func (ss *sinkSession) Mail(from string, _ *gosmtp.MailOptions) error {
	ss.from = from
	return nil
}
func (ss *sinkSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}
func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, sunk{From: ss.from, To: ss.to, Data: strings.ReplaceAll(string(b), "\r\n", "\n")})
	ss.s.mu.Unlock()
	return nil
}
