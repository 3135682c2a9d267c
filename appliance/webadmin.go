package appliance

import (
	"fmt"
	"net/http"

	"postern/ldapstore"
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
// history it charts. The menu is the serve command's (Config.menu), kept
// across a restart in a new role, or this appliance's own.
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
	m, shared := a.cfg.menu, a.cfg.menu != nil
	if !shared {
		m = &webMenu{}
	}
	if err := m.attach(a); err != nil {
		return err
	}
	a.closers = append(a.closers, func() {
		select {
		case <-a.restartReq:
			if shared { // made anew in the same process: the menu stays
				m.detach(a)
				return
			}
		default:
		}
		m.close()
	})
	a.addrs["admin"] = m.addr
	return nil
}

// adminURL is the menu's URL as Start prints it ("" when it is off).
func (a *Appliance) adminURL() string {
	if addr, ok := a.addrs["admin"]; ok {
		return fmt.Sprintf("https://%s/", addr)
	}
	return ""
}
