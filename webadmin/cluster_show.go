package webadmin

import (
	"context"
	"net/http"
	"sort"
)

// clusterView is what the cluster sections render.
type clusterView struct {
	Status   clusterStatus
	Firmware string
	Hostname string
	SelfAddr string // this device's cluster listener (the join form's default)
	// Backends and Frontends are the other members, for the injection
	// multi-selects.
	Backends, Frontends []setupRow
	UUIDs               map[string]string // device ID → UUID
}

type clusterPage struct {
	Sections []renderedSection
}

// loadCluster reads what the cluster sections show.
func (s *Server) loadCluster(ctx context.Context) (*clusterView, error) {
	v := &clusterView{UUIDs: map[string]string{}}
	if err := s.be.call(ctx, "GET", "/v1/cluster/status", nil, &v.Status); err != nil {
		return nil, err
	}
	var st statusReport
	if err := s.be.call(ctx, "GET", "/v1/status", nil, &st); err != nil {
		return nil, err
	}
	v.Firmware, v.Hostname, v.SelfAddr = st.Version, st.Hostname, st.Listeners["cluster"]
	for _, r := range v.Status.Setup {
		v.UUIDs[r.DeviceID] = r.UUID
		if r.Self {
			continue
		}
		if r.Frontend() {
			v.Frontends = append(v.Frontends, r)
		} else {
			v.Backends = append(v.Backends, r)
		}
	}
	sort.Slice(v.Backends, func(i, j int) bool { return v.Backends[i].DeviceID < v.Backends[j].DeviceID })
	return v, nil
}

// clusterShow is the Cluster page: every section the seed shows now.
func (s *Server) clusterShow(w http.ResponseWriter, r *http.Request) {
	v, err := s.loadCluster(r.Context())
	if err != nil {
		s.errorPage(w, r, http.StatusBadGateway, "Cluster", err)
		return
	}
	var p clusterPage
	for _, sec := range clusterSections {
		if !sec.Shown(v) {
			continue
		}
		h, err := s.part("section-"+sec.ID, v)
		if err != nil {
			s.errorPage(w, r, http.StatusInternalServerError, "Cluster", err)
			return
		}
		p.Sections = append(p.Sections, renderedSection{ID: sec.ID, Title: sec.Title, Live: sec.Live, HTML: h})
	}
	s.render(w, r, http.StatusOK, "cluster", &page{Title: "Cluster", Nav: "cluster", Data: p})
}
