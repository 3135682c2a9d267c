package webadmin

import "net/http"

// leaveConfirm says what "remove this device from cluster" does.
func (s *Server) leaveConfirm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "confirm", &page{Title: "Remove this device from cluster", Nav: "cluster", Data: confirm{
		What: []string{
			"This device leaves the cluster: it stops replicating with the other members, and they stop replicating with it.",
			"Its local database remains unchanged, as of the last synchronisation in the cluster.",
			"The other members go on as a cluster without it. To join again, it needs a new clusterid.txt from a member.",
		},
		Action: "/cluster/leave", Button: "Remove this device from cluster", Cancel: "/cluster#leave", Danger: true,
	}})
}

// leave removes this device from the cluster.
func (s *Server) leave(w http.ResponseWriter, r *http.Request) {
	if err := s.be.call(r.Context(), "POST", "/v1/cluster/leave", nil, nil); err != nil {
		s.failed(w, r, "/cluster#leave", err)
		return
	}
	s.done(w, r, "/cluster", "This device left the cluster; its database stays as last synchronised.")
}
