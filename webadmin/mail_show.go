package webadmin

import (
	"encoding/json"
	"net/http"
)

type mailPage struct {
	// Refused is the control API's refusal of the domains and relay
	// settings on a frontend (they live in the backends' directory).
	Refused string
	Domains []domain
	Relay   relaySettings
	Queue   []queueEntry
	// Cluster is every backend member's queue, on a backend of a cluster
	// (`queue list --cluster`); nil elsewhere.
	Cluster []memberQueue
}

// memberQueue is one member's queue in the cluster view.
type memberQueue struct {
	DeviceID  string
	ClusterNo int
	Error     string // the member did not answer
	Queue     []queueEntry
}

// callResult is one member's answer to a call made on every member.
type callResult struct {
	DeviceID  string          `json:"device_id"`
	ClusterNo int             `json:"cluster_no"`
	Result    json.RawMessage `json:"result"`
	Error     string          `json:"error"`
}

// mailShow is the Mail page: managed domains, relay settings (replicated
// with the cluster) and this machine's queue. On a frontend the domains
// and relay settings are its backends': the page says so and shows the
// queue, which is its own.
func (s *Server) mailShow(w http.ResponseWriter, r *http.Request) {
	var p mailPage
	for _, c := range []struct {
		path string
		out  any
	}{{"/v1/domains", &p.Domains}, {"/v1/relay", &p.Relay}, {"/v1/queue", &p.Queue}} {
		if err := s.be.call(r.Context(), "GET", c.path, nil, c.out); err != nil {
			if msg, ok := refusal(err); ok && c.path != "/v1/queue" {
				p.Refused = msg
				continue
			}
			s.errorPage(w, r, http.StatusBadGateway, "Mail", err)
			return
		}
	}
	var st clusterStatus
	if err := s.be.call(r.Context(), "GET", "/v1/cluster/status", nil, &st); err == nil && st.Member && st.Frontend == nil {
		var res []callResult
		if err := s.be.call(r.Context(), "GET", "/v1/queue?cluster=true", nil, &res); err != nil {
			p.Cluster = []memberQueue{{Error: errorText(err)}}
		}
		for _, m := range res {
			q := memberQueue{DeviceID: m.DeviceID, ClusterNo: m.ClusterNo, Error: m.Error}
			if m.Error == "" {
				json.Unmarshal(m.Result, &q.Queue)
			}
			p.Cluster = append(p.Cluster, q)
		}
	}
	s.render(w, r, http.StatusOK, "mail", &page{Title: "Mail", Nav: "mail", Data: p})
}
