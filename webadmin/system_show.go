package webadmin

import "net/http"

type systemPage struct {
	System systemSettings
	Status statusReport
	NTP    ntpStatus
	Member bool
	// Frontend: a frontend server does not measure its clock (it stamps
	// no changes); its backends do.
	Frontend bool
}

// systemShow is the System page: this machine's own settings (never
// replicated) and its firmware.
func (s *Server) systemShow(w http.ResponseWriter, r *http.Request) {
	var p systemPage
	var cs clusterStatus
	ctx := r.Context()
	for _, c := range []struct {
		path string
		out  any
	}{{"/v1/system", &p.System}, {"/v1/status", &p.Status}, {"/v1/cluster/status", &cs}} {
		if err := s.be.call(ctx, "GET", c.path, nil, c.out); err != nil {
			s.errorPage(w, r, http.StatusBadGateway, "System", err)
			return
		}
	}
	p.NTP, p.Member, p.Frontend = cs.NTP, cs.Member, cs.Frontend != nil
	s.render(w, r, http.StatusOK, "system", &page{Title: "System", Nav: "system", Data: p})
}
