package webadmin

import (
	"net/http"
	"time"
)

type sslPage struct {
	Cert     tlsInfo
	DaysLeft int
}

// sslShow is the SSL page: the machine certificate in force.
func (s *Server) sslShow(w http.ResponseWriter, r *http.Request) {
	var p sslPage
	if err := s.be.call(r.Context(), "GET", "/v1/tls", nil, &p.Cert); err != nil {
		s.errorPage(w, r, http.StatusBadGateway, "SSL", err)
		return
	}
	p.DaysLeft = int(p.Cert.NotAfter.Sub(s.cfg.Now()) / (24 * time.Hour))
	s.render(w, r, http.StatusOK, "ssl", &page{Title: "SSL", Nav: "ssl", Data: p})
}
