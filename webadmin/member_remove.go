package webadmin

import (
	"net/http"
	"net/url"
)

// memberRemove removes a remote member: its access is revoked, the
// cluster keys rotate, its database stays as last synchronised.
func (s *Server) memberRemove(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.be.call(r.Context(), "POST", "/v1/cluster/remove/"+url.PathEscape(id), nil, nil); err != nil {
		s.failed(w, r, "/cluster/members/"+url.PathEscape(id), err)
		return
	}
	s.done(w, r, "/cluster#members", id+" was removed from the cluster: its access is revoked and the cluster key rotated (make a new clusterid.txt for the next join). Its database stays as last synchronised.")
}
