package webadmin

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"

	"postern/webadmin/session"
)

// Middleware, each named for what it enforces; routes.go applies them.

// contentSecurityPolicy allows nothing but the appliance's own files: no
// inline script or style, no framing, forms only to the menu itself.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// securityHeaders sets the headers every answer carries.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("Strict-Transport-Security", "max-age=31536000")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}

// crossOrigin refuses every state-changing request (POST, PUT, DELETE,
// ...) that a browser marks as coming from another site (Sec-Fetch-Site,
// else Origin against Host): Go's http.CrossOriginProtection. Requests
// without those headers (curl, scripts with a bearer token) are not from
// a browser page and pass. The session cookie is SameSite=Strict besides.
func (s *Server) crossOrigin(h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.log.Warn("cross-origin request refused", "method", r.Method, "path", r.URL.Path,
			"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"), "client", clientIP(r))
		msg := "cross-site request refused: state-changing requests must come from the admin menu's own pages"
		if isAPI(r) {
			writeJSONError(w, http.StatusForbidden, msg)
			return
		}
		http.Error(w, msg, http.StatusForbidden)
	}))
	return cop.Handler(h)
}

// recoverPanics answers 500 for a handler that panicked and logs it.
func (s *Server) recoverPanics(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("web menu handler panicked", "path", r.URL.Path, "panic", p)
				http.Error(w, "internal error (see the appliance's log)", http.StatusInternalServerError)
			}
		}()
		h.ServeHTTP(w, r)
	})
}

const sessionCookie = "postern_session"

type ctxKey int

const sessionKey ctxKey = 0

// liveHeader marks the background refreshes of live.js: they do not count
// as activity for the idle timeout.
const liveHeader = "X-Postern-Live"

// session returns the request's valid session, if any.
func (s *Server) session(r *http.Request) (session.Session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return session.Session{}, false
	}
	if r.Header.Get(liveHeader) != "" {
		return s.sessions.Peek(c.Value)
	}
	return s.sessions.Get(c.Value)
}

// requireSession lets a page through only with a live session; without
// one the browser goes to the login page (and back after it).
func (s *Server) requireSession(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ss, ok := s.session(r)
		if !ok {
			next := ""
			if r.Method == http.MethodGet && r.Header.Get(liveHeader) == "" {
				next = "?next=" + url.QueryEscape(r.URL.RequestURI())
			}
			http.Redirect(w, r, "/login"+next, http.StatusSeeOther)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey, ss)))
	})
}

// requireAuth lets an API call through with a bearer token or a live
// session; else 401 with a JSON error saying how to authenticate.
func (s *Server) requireAuth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if auth := r.Header.Get("Authorization"); auth != "" {
			// RFC 9110 §11.1: the scheme name is case-insensitive
			scheme, tok, _ := strings.Cut(strings.TrimSpace(auth), " ")
			ok := strings.EqualFold(scheme, "Bearer")
			if !ok || !s.cfg.VerifyToken(strings.TrimSpace(tok)) {
				s.log.Warn("api: bearer token refused", "client", clientIP(r), "path", r.URL.Path)
				w.Header().Set("WWW-Authenticate", `Bearer realm="postern"`)
				writeJSONError(w, http.StatusUnauthorized, "the bearer token is not valid (revoked, mistyped or from another appliance): make one with `postern admin token create` on this appliance")
				return
			}
			h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenKey, true)))
			return
		}
		ss, ok := s.session(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="postern"`)
			writeJSONError(w, http.StatusUnauthorized, "not logged in: send Authorization: Bearer TOKEN (make one with `postern admin token create`) or log in to the menu at /login first")
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey, ss)))
	})
}

func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Length")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// clientIP is the peer's IP (the menu trusts no forwarding header).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// sessionOf returns the session requireSession put into the context.
func sessionOf(r *http.Request) (session.Session, bool) {
	ss, ok := r.Context().Value(sessionKey).(session.Session)
	return ss, ok
}
