package webadmin

import (
	"fmt"
	"net/http"
	"net/url"

	"postern/webadmin/form"
)

type backendPage struct {
	Row    backendRow
	Number string // this frontend's F(…)
	Only   bool   // its only backend: it cannot be removed
}

// backendShow is the page an IP address in Remote LDAP server opens: the
// backend, what removing it does, and the button (none for the only
// backend).
func (s *Server) backendShow(w http.ResponseWriter, r *http.Request) {
	const title = "Remove LDAP server"
	v, err := s.loadCluster(r.Context())
	if err != nil {
		s.errorPage(w, r, http.StatusBadGateway, title, err)
		return
	}
	fe := v.Status.Frontend
	if fe == nil {
		s.errorPage(w, r, http.StatusNotFound, title, fmt.Errorf("this appliance is not a frontend server: it has no remote LDAP servers"))
		return
	}
	addr := r.PathValue("addr")
	for _, b := range fe.Backends {
		if b.Addr() == addr {
			s.render(w, r, http.StatusOK, "backend", &page{Title: title + " " + addr, Nav: "cluster", Data: backendPage{Row: b, Number: fe.Number, Only: len(fe.Backends) == 1}})
			return
		}
	}
	s.errorPage(w, r, http.StatusNotFound, title, fmt.Errorf("%s is not a backend of this frontend (any more)", addr))
}

// backendRemove takes a backend off this frontend's list.
func (s *Server) backendRemove(w http.ResponseWriter, r *http.Request) {
	addr := r.PathValue("addr")
	if err := s.be.call(r.Context(), "POST", "/v1/cluster/backend/remove", form.Backend{Addr: addr}, nil); err != nil {
		s.failed(w, r, "/cluster/backends/"+url.PathEscape(addr), err)
		return
	}
	s.done(w, r, "/cluster#remote", "Backend "+addr+" removed from this frontend's list: lookups no longer go to it. It stays a member of the cluster with its database.")
}
