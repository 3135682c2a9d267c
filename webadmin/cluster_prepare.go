package webadmin

import (
	"net/http"

	"postern/webadmin/form"
)

// clusterPrepare makes a cluster identifier and downloads it as
// clusterid.txt ("Download cluster identifier").
func (s *Server) clusterPrepare(w http.ResponseWriter, r *http.Request) {
	f, err := form.ParsePrepare(r)
	if err != nil {
		s.failed(w, r, "/cluster#prepare", err)
		return
	}
	var ans struct {
		ClusterID string `json:"clusterid"`
	}
	if err := s.be.call(r.Context(), "POST", "/v1/cluster/prepare", f, &ans); err != nil {
		s.failed(w, r, "/cluster#prepare", err)
		return
	}
	s.log.Info("cluster identifier downloaded from the web menu", "allow", f.Allow)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="clusterid.txt"`)
	w.Write([]byte(ans.ClusterID))
}
