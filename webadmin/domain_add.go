package webadmin

import (
	"net/http"

	"postern/webadmin/form"
)

// domainAdd adds (or changes) a managed domain.
func (s *Server) domainAdd(w http.ResponseWriter, r *http.Request) {
	f, err := form.ParseDomain(r)
	if err != nil {
		s.failed(w, r, "/mail#domains", err)
		return
	}
	var d domain
	if err := s.be.call(r.Context(), "POST", "/v1/domains", f, &d); err != nil {
		s.failed(w, r, "/mail#domains", err)
		return
	}
	s.done(w, r, "/mail#domains", "Managed domain "+d.Name+" saved: its mail goes to "+d.DeliverTo+" (TLS "+d.TLS+").")
}
