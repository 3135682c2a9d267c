package webadmin

import (
	"net/http"

	"postern/webadmin/form"
)

// backendAdd is "Add additional backend": the frontend checks the backend
// (a backend of its cluster, reachable with its pinned key, the same
// firmware and NTP server) and adds it to its list; lookups fail over to
// it.
func (s *Server) backendAdd(w http.ResponseWriter, r *http.Request) {
	f, err := form.ParseBackend(r)
	if err != nil {
		s.failed(w, r, "/cluster#add-backend", err)
		return
	}
	if err := s.be.call(r.Context(), "POST", "/v1/cluster/backend/add", f, nil); err != nil {
		s.failed(w, r, "/cluster#add-backend", err)
		return
	}
	s.done(w, r, "/cluster#remote", "Backend "+f.Addr+" added: lookups fail over to it when the one in use stops answering.")
}
