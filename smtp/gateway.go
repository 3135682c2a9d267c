package smtp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"postern/smtp/queue"
)

// Gateway is the SMTP gateway: inbound server, queue and delivery.
type Gateway struct {
	cfg Config
	log *slog.Logger
	q   *queue.Queue
	srv *gosmtp.Server
	lis *chanListener
	lim *limiter
	met *metrics
	sch *scheduler

	ctx    context.Context // ends on Close
	cancel context.CancelFunc

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	active    sync.WaitGroup // goroutines and sessions to wait for in Close
}

// New opens the queue in cfg.DataDir, starts delivery of what it holds and
// returns a Gateway ready to Serve listeners.
func New(cfg Config) (*Gateway, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if cfg.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("smtp: hostname: %w", err)
		}
		cfg.Hostname = h
	}
	q, err := queue.Open(queue.Options{Dir: cfg.DataDir, SegmentBytes: cfg.SegmentBytes, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &Gateway{
		cfg:       cfg,
		log:       cfg.Logger,
		q:         q,
		lim:       &limiter{perIP: make(map[netip.Addr]int), max: cfg.MaxConns, maxIP: cfg.MaxConnsPerIP},
		lis:       &chanListener{ch: make(chan net.Conn), done: make(chan struct{}), addr: &net.TCPAddr{}},
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[net.Listener]struct{}),
	}
	g.met, err = newMetrics(cfg.Registry, q)
	if err != nil {
		cancel()
		q.Close()
		return nil, err
	}

	s := gosmtp.NewServer(backend{g})
	s.Domain = cfg.Hostname
	s.MaxRecipients = cfg.MaxRecipients
	s.MaxMessageBytes = cfg.MaxMessageBytes
	// frontConn frames the input: it enforces MaxLineLength on command
	// lines, and text lines are checked by the session (maxTextLine) so
	// that a long one is refused at the end of the data without losing
	// the connection's framing.
	s.MaxLineLength = 0
	s.WriteTimeout = cfg.WriteTimeout
	s.EnableSMTPUTF8 = true // RFC 6531
	s.EnableDSN = true      // RFC 3461
	s.ErrorLog = slogPrinter{g.log}
	// TLSConfig stays nil and ReadTimeout 0: frontConn does both (conn.go).
	g.srv = s

	g.active.Add(1)
	go func() {
		defer g.active.Done()
		s.Serve(g.lis)
	}()
	g.sch = newScheduler(g)
	g.sch.start()
	return g, nil
}

// Serve accepts SMTP connections on l until l fails or the Gateway is
// closed (then it returns nil). It may be called for several listeners.
func (g *Gateway) Serve(l net.Listener) error { return g.serve(l, "") }

// ServeInjected serves one connection from the cluster member named
// member: the cluster layer has authenticated the peer (the SSH tunnel)
// and hands over each tunnelled connection, as the LDAP server's ServeConn
// takes them. Config.InjectAllowed(member) decides; when it refuses, the
// client gets 550 5.7.1 at the greeting. Injected sessions may relay to
// any domain and their Received header names the member. It returns at
// once; the session runs until the client quits or Close.
func (g *Gateway) ServeInjected(c net.Conn, member string) {
	if member == "" {
		g.log.Error("smtp: injected connection without a member")
		c.Close()
		return
	}
	g.accept(c, member)
}

func (g *Gateway) serve(l net.Listener, member string) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.listeners[l] = struct{}{}
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.listeners, l)
		g.mu.Unlock()
	}()
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if g.ctx.Err() != nil {
				return nil
			}
			// A timeout, ECONNABORTED or no descriptor left (EMFILE,
			// ENFILE) is temporary: wait it out as net/http does instead of
			// ending the listener (issue 9, item 9).
			var ne net.Error
			if errors.As(err, &ne) && (ne.Timeout() || ne.Temporary()) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("smtp: accept: %w", err)
		}
		delay = 0
		g.accept(c, member)
	}
}

// accept applies the injection ACL and the connection caps, then hands the
// connection to go-smtp.
func (g *Gateway) accept(c net.Conn, member string) {
	ip := remoteAddr(c)
	refuse := func(reply string) {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Write([]byte(reply))
		c.Close()
	}
	if member != "" && (g.cfg.InjectAllowed == nil || !g.cfg.InjectAllowed(member)) {
		g.log.Warn("smtp: injection refused", slog.String("member", member), slog.String("client", ip.String()))
		// The cluster contract (issue 5) names 550 5.7.1 for a refused
		// injection: a permanent "not authorised" (RFC 3463 §3.8) that
		// every client treats as final, like RFC 5321 §3.1's 554.
		refuse("550 5.7.1 " + g.cfg.Hostname + " Mail injection from this member is not allowed\r\n")
		return
	}
	if !g.lim.acquire(ip) {
		g.met.refusedConns.Inc()
		// RFC 5321 §3.1/§4.2.3: 421 service not available, closing.
		refuse("421 4.7.0 " + g.cfg.Hostname + " Too many connections\r\n")
		return
	}
	info := &connInfo{remote: ip, injected: member, sessionEnd: time.Now().Add(g.cfg.SessionTimeout), release: func() { g.lim.release(ip) }}
	if !g.handoff(&frontConn{Conn: c, g: g, info: info}) {
		c.Close()
		info.done()
	}
}

// handoff gives a connection to go-smtp; false when closing.
func (g *Gateway) handoff(c *frontConn) bool {
	select {
	case g.lis.ch <- c:
		return true
	case <-g.lis.done:
		return false
	}
}

// track registers work that Close must wait for; false once closing.
func (g *Gateway) track() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.active.Add(1)
	return true
}

// Close stops the listeners, closes the client connections, stops delivery,
// waits for all of it and closes the queue. Messages not yet acknowledged
// are not queued; everything acknowledged stays in the queue for the next
// start.
func (g *Gateway) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	g.cancel()
	for l := range g.listeners {
		l.Close()
	}
	g.mu.Unlock()
	g.lis.Close()
	g.srv.Close()
	g.sch.stop()
	g.active.Wait()
	g.met.unregister()
	return g.q.Close()
}

// slogPrinter adapts go-smtp's Logger to slog. Its text (which can carry
// what a client sent, in a panic value) is an attribute value, which the
// handler quotes, never the message.
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) {
	p.l.Warn("smtp: go-smtp", slog.String("detail", fmt.Sprintf(format, v...)))
}
func (p slogPrinter) Println(v ...any) {
	p.l.Warn("smtp: go-smtp", slog.String("detail", fmt.Sprint(v...)))
}
