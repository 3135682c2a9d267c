package webadmin

import (
	"net/http"
)

// detachConfirm says what "Detach from LDAP server" does.
func (s *Server) detachConfirm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "confirm", &page{Title: "Detach from LDAP server", Nav: "cluster", Data: confirm{
		What: []string{
			"This appliance stops being a frontend server: a backend deletes its record in the cluster, which revokes its device key; it no longer appears in Cluster Setup.",
			"It makes itself anew in the running process as a standalone appliance, with a fresh, empty local database (the seed's appliance restarts).",
			"With an empty directory it has no managed domains and no relay settings: until it is configured again it refuses mail for the cluster's domains, so move its mail traffic to another member first.",
			"Its machine-local data stays: hostname, certificate, admin password, this session, the mail queue.",
			"To be a frontend again, it needs a new clusterid.txt from a backend.",
		},
		Action: "/cluster/detach", Button: "Detach", Cancel: "/cluster#detach", Danger: true,
	}})
}

// detachStart detaches this frontend in the background and shows the
// progress page: which backend was told, then the result once the
// appliance answers as a standalone appliance.
func (s *Server) detachStart(w http.ResponseWriter, r *http.Request) {
	j, fresh := s.jobs.start("detach", "Detach from LDAP server", s.cfg.Now())
	if !fresh {
		s.failed(w, r, j.path(), busy(j))
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		j.add("telling a backend")
		var ans struct {
			Told string `json:"told"`
		}
		if err := s.be.call(s.ctx, "POST", "/v1/cluster/frontend/detach", nil, &ans); err != nil {
			j.finish("", errorText(err))
			return
		}
		j.add(ans.Told + " deleted this frontend's record: its key is revoked")
		j.add("restarting as a standalone appliance with a fresh, empty directory")
		result, failure := "", ""
		if _, err := s.awaitRole(s.ctx, false); err != nil {
			failure = "detached, but " + err.Error()
		} else {
			j.add("running as a standalone appliance")
			result = "This appliance is standalone again, with a fresh, empty local database. It can join a cluster or be attached as a frontend server again with a new clusterid.txt."
		}
		j.finish(result, failure)
		s.log.Info("frontend detach from the web menu finished", "ok", failure == "", "told", ans.Told, "err", failure)
	}()
	http.Redirect(w, r, j.path(), http.StatusSeeOther)
}
