package webadmin

import (
	"net/http"

	"postern/webadmin/form"
)

// systemSave changes hostname, comment, location and NTP server.
func (s *Server) systemSave(w http.ResponseWriter, r *http.Request) {
	if err := s.be.call(r.Context(), "POST", "/v1/system", form.ParseSystem(r), nil); err != nil {
		s.failed(w, r, "/system", err)
		return
	}
	s.done(w, r, "/system", "System settings saved (machine-local: they are not replicated).")
}
