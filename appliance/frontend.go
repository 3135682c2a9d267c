package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/go-ldap/ldap/v3"

	"postern/cluster"
	"postern/ldapstore/server"
	"postern/smtp"
	"postern/smtp/secure"
)

// An appliance whose data directory holds frontend.json runs as a cluster
// frontend (seed: "Add this device as frontend server (no local
// database)"): no directory of its own, no key material; its LDAP
// listener answers reads through a backend and refuses writes, its SMTP
// gateway looks policy up in memory, kept fresh by the backend; its
// machine-local data (identity, keys, admin password, system settings,
// the mail queue) is its own as ever.

// newFrontendMode makes the store-less parts of a frontend (New).
func (a *Appliance) newFrontendMode() error {
	cfg := a.cfg
	// the local directory is gone for good: attach closed it, this removes it
	for _, f := range []string{storeFile, storeFile + ".lock"} {
		if err := os.Remove(filepath.Join(cfg.DataDir, f)); err == nil {
			a.log.Warn("frontend: the local directory was removed (a frontend keeps none)", slog.String("file", f))
		}
	}
	fe, err := cluster.NewFrontend(cluster.FrontendConfig{
		DataDir: cfg.DataDir, DeviceID: a.identity.DeviceID, UUID: a.identity.UUID,
		Local: func() cluster.Local {
			s := a.System()
			return cluster.Local{Hostname: s.Hostname, Comment: s.Comment, Location: s.Location, NTPServer: s.NTPServer}
		},
		Heartbeat: cfg.ClusterHeartbeat, Registry: a.registry, Logger: a.log.With("component", "frontend"),
	})
	if err != nil {
		return err
	}
	a.fe = fe
	a.feDir = newFrontendDirectory(fe.DialLDAP, cfg.Suffix, a.registry, a.log.With("component", "frontend-directory"))
	a.proxy = server.NewProxy(server.ProxyConfig{
		Dial: func(ctx context.Context) (net.Conn, error) {
			c, _, err := fe.DialLDAP(ctx)
			return c, err
		},
		WriteRefusal: a.frontendRefusal,
		TLSConfig:    a.tlsConfig,
		Logger:       a.log.With("component", "ldap-proxy"),
	})
	// secure mail with the backend's keys, asked per message (remoteKeys):
	// nothing of them is kept here
	a.secure, err = secure.New(secure.Config{
		Keys: newCachedKeys(&remoteKeys{call: func(ctx context.Context, op string, arg, out any) error {
			b, err := json.Marshal(arg)
			if err != nil {
				return err
			}
			res, err := fe.Call(ctx, op, b)
			if errors.Is(err, cluster.ErrNoBackend) {
				return fmt.Errorf("%w: %w", smtp.ErrDirectoryUnavailable, err)
			}
			if err != nil {
				return err
			}
			return json.Unmarshal(res, out)
		}}, a.feDir.generation),
		Hostname: a.system.Hostname,
		Registry: a.registry,
		Logger:   a.log.With("component", "secure"),
	})
	if err != nil {
		fe.Close()
		return err
	}
	a.smtp, err = smtp.New(smtp.Config{
		Hostname:  a.system.Hostname,
		TLSConfig: a.tlsConfig,
		DataDir:   filepath.Join(cfg.DataDir, "queue"),
		Directory: a.feDir,
		// the backends its admin allowed inject here (outbound mail
		// through the DMZ): their tunnels come on the cluster address
		InjectAllowed: fe.InjectAllowed,
		Processor:     a.secure,
		Registry:      a.registry,
		Logger:        a.log.With("component", "smtp"),
	})
	if err != nil {
		fe.Close()
		return fmt.Errorf("appliance: open mail queue: %w", err)
	}
	a.registerMetrics()
	return nil
}

// frontendRefusal is the message of a write sent to a frontend's LDAP
// listener: where to write instead (each backend's LDAP address once
// known, else its cluster address).
func (a *Appliance) frontendRefusal() string {
	return "this appliance is a cluster frontend without a local directory: write on a backend:" + a.backendList(true)
}

// backendList names this frontend's backends: " PST-… (LDAP ldap://IP:PORT)"
// for each, or its cluster address when its LDAP address is not known yet.
func (a *Appliance) backendList(ldap bool) string {
	where := ""
	for _, b := range a.fe.Backends() {
		switch {
		case ldap && b.LDAP != "":
			where += fmt.Sprintf(" %s (ldap://%s)", b.DeviceID, b.LDAP)
		default:
			where += fmt.Sprintf(" %s (cluster address %s)", b.DeviceID, b.Cluster)
		}
	}
	return where
}

// startFrontend starts a frontend's listeners (Start).
func (a *Appliance) startFrontend(ctx context.Context) error {
	a.fe.Start()
	dctx, cancel := context.WithCancel(context.Background())
	a.feCancel = cancel
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.feDir.run(dctx)
	}()
	if err := a.serveOn("ldap", a.cfg.LDAPAddr, a.proxy.Serve); err != nil {
		return err
	}
	return a.serveOn("ldaps", a.cfg.LDAPSAddr, a.proxy.ServeTLS)
}

// serveFrontendInjection serves the backends' injection tunnels on the
// cluster address (Start, once the SMTP listener's address is known).
func (a *Appliance) serveFrontendInjection() error {
	if !enabled(a.cfg.ClusterAddr) {
		return nil
	}
	l, err := a.listen("cluster", a.cfg.ClusterAddr)
	if err != nil {
		return err
	}
	smtpAddr := a.addrs["smtp"] // read here: Start goes on adding listeners
	a.goServe("cluster", func() error { return a.fe.Serve(l, smtpAddr, a.smtp.ServeInjected) })
	return nil
}

// countEntries reads a backend's posternEntryCount through a tunnel.
func countEntries(ctx context.Context, c net.Conn) (int, error) {
	l := ldap.NewConn(c, false)
	l.Start()
	defer l.Close()
	res, err := l.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"posternEntryCount"}, nil))
	if err != nil {
		return 0, err
	}
	if len(res.Entries) != 1 {
		return 0, fmt.Errorf("no root DSE")
	}
	return strconv.Atoi(res.Entries[0].GetAttributeValue("posternEntryCount"))
}

// frontendRoutes are the control routes of a frontend: what it can do
// without a directory; everything else says where to do it.
func (a *Appliance) frontendRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/status", a.jsonHandler(func(r *http.Request) (any, error) { return a.Status(r.Context()) }))
	mux.HandleFunc("GET /v1/system", a.jsonHandler(func(r *http.Request) (any, error) { return a.System(), nil }))
	mux.HandleFunc("POST /v1/system", a.jsonHandler(func(r *http.Request) (any, error) {
		var req SystemUpdate
		if err := decodeJSON(r, &req); err != nil {
			return nil, err
		}
		return a.SetSystem(req)
	}))
	mux.HandleFunc("POST /v1/stop", a.jsonHandler(func(r *http.Request) (any, error) {
		a.requestStop()
		return map[string]bool{"stopping": true}, nil
	}))
	a.adminRoutes(mux)
	a.queueRoutes(mux)
	a.webRoutes(mux)
	mux.HandleFunc("GET /v1/cluster/status", a.jsonHandler(func(r *http.Request) (any, error) {
		return &cluster.Status{Member: true, DeviceID: a.identity.DeviceID, UUID: a.identity.UUID,
			Frontend: a.fe.Status(r.Context(), countEntries)}, nil
	}))
	mux.HandleFunc("POST /v1/cluster/backend/add", a.jsonHandler(func(r *http.Request) (any, error) {
		var req struct {
			Addr string `json:"addr"`
		}
		if err := decodeJSON(r, &req); err != nil {
			return nil, err
		}
		return map[string]string{"added": req.Addr}, clusterError(a.fe.AddBackend(r.Context(), req.Addr))
	}))
	mux.HandleFunc("POST /v1/cluster/backend/remove", a.jsonHandler(func(r *http.Request) (any, error) {
		var req struct {
			Addr string `json:"addr"`
		}
		if err := decodeJSON(r, &req); err != nil {
			return nil, err
		}
		return map[string]string{"removed": req.Addr}, clusterError(a.fe.RemoveBackend(r.Context(), req.Addr))
	}))
	mux.HandleFunc("POST /v1/cluster/inject", a.jsonHandler(func(r *http.Request) (any, error) {
		var req cluster.InjectRequest
		if err := decodeJSON(r, &req); err != nil {
			return nil, err
		}
		if len(req.Frontends) > 0 {
			return nil, badRequest("a frontend injects on backends only")
		}
		to, err := a.fe.SetInject(req.Backends)
		if err != nil {
			return nil, badRequest("%s", err)
		}
		return map[string][]string{"inject_to": to}, nil
	}))
	mux.HandleFunc("POST /v1/cluster/frontend/detach", a.jsonHandler(func(r *http.Request) (any, error) {
		told, err := a.fe.Detach(r.Context())
		if err != nil {
			return nil, clusterError(err)
		}
		a.requestRestart() // standalone, with a fresh default directory
		return map[string]string{"told": told}, nil
	}))
	mux.HandleFunc("POST /v1/cluster/frontend/attach", a.jsonHandler(func(r *http.Request) (any, error) {
		return nil, &apiError{http.StatusConflict, "this appliance is already a cluster frontend, of" + a.backendList(false) + ": detach it first (postern cluster frontend detach)"}
	}))
	mux.HandleFunc("/v1/", a.jsonHandler(func(r *http.Request) (any, error) {
		return nil, &apiError{http.StatusConflict, "this appliance is a cluster frontend and keeps no directory: this command needs one; run it on a backend:" + a.backendList(false)}
	}))
}
