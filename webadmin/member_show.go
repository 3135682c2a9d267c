package webadmin

import (
	"fmt"
	"net/http"
)

type memberPage struct {
	Row  memberRow
	UUID string
}

// memberShow is "Remove device from cluster" for a remote member (the
// page a Device ID in Cluster members opens): what will happen, and the
// button.
func (s *Server) memberShow(w http.ResponseWriter, r *http.Request) {
	v, err := s.loadCluster(r.Context())
	if err != nil {
		s.errorPage(w, r, http.StatusBadGateway, "Remove device from cluster", err)
		return
	}
	id := r.PathValue("id")
	for _, m := range v.Status.Members {
		if m.DeviceID != id {
			continue
		}
		if m.Self {
			http.Redirect(w, r, "/cluster/leave", http.StatusSeeOther)
			return
		}
		s.render(w, r, http.StatusOK, "member", &page{Title: "Remove device from cluster", Nav: "cluster", Data: memberPage{Row: m, UUID: v.UUIDs[id]}})
		return
	}
	s.errorPage(w, r, http.StatusNotFound, "Remove device from cluster", fmt.Errorf("%s is not a member of this cluster (any more)", id))
}
