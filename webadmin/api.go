package webadmin

import (
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
	s.cfg.Backend.ServeHTTP(&apiWriter{ResponseWriter: w, path: r2.URL.Path, method: r.Method}, r2)
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
