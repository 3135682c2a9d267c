package webadmin

import (
	"context"
	"html/template"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"postern/webadmin/session"
)

// Config configures the web menu. Backend and VerifyPassword are
// required; every other zero value takes the default in its comment.
type Config struct {
	// Backend is the appliance's control API (routes /v1/...).
	Backend http.Handler
	// VerifyPassword checks the machine-local admin password.
	VerifyPassword func(string) bool
	// VerifyToken checks a bearer token for /api/ (nil: none works).
	VerifyToken func(string) bool
	// Logger receives the menu's logs (logins, refusals); nil discards.
	Logger *slog.Logger
	// Now is the clock of sessions and the login throttle (time.Now).
	Now func() time.Time
	// SessionIdle and SessionAbsolute end a session after that long
	// without a request, or after the login (30 min, 8 h).
	SessionIdle, SessionAbsolute time.Duration
	// LoginDelay is the wait after the first failed login from an IP; it
	// doubles with every further failure up to LoginDelayMax (1 s, 5 min).
	LoginDelay, LoginDelayMax time.Duration
	// Refresh is how often open pages refresh their live tables (3 s).
	Refresh time.Duration
	// RoleWait bounds how long an attach or a detach waits for the
	// appliance to answer in its new role: it makes itself anew in the
	// same process, and the menu's requests wait for it meanwhile (60 s).
	RoleWait time.Duration
}

// Server is the web menu: an http.Handler to serve over HTTPS.
type Server struct {
	cfg      Config
	log      *slog.Logger
	be       *backend
	sessions *session.Store
	throttle *session.Throttle
	pages    map[string]*template.Template
	parts    *template.Template
	handler  http.Handler

	ctx    context.Context // cancelled by Close: background jobs stop
	cancel context.CancelFunc
	wg     sync.WaitGroup
	jobs   *jobs
}

// New makes the web menu; it parses every template once.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 3 * time.Second
	}
	if cfg.RoleWait <= 0 {
		cfg.RoleWait = time.Minute
	}
	if cfg.VerifyToken == nil {
		cfg.VerifyToken = func(string) bool { return false }
	}
	s := &Server{cfg: cfg, log: cfg.Logger, be: &backend{h: cfg.Backend},
		sessions: session.NewStore(cfg.SessionIdle, cfg.SessionAbsolute, cfg.Now),
		throttle: session.NewThrottle(cfg.LoginDelay, cfg.LoginDelayMax, cfg.Now),
		jobs:     newJobs(),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	s.handler = s.routes()
	return s, nil
}

// ServeHTTP serves the menu.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Close stops the background jobs (a join or import started in the menu
// is cancelled) and waits for them.
func (s *Server) Close() {
	s.cancel()
	s.wg.Wait()
}
