package webadmin

import "net/http"

type mailPage struct {
	// Refused is the control API's refusal of the domains and relay
	// settings on a frontend (they live in the backends' directory).
	Refused string
	Domains []domain
	Relay   relaySettings
	Queue   []queueEntry
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
	s.render(w, r, http.StatusOK, "mail", &page{Title: "Mail", Nav: "mail", Data: p})
}
