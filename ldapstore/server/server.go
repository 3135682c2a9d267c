package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/prometheus/client_golang/prometheus"

	"postern/ldapstore"
	"postern/ldapstore/dn"
	"postern/ldapstore/schema"
)

// Defaults of Config.
const (
	DefaultMaxMessageSize = 4 << 20 // slapd's sockbuf_max_incoming_auth
	DefaultMaxInFlight    = 64
	DefaultIdleTimeout    = 10 * time.Minute
	DefaultWriteTimeout   = time.Minute
	// DefaultAnonymousIdleTimeout closes connections that have not bound
	// (anonymous may read only the Root DSE and cn=Subschema) far sooner.
	DefaultAnonymousIdleTimeout = 30 * time.Second
	DefaultMaxConnections       = 4096
	DefaultMaxConnectionsPerIP  = 256
	DefaultMaxResultBuffer      = 64 << 20
	DefaultMaxResultBufferConn  = 2 << 20
)

// ErrServerClosed is returned by Serve and ServeTLS after Close.
var ErrServerClosed = errors.New("server: closed")

// Config configures a Server. The zero value of every field but Store is
// usable.
type Config struct {
	Store        *ldapstore.Store
	RootDN       string      // like slapd's rootdn, e.g. "cn=admin,dc=postern,dc=local"; "" = none
	RootPassword string      // a hash accepted by ldapstore.VerifyPassword
	TLSConfig    *tls.Config // StartTLS and LDAPS; nil: StartTLS answers unavailable
	Logger       *slog.Logger

	MaxMessageSize int           // octets of one LDAPMessage; default 4 MiB
	MaxInFlight    int           // concurrent operations per connection; default 64
	IdleTimeout    time.Duration // close connections idle this long; default 10 min
	WriteTimeout   time.Duration // give up on a peer that reads nothing this long; default 1 min
	// AnonymousIdleTimeout closes a connection that is not bound (or whose
	// bind failed) after this long without a request, and bounds its TLS
	// handshake; default 30 s.
	AnonymousIdleTimeout time.Duration
	// MaxConnections and MaxConnectionsPerIP cap the connections accepted
	// from the listeners (Serve, ServeTLS), in all and per client address;
	// defaults 4096 and 256. A connection over a cap gets a Notice of
	// Disconnection (unavailable) and is closed. ServeConn's connections,
	// authenticated by their transport, are not counted.
	MaxConnections      int
	MaxConnectionsPerIP int
	// MaxResultBuffer bounds the memory (octets, estimated) of search
	// results read from the store and not yet sent, over all connections;
	// MaxResultBufferConn over one connection's searches. A search past
	// them waits until its client reads; one whose client never reads holds
	// at most a chunk (256 KiB) until WriteTimeout closes the connection.
	// Defaults 64 MiB and 2 MiB. The entries paged searches remember
	// between pages have a budget of MaxResultBuffer of their own.
	MaxResultBuffer     int64
	MaxResultBufferConn int64
	// MaxPasswordChecks bounds the password hashes verified or computed at
	// once (binds, Password Modify); default the number of CPUs. Each
	// client address also has at most MaxPasswordChecksPerIP.
	MaxPasswordChecks int

	// RootOnly are attribute types only the root DN reads: every other
	// identity (users, anonymous, restricted sessions) never sees them in
	// entries, never matches them in a filter (they evaluate as Undefined)
	// and cannot compare them (insufficientAccessRights, 50), as a slapd
	// ACL "by * none" would: the cluster's keys, sealed private keys.
	RootOnly []string

	// RestrictedHide are further attribute types that sessions served by
	// ServeConnRestricted (a cluster frontend's) never see, besides
	// userPassword and RootOnly.
	RestrictedHide []string

	// VendorVersion is published as the Root DSE's vendorVersion (RFC 3045);
	// the appliance passes its firmware version.
	VendorVersion string

	Registry *prometheus.Registry // optional; nil = no metrics
}

// Server is an LDAP v3 server for one Store.
type Server struct {
	cfg       Config
	store     *ldapstore.Store
	log       *slog.Logger
	tls       *tls.Config
	rootNorm  string // normalised RootDN, "" when none
	suffix    string
	metrics   *metrics
	started   time.Time
	subschema *ldapstore.Entry
	timeUnit  time.Duration // of a search's timeLimit: a second (tests shorten it)
	workers   *workers
	pw        *pwLimiter
	caps      *connCaps
	results   *budget // memory of unsent search results, all connections
	paged     *budget // memory of paged searches' remembered results (paged.go)

	rootPW   atomic.Pointer[string]         // the root DN's password hash (SetRootPassword)
	hidden   map[*schema.AttributeType]bool // Config.RestrictedHide and RootOnly: a restricted session's
	rootOnly map[*schema.AttributeType]bool // Config.RootOnly: every identity's but the root DN's

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	handlers  []handlerEntry
	wg        sync.WaitGroup
}

type handlerEntry struct {
	oid string
	h   SearchHandler
}

var berLimitsOnce sync.Once

// New checks cfg, fills in its defaults and returns a Server that is not
// yet listening.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("server: Config.Store is nil")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.AnonymousIdleTimeout <= 0 {
		cfg.AnonymousIdleTimeout = DefaultAnonymousIdleTimeout
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.MaxConnectionsPerIP <= 0 {
		cfg.MaxConnectionsPerIP = DefaultMaxConnectionsPerIP
	}
	if cfg.MaxResultBuffer <= 0 {
		cfg.MaxResultBuffer = DefaultMaxResultBuffer
	}
	if cfg.MaxResultBufferConn <= 0 {
		cfg.MaxResultBufferConn = DefaultMaxResultBufferConn
	}
	if cfg.MaxPasswordChecks <= 0 {
		cfg.MaxPasswordChecks = runtime.NumCPU()
	}
	s := &Server{
		cfg:       cfg,
		store:     cfg.Store,
		log:       cfg.Logger,
		suffix:    cfg.Store.Suffix(),
		started:   time.Now().UTC(),
		timeUnit:  time.Second,
		workers:   newWorkers(),
		pw:        newPWLimiter(cfg.MaxPasswordChecks),
		caps:      newConnCaps(cfg.MaxConnections, cfg.MaxConnectionsPerIP),
		results:   newBudget(cfg.MaxResultBuffer),
		paged:     newBudget(cfg.MaxResultBuffer),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
	}
	// A root password hash the server cannot verify would fail every root
	// bind; refuse it at start-up instead (issue 9, item 13).
	if err := ldapstore.CheckPasswordValue(cfg.RootPassword); err != nil {
		return nil, fmt.Errorf("server: RootPassword: %w", err)
	}
	s.rootPW.Store(&cfg.RootPassword)
	s.hidden, s.rootOnly = map[*schema.AttributeType]bool{}, map[*schema.AttributeType]bool{}
	for _, n := range cfg.RootOnly {
		if at := cfg.Store.Schema().Attr(n); at != nil {
			s.rootOnly[at], s.hidden[at] = true, true
		}
	}
	for _, n := range cfg.RestrictedHide {
		if at := cfg.Store.Schema().Attr(n); at != nil {
			s.hidden[at] = true
		}
	}
	if cfg.RootDN != "" {
		n, err := dn.Normalize(cfg.RootDN)
		if err != nil {
			return nil, fmt.Errorf("server: RootDN %q: %w", cfg.RootDN, err)
		}
		s.rootNorm = n
	}
	if cfg.TLSConfig != nil {
		t := cfg.TLSConfig.Clone()
		if t.MinVersion < tls.VersionTLS12 {
			t.MinVersion = tls.VersionTLS12
		}
		s.tls = t
	}
	if cfg.Registry != nil {
		m, err := newMetrics(cfg.Registry)
		if err != nil {
			return nil, err
		}
		s.metrics = m
	}
	s.subschema = s.buildSubschema()
	// DESIGN.md: lower asn1-ber's process-wide limits at start-up. Our own
	// framer already enforces MaxMessageSize before asn1-ber sees a byte;
	// this also bounds anything else in the process that reads BER.
	// The first server's limit (never below the 4 MiB default) applies to
	// the whole process.
	berLimitsOnce.Do(func() {
		if limit := int64(max(cfg.MaxMessageSize, DefaultMaxMessageSize)); limit < ber.MaxPacketLengthBytes {
			ber.MaxPacketLengthBytes = limit
		}
		ber.MaxNestingDepth = maxBERNesting
	})
	return s, nil
}

// maxBERNesting bounds nested BER values in one message (deep filters).
const maxBERNesting = 200

// HandleSearchControl routes search requests that carry a control with oid
// to h instead of the store. The OID is then listed in the Root DSE's
// supportedControl. Call it before Serve.
func (s *Server) HandleSearchControl(oid string, h SearchHandler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.handlers {
		if s.handlers[i].oid == oid {
			s.handlers[i].h = h
			return
		}
	}
	s.handlers = append(s.handlers, handlerEntry{oid: oid, h: h})
}

func (s *Server) handler(ctrls []Control) (SearchHandler, bool) {
	if len(ctrls) == 0 {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range ctrls {
		for _, he := range s.handlers {
			if he.oid == c.OID {
				return he.h, true
			}
		}
	}
	return nil, false
}

func (s *Server) handlerOIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.handlers))
	for i, he := range s.handlers {
		out[i] = he.oid
	}
	return out
}

// Serve accepts plain LDAP connections on l until Close; StartTLS is
// offered when Config.TLSConfig is set.
func (s *Server) Serve(l net.Listener) error { return s.serve(l, false) }

// ServeTLS accepts LDAPS connections on l: TLS from the first byte.
func (s *Server) ServeTLS(l net.Listener) error {
	if s.tls == nil {
		return errors.New("server: ServeTLS needs Config.TLSConfig")
	}
	return s.serve(l, true)
}

func (s *Server) serve(l net.Listener, useTLS bool) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			// A resource exhausted for now (EMFILE when the process has no
			// file descriptor left) must not end the listener: back off
			// and retry, as net/http does (issue 9, item 9).
			if temporaryAccept(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("ldap accept", slog.Any("err", err), slog.Duration("retry", delay))
				s.metrics.acceptError()
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("server: accept: %w", err)
		}
		delay = 0
		ip := remoteIP(nc)
		if !s.caps.acquire(ip) {
			s.refuse(nc, ip, useTLS)
			continue
		}
		raw := nc
		if useTLS {
			nc = tls.Server(nc, s.tls)
		}
		c := newConn(s, nc, raw, useTLS)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			s.caps.release(ip)
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.metrics.connOpened()
		go func() {
			defer s.wg.Done()
			defer s.caps.release(ip)
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			s.metrics.connClosed()
		}()
	}
}

// Close stops the listeners, closes every connection (cancelling their
// operations, search handlers included) and waits for them to finish.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.workers.stop()
	return nil
}

// isRoot reports whether name is the configured root DN.
func (s *Server) isRoot(name string) bool {
	if s.rootNorm == "" || name == "" {
		return false
	}
	if name == s.cfg.RootDN {
		return true
	}
	n, err := dn.Normalize(name)
	return err == nil && n == s.rootNorm
}

// SetRootPassword replaces the root DN's password hash (a hash accepted by
// ldapstore.VerifyPassword) for every later bind; the appliance's `postern
// admin password` uses it.
func (s *Server) SetRootPassword(hash string) { s.rootPW.Store(&hash) }
