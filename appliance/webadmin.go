package appliance

import (
	"crypto/tls"
	"fmt"
	"net/http"

	"postern/ldapstore"
	"postern/webadmin"
)

// The admin web menu (package webadmin) on --admin, HTTPS with the machine
// certificate. Its backend is the control API itself, called in process:
// every action the menu (and its /api/) offers is the control route the
// CLI uses, so it exists once.

// webRoutes registers the control routes the menu needed beyond the
// CLI's: logs, the machine certificate, admin tokens, the metrics.
func (a *Appliance) webRoutes(mux *http.ServeMux) {
	a.logRoutes(mux)
	a.tlsRoutes(mux)
	a.tokenRoutes(mux)
	a.statsRoutes(mux)
}

// verifyAdmin checks the machine-local admin password.
func (a *Appliance) verifyAdmin(pw string) bool {
	a.adminMu.Lock()
	h := a.adminHash
	a.adminMu.Unlock()
	return ldapstore.VerifyPassword(h, pw)
}

// startAdmin serves the web menu on the admin listener and the metrics
// history it charts.
func (a *Appliance) startAdmin() error {
	stop := make(chan struct{})
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.runStats(stop)
	}()
	a.closers = append(a.closers, func() { close(stop) })
	if !enabled(a.cfg.AdminAddr) {
		return nil
	}
	web, err := webadmin.New(webadmin.Config{
		Backend:        a.controlMux(),
		VerifyPassword: a.verifyAdmin,
		VerifyToken:    a.tokens.verify,
		Logger:         a.log.With("component", "webadmin"),
	})
	if err != nil {
		return err
	}
	a.closers = append(a.closers, web.Close)
	l, err := a.listen("admin", a.cfg.AdminAddr)
	if err != nil {
		return err
	}
	cfg := a.tlsConfig.Clone()
	cfg.NextProtos = []string{"h2", "http/1.1"}
	a.serveHTTP("admin", tls.NewListener(l, cfg), web)
	return nil
}

// adminURL is the menu's URL as Start prints it ("" when it is off).
func (a *Appliance) adminURL() string {
	if addr, ok := a.addrs["admin"]; ok {
		return fmt.Sprintf("https://%s/", addr)
	}
	return ""
}
