package webadmin

import (
	"net/http"

	"postern/webadmin/form"
)

// relaySave sets the relay networks and the smarthost.
func (s *Server) relaySave(w http.ResponseWriter, r *http.Request) {
	if err := s.be.call(r.Context(), "POST", "/v1/relay", form.ParseRelay(r), nil); err != nil {
		s.failed(w, r, "/mail#relay", err)
		return
	}
	s.done(w, r, "/mail#relay", "Relay settings saved.")
}
