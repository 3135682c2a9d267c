package webadmin

import (
	"net/http"
	"net/url"
)

// domainRemove removes a managed domain.
func (s *Server) domainRemove(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.be.call(r.Context(), "DELETE", "/v1/domains/"+url.PathEscape(name), nil, nil); err != nil {
		s.failed(w, r, "/mail#domains", err)
		return
	}
	s.done(w, r, "/mail#domains", "Managed domain "+name+" removed.")
}
