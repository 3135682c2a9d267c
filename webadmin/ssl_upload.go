package webadmin

import (
	"net/http"

	"postern/webadmin/form"
)

// sslUpload replaces the machine certificate with an uploaded chain and
// key, once the appliance has checked them.
func (s *Server) sslUpload(w http.ResponseWriter, r *http.Request) {
	f, err := form.ParseCertificate(r)
	if err != nil {
		s.failed(w, r, "/ssl", err)
		return
	}
	var info tlsInfo
	if err := s.be.call(r.Context(), "POST", "/v1/tls", f, &info); err != nil {
		s.failed(w, r, "/ssl", err)
		return
	}
	s.done(w, r, "/ssl", "Certificate for "+info.Subject+" installed: every listener uses it from the next connection on.")
}
