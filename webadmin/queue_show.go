package webadmin

import (
	"net/http"
	"net/url"
)

// queueShow shows a queued message's envelope and headers.
func (s *Server) queueShow(w http.ResponseWriter, r *http.Request) {
	var m queueEntry
	if err := s.be.call(r.Context(), "GET", "/v1/queue/"+url.PathEscape(r.PathValue("id")), nil, &m); err != nil {
		s.errorPage(w, r, http.StatusNotFound, "Queued message", err)
		return
	}
	s.render(w, r, http.StatusOK, "queue_message", &page{Title: "Queued message " + m.ID, Nav: "mail", Data: m})
}
