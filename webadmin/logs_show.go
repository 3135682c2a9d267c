package webadmin

import (
	"net/http"
	"net/url"
	"strconv"
)

type logsPage struct {
	Query string
	N     int
	Lines []logLine
}

// logsShow is the Logs page: the appliance's recent log lines, newest
// first, filtered by text (a queue ID, an address, a device ID).
func (s *Server) logsShow(w http.ResponseWriter, r *http.Request) {
	p := logsPage{Query: r.URL.Query().Get("q"), N: 200}
	if n, err := strconv.Atoi(r.URL.Query().Get("n")); err == nil && n > 0 {
		p.N = min(n, 5000)
	}
	q := url.Values{"q": {p.Query}, "n": {strconv.Itoa(p.N)}}
	if err := s.be.call(r.Context(), "GET", "/v1/logs?"+q.Encode(), nil, &p.Lines); err != nil {
		s.errorPage(w, r, http.StatusBadGateway, "Logs", err)
		return
	}
	s.render(w, r, http.StatusOK, "logs", &page{Title: "Logs", Nav: "logs", Data: p})
}
