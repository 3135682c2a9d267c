package appliance

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"postern/webadmin"
)

// A webMenu is the admin web menu of a `postern serve` process: its
// listener, its sessions and its jobs outlive one Appliance. When an
// attach or a detach makes the appliance anew in its new role (the serve
// command closes it and makes another on the same data), the menu keeps
// serving on the same listener: the admin stays logged in, the attach's or
// detach's progress page shows the result, and the browser never meets a
// closed port. Its backend is the control API of the appliance it serves
// now; a request that arrives while the appliance is made anew waits for
// the next one (up to menuRestartWait).
//
// The serve command keeps one in Config.menu for the process; an
// appliance made without one (tests, embedding) has a menu of its own,
// closed with it.
type webMenu struct {
	mu     sync.Mutex
	cur    *menuBackend  // nil while the appliance is made anew
	wait   chan struct{} // closed when cur is set again (or the menu closes)
	last   *Appliance    // the latest appliance: certificate and log
	closed bool

	web    *webadmin.Server
	srv    *http.Server
	addr   string
	served chan struct{} // closed when srv.Serve returned
}

// menuBackend is one appliance's control API behind the menu, and the
// menu's requests in flight on it.
type menuBackend struct {
	a        *Appliance
	h        http.Handler
	inflight sync.WaitGroup
}

const (
	// menuRestartWait bounds how long a request of the menu waits for
	// the appliance being made anew.
	menuRestartWait = 30 * time.Second
	// menuDrainWait bounds how long an appliance that closes waits for
	// the menu's requests in flight on it.
	menuDrainWait = 10 * time.Second
)

var errMenuClosed = errors.New("appliance: the admin menu is closed: the appliance is stopping")

// attach makes a the appliance the menu serves: the first time, it listens
// on a's admin address and starts serving; after a restart in a new role,
// the requests waiting for it go on.
func (m *webMenu) attach(a *Appliance) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errMenuClosed
	}
	m.last = a
	if m.web != nil {
		m.serve(a)
		a.log.Info("admin menu: serving this appliance's control API", slog.String("addr", m.addr))
		return nil
	}
	logger := slog.New(menuLog{m: m})
	web, err := webadmin.New(webadmin.Config{
		Backend:        http.HandlerFunc(m.serveBackend),
		VerifyPassword: func(pw string) bool { return m.with(func(a *Appliance) bool { return a.verifyAdmin(pw) }) },
		VerifyToken:    func(tok string) bool { return m.with(func(a *Appliance) bool { return a.tokens.verify(tok) }) },
		Logger:         logger.With("component", "webadmin"),
	})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", a.cfg.AdminAddr)
	if err != nil {
		web.Close()
		return fmt.Errorf("appliance: admin listener: %w", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}, GetCertificate: m.certificate}
	m.web, m.addr, m.served = web, l.Addr().String(), make(chan struct{})
	m.srv = &http.Server{Handler: web, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(menuLog{m: m}, slog.LevelWarn)}
	go func() {
		defer close(m.served)
		if err := m.srv.Serve(tls.NewListener(l, cfg)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("listener stopped", slog.String("listener", "admin"), slog.Any("err", err))
		}
	}()
	m.serve(a)
	return nil
}

// serve makes a's control API the menu's backend and lets the requests
// waiting for one go on (m.mu held).
func (m *webMenu) serve(a *Appliance) {
	m.cur = &menuBackend{a: a, h: a.controlMux()}
	if m.wait != nil {
		close(m.wait)
		m.wait = nil
	}
}

// detach takes a out of the menu while the appliance is made anew: new
// requests wait for the next appliance, those in flight on a finish
// first (bounded), so a closes under none of them.
func (m *webMenu) detach(a *Appliance) {
	m.mu.Lock()
	b := m.cur
	if b == nil || b.a != a {
		m.mu.Unlock()
		return
	}
	m.cur = nil
	if m.wait == nil && !m.closed {
		m.wait = make(chan struct{})
	}
	m.mu.Unlock()
	drained := make(chan struct{})
	go func() {
		b.inflight.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(menuDrainWait):
		a.log.Warn("admin menu: requests still running on the appliance that closes")
	}
}

// close stops the menu: its listener, its connections, its jobs.
func (m *webMenu) close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	if m.wait != nil {
		close(m.wait) // the waiting requests learn that the menu closes
		m.wait = nil
	}
	m.mu.Unlock()
	if m.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	m.srv.Shutdown(ctx)
	cancel()
	m.srv.Close()
	<-m.served
	m.web.Close()
}

// acquire returns the appliance the menu serves, waiting for it while it
// is made anew; the caller calls inflight.Done.
func (m *webMenu) acquire(ctx context.Context) (*menuBackend, error) {
	ctx, cancel := context.WithTimeout(ctx, menuRestartWait)
	defer cancel()
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, errMenuClosed
		}
		if b := m.cur; b != nil {
			b.inflight.Add(1)
			m.mu.Unlock()
			return b, nil
		}
		wait := m.wait
		m.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, fmt.Errorf("appliance: the appliance is being made anew in its new role and did not come back within %s: see its log", menuRestartWait)
		}
	}
}

// serveBackend is the menu's backend: the control API of the appliance it
// serves now.
func (m *webMenu) serveBackend(w http.ResponseWriter, r *http.Request) {
	b, err := m.acquire(r.Context())
	if err != nil {
		writeError(w, &apiError{http.StatusServiceUnavailable, err.Error()})
		return
	}
	defer b.inflight.Done()
	b.h.ServeHTTP(w, r)
}

// with runs f on the appliance the menu serves (false when there is none).
func (m *webMenu) with(f func(a *Appliance) bool) bool {
	b, err := m.acquire(context.Background())
	if err != nil {
		return false
	}
	defer b.inflight.Done()
	return f(b.a)
}

// certificate is the admin listener's GetCertificate: the machine
// certificate of the latest appliance (the same data directory).
func (m *webMenu) certificate(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
	m.mu.Lock()
	a := m.last
	m.mu.Unlock()
	return a.machineCert(h)
}

// menuLog hands the menu's log records to the latest appliance's log, so
// they reach its Logs page.
type menuLog struct {
	m   *webMenu
	ops []func(slog.Handler) slog.Handler // With and WithGroup, in order
}

func (h menuLog) handler() slog.Handler {
	h.m.mu.Lock()
	a := h.m.last
	h.m.mu.Unlock()
	hd := a.log.Handler()
	for _, op := range h.ops {
		hd = op(hd)
	}
	return hd
}

func (h menuLog) Enabled(ctx context.Context, l slog.Level) bool { return h.handler().Enabled(ctx, l) }

func (h menuLog) Handle(ctx context.Context, r slog.Record) error { return h.handler().Handle(ctx, r) }

func (h menuLog) WithAttrs(as []slog.Attr) slog.Handler {
	return menuLog{m: h.m, ops: append(slices.Clip(h.ops), func(x slog.Handler) slog.Handler { return x.WithAttrs(as) })}
}

func (h menuLog) WithGroup(name string) slog.Handler {
	return menuLog{m: h.m, ops: append(slices.Clip(h.ops), func(x slog.Handler) slog.Handler { return x.WithGroup(name) })}
}
