package webadmin

import (
	"context"
	"net/http"
	"slices"
	"sort"
)

// clusterView is what the cluster sections render.
type clusterView struct {
	Status   clusterStatus
	Firmware string
	Hostname string
	SelfAddr string // this device's cluster listener (the join form's default)
	// Backends and Frontends are the other members, for the injection
	// multi-selects (on a backend).
	Backends, Frontends []setupRow
	UUIDs               map[string]string // device ID → UUID
	// InjectTo is where this member may inject mail now.
	InjectTo []string

	// On a frontend: the cluster's backends (Allowed backend systems),
	// those it does not use yet (Add additional backend's choices), and
	// its NTP server (a backend it adds must have the same).
	ClusterBackends, NewBackends []memberBrief
	NTPServer                    string
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
	v.InjectTo = v.Status.InjectTo
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
	if fe := v.Status.Frontend; fe != nil {
		if err := s.loadFrontend(ctx, v, fe); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// loadFrontend fills a frontend's part of the view: the cluster's backends
// as its backends' hellos list them (before the first hello answers: its
// own backends), the ones it does not use yet, its NTP server.
func (s *Server) loadFrontend(ctx context.Context, v *clusterView, fe *frontendStatus) error {
	v.InjectTo = fe.InjectTo
	v.ClusterBackends = fe.ClusterBackends
	if len(v.ClusterBackends) == 0 {
		for _, b := range fe.Backends {
			v.ClusterBackends = append(v.ClusterBackends, memberBrief{DeviceID: b.DeviceID, Addr: b.Addr(), ClusterNo: b.ClusterNo})
		}
	}
	for _, m := range v.ClusterBackends {
		if !slices.ContainsFunc(fe.Backends, func(b backendRow) bool { return b.DeviceID == m.DeviceID }) {
			v.NewBackends = append(v.NewBackends, m)
		}
	}
	var sys systemSettings
	if err := s.be.call(ctx, "GET", "/v1/system", nil, &sys); err != nil {
		return err
	}
	v.NTPServer = sys.NTPServer
	return nil
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
