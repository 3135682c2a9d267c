package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"postern/firmware"
	"postern/ldapstore"
)

// The control socket is HTTP over a unix socket in the data directory,
// mode 0600: whoever may read the data directory may administer the
// appliance, so the CLI needs no password (DESIGN: Interfaces).

// apiError is an error with the HTTP status the control API answers with.
type apiError struct {
	Status int
	Msg    string
}

func (e *apiError) Error() string { return e.Msg }

func badRequest(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func (a *Appliance) startControl() error {
	p := filepath.Join(a.cfg.DataDir, controlSocket)
	os.Remove(p) // stale from a crash; we hold the data directory lock
	l, err := net.Listen("unix", p)
	if err != nil {
		return fmt.Errorf("appliance: control socket: %w", err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		l.Close()
		return fmt.Errorf("appliance: control socket: %w", err)
	}
	a.listeners = append(a.listeners, l)
	srv := &http.Server{Handler: a.controlMux(), ReadHeaderTimeout: 10 * time.Second}
	a.https = append(a.https, srv)
	a.goServe("control", func() error { return srv.Serve(l) })
	return nil
}

// controlMux is the control API of this appliance's role: the CLI's
// socket and the web menu's backend serve the same one.
func (a *Appliance) controlMux() *http.ServeMux {
	mux := http.NewServeMux()
	if a.fe != nil {
		a.frontendRoutes(mux)
	} else {
		a.routes(mux)
	}
	return mux
}

func (a *Appliance) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/status", a.jsonHandler(func(r *http.Request) (any, error) { return a.Status(r.Context()) }))
	mux.HandleFunc("GET /v1/system", a.jsonHandler(func(r *http.Request) (any, error) { return a.System(), nil }))
	mux.HandleFunc("POST /v1/system", a.jsonHandler(func(r *http.Request) (any, error) {
		var req SystemUpdate
		if err := decodeJSON(r, &req); err != nil {
			return nil, err
		}
		return a.SetSystem(req)
	}))
	mux.HandleFunc("GET /v1/ldif/export", a.handleExport) // ?private_keys=true keeps posternPrivateKey (still sealed)
	mux.HandleFunc("POST /v1/ldif/import", a.handleImport)
	mux.HandleFunc("POST /v1/ldif/restore", a.handleRestore)
	a.adminRoutes(mux)
	mux.HandleFunc("POST /v1/stop", a.jsonHandler(func(r *http.Request) (any, error) {
		a.log.Info("stop requested through the control socket")
		a.requestStop()
		return map[string]bool{"stopping": true}, nil
	}))
	a.policyRoutes(mux)
	a.secureRoutes(mux)
	a.queueRoutes(mux)
	a.clusterRoutes(mux)
	a.webRoutes(mux)
}

func decodeJSON(r *http.Request, v any) error {
	return decodeJSONLimit(r, v, 1<<20)
}

// decodeJSONLimit is decodeJSON for a body of at most limit bytes (a
// request that carries a file).
func decodeJSONLimit(r *http.Request, v any, limit int64) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return &apiError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request larger than %d bytes", limit)}
		}
		return badRequest("bad request: %v", err)
	}
	return nil
}

func (a *Appliance) jsonHandler(f func(r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := f(r)
		if err != nil {
			writeError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(v)
	}
}

func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var ae *apiError
	var le *ldapstore.Error
	switch {
	case errors.As(err, &ae):
		status = ae.Status
	case errors.As(err, &le):
		status = http.StatusUnprocessableEntity
		if le.Code == ldapstore.NoSuchObject {
			status = http.StatusNotFound
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

// StatusReport is what `postern status` shows.
type StatusReport struct {
	DeviceID   string            `json:"device_id"`
	UUID       string            `json:"uuid"`
	Hostname   string            `json:"hostname"`
	Version    string            `json:"version"`
	Build      string            `json:"build"`
	DataDir    string            `json:"data_dir"`
	Uptime     string            `json:"uptime"`
	Listeners  map[string]string `json:"listeners"`
	Entries    int               `json:"entries"`
	ContextCSN []string          `json:"context_csn"`
	Role       string            `json:"role,omitempty"`
}

// Status reports identity, listeners and the directory's size and state.
func (a *Appliance) Status(ctx context.Context) (*StatusReport, error) {
	n := -1 // a frontend keeps no directory
	if a.store != nil {
		var err error
		if n, err = a.store.Count(ctx); err != nil {
			return nil, err
		}
	}
	sys := a.System()
	rep := &StatusReport{
		DeviceID: a.identity.DeviceID, UUID: a.identity.UUID, Hostname: sys.Hostname,
		Version: firmware.Version, Build: firmware.Build, DataDir: a.cfg.DataDir,
		Uptime: time.Since(a.started).Round(time.Second).String(), Listeners: a.addrs, Entries: n,
	}
	if a.store == nil {
		rep.Role = "frontend (no local directory)"
		return rep, nil
	}
	for _, c := range a.store.ContextCSN() {
		rep.ContextCSN = append(rep.ContextCSN, c.String())
	}
	return rep, nil
}

// SystemUpdate changes machine-local settings; nil fields stay as they are.
type SystemUpdate struct {
	Hostname  *string `json:"hostname,omitempty"`
	Comment   *string `json:"comment,omitempty"`
	Location  *string `json:"location,omitempty"`
	NTPServer *string `json:"ntp_server,omitempty"`
}

// System returns the machine-local settings.
func (a *Appliance) System() System {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.system
}

// SetSystem changes machine-local settings and saves them.
func (a *Appliance) SetSystem(u SystemUpdate) (System, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.system
	if u.Hostname != nil {
		if !validHostname(*u.Hostname) {
			return s, badRequest("invalid hostname %q", *u.Hostname)
		}
		s.Hostname = *u.Hostname
	}
	if u.Comment != nil {
		s.Comment = *u.Comment
	}
	if u.Location != nil {
		s.Location = *u.Location
	}
	if u.NTPServer != nil {
		s.NTPServer = *u.NTPServer
	}
	if err := saveSystem(a.cfg.DataDir, s); err != nil {
		return a.system, err
	}
	a.system = s
	return s, nil
}

// validHostname accepts RFC 1123 host names.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c == '.':
			if label == 0 || h[i-1] == '-' {
				return false
			}
			label = 0
			continue
		case c == '-':
			if label == 0 {
				return false
			}
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		default:
			return false
		}
		label++
		if label > 63 {
			return false
		}
	}
	return h[len(h)-1] != '-'
}
