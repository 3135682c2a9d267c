package webadmin

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// api serves /api/...: the control API itself, the /api prefix stripped
// (/api/v1/cluster/status is the CLI's /v1/cluster/status), behind
// requireAuth and crossOrigin. An answer that is not JSON (an unknown
// route) becomes a JSON error.
func (s *Server) api(w http.ResponseWriter, r *http.Request) {
	r2 := r.Clone(r.Context())
	r2.URL.Path = strings.TrimPrefix(r.URL.Path, "/api")
	r2.URL.RawPath = ""
	r2.RequestURI = ""
	if msg := s.apiRefusal(r2); msg != "" {
		s.log.Warn("api: refused", "client", clientIP(r), "method", r.Method, "path", r.URL.Path)
		writeJSONError(w, http.StatusForbidden, msg)
		return
	}
	s.cfg.Backend.ServeHTTP(&apiWriter{ResponseWriter: w, path: r2.URL.Path, method: r.Method}, r2)
}

type tokenKeyType struct{}

// tokenKey marks a request authenticated by a bearer token (not a session).
var tokenKey tokenKeyType

// apiRefusal says why r may not go through /api/ ("" when it may). The
// machine's own credentials and its process are the control socket's
// (root on the appliance): the admin password is reset and the appliance
// stopped only there. A bearer token (a script's credential, possibly
// stored on another machine) further may not make or revoke tokens, nor
// take private keys out (keys export --private, ldif export with
// private_keys), so that a leaked token cannot outlive its revocation or
// carry the keys away.
func (s *Server) apiRefusal(r *http.Request) string {
	socket := "only through the control socket on the appliance (the postern CLI as root)"
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/admin/password":
		return "the admin password is reset " + socket + ": postern admin password"
	case r.Method == http.MethodPost && r.URL.Path == "/v1/stop":
		return "the appliance is stopped " + socket + ": postern stop"
	}
	if tok, _ := r.Context().Value(tokenKey).(bool); !tok {
		return ""
	}
	by := "a bearer token may not "
	switch {
	case r.URL.Path == "/v1/admin/tokens" || strings.HasPrefix(r.URL.Path, "/v1/admin/tokens/"):
		if r.Method != http.MethodGet {
			return by + "make or revoke tokens: use `postern admin token` on the appliance, or the menu after logging in"
		}
	case r.URL.Path == "/v1/ldif/export" && r.URL.Query().Get("private_keys") != "" && r.URL.Query().Get("private_keys") != "false":
		return by + "export private keys: use `postern ldif export --private-keys` on the appliance"
	case r.Method == http.MethodPost && r.URL.Path == "/v1/keys/export":
		// peek at the body, bounded, and hand it on unchanged
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
		var req struct {
			Private bool `json:"private"`
		}
		if err == nil && json.Unmarshal(body, &req) == nil && req.Private {
			return by + "export private keys: use `postern keys export --private` on the appliance"
		}
	}
	return ""
}

// apiWriter turns the mux's plain-text 404 and 405 into JSON errors.
type apiWriter struct {
	http.ResponseWriter
	path, method string
	swallow      bool
}

func (w *apiWriter) WriteHeader(code int) {
	ct := w.Header().Get("Content-Type")
	if (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) && !strings.HasPrefix(ct, "application/json") {
		w.swallow = true
		msg := "no API route " + w.method + " /api" + w.path + ": the routes are the CLI's control routes under /api/v1/ (see the README's Web menu section)"
		if code == http.StatusMethodNotAllowed {
			msg = "method " + w.method + " is not allowed on /api" + w.path + " (allowed: " + w.Header().Get("Allow") + ")"
		}
		writeJSONError(w.ResponseWriter, code, msg)
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *apiWriter) Write(p []byte) (int, error) {
	if w.swallow {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// Flush passes streamed progress (join, import) on at once.
func (w *apiWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (full-duplex
// LDIF import).
func (w *apiWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
