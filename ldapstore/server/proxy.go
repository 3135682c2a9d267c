package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"postern/ldapstore"
)

// Proxy is the LDAP listener of an appliance without a local directory (a
// cluster frontend): it answers reads by passing them to a backend's LDAP
// server over a connection Dial opens (a tunnel to a read-only session of
// limited sight), and refuses writes itself (unwillingToPerform, naming
// where to write). Each client connection gets its own backend connection,
// opened at its first request, so binds, searches, compares and abandons
// pass through unchanged, message IDs included; the backend applies its
// access rules to whoever the client binds as (never its root DN through a
// frontend's session).
type Proxy struct {
	cfg ProxyConfig
	log *slog.Logger

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup
}

// ProxyConfig configures a Proxy.
type ProxyConfig struct {
	// Dial connects to the backend's LDAP server.
	Dial func(ctx context.Context) (net.Conn, error)
	// WriteRefusal is the diagnostic message of refused writes, e.g.
	// "this appliance is a frontend without a local directory: write on
	// the backend at 192.0.2.10:389".
	WriteRefusal func() string
	TLSConfig    *tls.Config // StartTLS and LDAPS; nil: StartTLS answers unavailable
	// MaxConnections bounds concurrent client connections (default 1024);
	// MaxMessageSize one request (default 4 MiB); IdleTimeout closes a
	// client that sends nothing that long (default 10 min).
	MaxConnections int
	MaxMessageSize int
	IdleTimeout    time.Duration
	Logger         *slog.Logger
}

// NewProxy returns a proxy that is not yet listening.
func NewProxy(cfg ProxyConfig) *Proxy {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = 1024
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.WriteRefusal == nil {
		cfg.WriteRefusal = func() string { return "this server is read-only" }
	}
	return &Proxy{cfg: cfg, log: cfg.Logger, listeners: map[net.Listener]struct{}{}, conns: map[net.Conn]struct{}{}}
}

// Serve accepts plain LDAP connections on l until Close.
func (p *Proxy) Serve(l net.Listener) error { return p.serve(l, false) }

// ServeTLS accepts LDAPS connections on l until Close.
func (p *Proxy) ServeTLS(l net.Listener) error { return p.serve(l, true) }

func (p *Proxy) serve(l net.Listener, useTLS bool) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrServerClosed
	}
	p.listeners[l] = struct{}{}
	p.mu.Unlock()
	backoff := 5 * time.Millisecond
	for {
		c, err := l.Accept()
		if err != nil {
			p.mu.Lock()
			closed := p.closed
			p.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// EMFILE and the like: back off and retry, as net/http does
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		if useTLS && p.cfg.TLSConfig != nil {
			c = tls.Server(c, p.cfg.TLSConfig)
		}
		p.mu.Lock()
		if len(p.conns) >= p.cfg.MaxConnections || p.closed {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.wg.Done()
			defer func() {
				if r := recover(); r != nil {
					p.log.Error("ldap proxy: panic in a connection", slog.Any("panic", r))
				}
				p.mu.Lock()
				delete(p.conns, c)
				p.mu.Unlock()
			}()
			p.serveConn(c)
		}()
	}
}

// Close stops the listeners and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for l := range p.listeners {
		l.Close()
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// proxyConn is one client connection and its backend connection.
type proxyConn struct {
	p       *Proxy
	client  net.Conn
	wmu     sync.Mutex // guards writes to client
	backend net.Conn
	done    chan struct{}
}

func (p *Proxy) serveConn(c net.Conn) {
	pc := &proxyConn{p: p, client: c, done: make(chan struct{})}
	defer func() {
		c.Close()
		if pc.backend != nil {
			pc.backend.Close()
			<-pc.done
		}
	}()
	r := bufio.NewReader(c)
	var buf []byte
	for {
		c.SetReadDeadline(time.Now().Add(p.cfg.IdleTimeout))
		frame, err := readFrame(r, p.cfg.MaxMessageSize, buf)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				p.log.Debug("ldap proxy: client", slog.Any("err", err))
			}
			return
		}
		m, err := decodeMessage(frame)
		if err != nil {
			pc.reply(0, appExtendedResponse, ldapstore.ProtocolError, err.Error()) // Notice of Disconnection
			return
		}
		switch op := m.op.(type) {
		case *addRequest:
			pc.reply(m.id, appAddResponse, ldapstore.UnwillingToPerform, p.cfg.WriteRefusal())
			continue
		case *modifyRequest:
			pc.reply(m.id, appModifyResponse, ldapstore.UnwillingToPerform, p.cfg.WriteRefusal())
			continue
		case *delRequest:
			pc.reply(m.id, appDelResponse, ldapstore.UnwillingToPerform, p.cfg.WriteRefusal())
			continue
		case *modDNRequest:
			pc.reply(m.id, appModDNResponse, ldapstore.UnwillingToPerform, p.cfg.WriteRefusal())
			continue
		case *extendedRequest:
			switch op.name {
			case OIDPasswordModify:
				pc.reply(m.id, appExtendedResponse, ldapstore.UnwillingToPerform, p.cfg.WriteRefusal())
				continue
			case OIDStartTLS:
				if p.cfg.TLSConfig == nil || pc.isTLS() || pc.backend != nil {
					pc.reply(m.id, appExtendedResponse, ldapstore.OperationsError, "StartTLS is not available now")
					continue
				}
				pc.reply(m.id, appExtendedResponse, ldapstore.Success, "")
				tc := tls.Server(c, p.cfg.TLSConfig)
				if err := tc.Handshake(); err != nil {
					return
				}
				c, pc.client = tc, tc
				r = bufio.NewReader(tc)
				continue
			}
		case *unbindRequest:
			if pc.backend != nil {
				pc.backend.Write(frame)
			}
			return
		}
		if pc.backend == nil {
			if err := pc.open(); err != nil {
				pc.replyTo(m, ldapstore.Unavailable, "no backend answers: "+err.Error())
				continue
			}
		}
		if _, err := pc.backend.Write(frame); err != nil {
			pc.replyTo(m, ldapstore.Unavailable, "the backend connection was lost")
			return
		}
		buf = frame[:0]
	}
}

func (pc *proxyConn) isTLS() bool {
	_, ok := pc.client.(*tls.Conn)
	return ok
}

// open dials the backend and relays its messages to the client.
func (pc *proxyConn) open() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := pc.p.cfg.Dial(ctx)
	if err != nil {
		return err
	}
	pc.backend = b
	go func() {
		defer close(pc.done)
		defer pc.client.Close() // the backend went away: so does the client
		r := bufio.NewReader(b)
		var buf []byte
		for {
			frame, err := readFrame(r, 64<<20, buf)
			if err != nil {
				return
			}
			pc.wmu.Lock()
			pc.client.SetWriteDeadline(time.Now().Add(DefaultWriteTimeout))
			_, err = pc.client.Write(frame)
			pc.wmu.Unlock()
			if err != nil {
				return
			}
			buf = frame[:0]
		}
	}()
	return nil
}

// reply sends an LDAPResult of the given response tag.
func (pc *proxyConn) reply(id int64, tag byte, code ldapstore.ResultCode, msg string) {
	e := getEncoder()
	defer putEncoder(e)
	e.beginMessage(id, tag)
	e.result(code, "", msg)
	if id == 0 {
		e.str(classContext|10, OIDNoticeOfDisconnection)
	}
	e.endMessage(nil)
	pc.wmu.Lock()
	pc.client.SetWriteDeadline(time.Now().Add(DefaultWriteTimeout))
	pc.client.Write(e.b)
	pc.wmu.Unlock()
}

// replyTo answers request m with an error result of its kind.
func (pc *proxyConn) replyTo(m *message, code ldapstore.ResultCode, msg string) {
	switch m.op.(type) {
	case *bindRequest:
		pc.reply(m.id, appBindResponse, code, msg)
	case *searchRequest:
		pc.reply(m.id, appSearchDone, code, msg)
	case *compareRequest:
		pc.reply(m.id, appCompareResponse, code, msg)
	case *extendedRequest:
		pc.reply(m.id, appExtendedResponse, code, msg)
	}
}
