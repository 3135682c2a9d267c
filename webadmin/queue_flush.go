package webadmin

import (
	"fmt"
	"net/http"
)

// queueFlush schedules every queued message for delivery now.
func (s *Server) queueFlush(w http.ResponseWriter, r *http.Request) {
	var ans struct {
		Scheduled int `json:"scheduled"`
	}
	if err := s.be.call(r.Context(), "POST", "/v1/queue/flush", nil, &ans); err != nil {
		s.failed(w, r, "/mail#queue", err)
		return
	}
	s.done(w, r, "/mail#queue", fmt.Sprintf("%d message(s) scheduled for delivery now.", ans.Scheduled))
}
