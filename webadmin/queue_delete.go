package webadmin

import (
	"net/http"
	"net/url"
	"strings"
)

// queueDeleteConfirm says what deleting a queued message does.
func (s *Server) queueDeleteConfirm(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var m queueEntry
	if err := s.be.call(r.Context(), "GET", "/v1/queue/"+url.PathEscape(id), nil, &m); err != nil {
		s.errorPage(w, r, http.StatusNotFound, "Delete queued message", err)
		return
	}
	var rcpts []string
	for _, rc := range m.Recipients {
		rcpts = append(rcpts, rc.Address)
	}
	s.render(w, r, http.StatusOK, "confirm", &page{Title: "Delete queued message " + id, Nav: "mail", Data: confirm{
		What: []string{
			"The message from " + orDefault(m.From, "<>") + " to " + strings.Join(rcpts, ", ") + " is deleted from this machine's queue.",
			"It is not delivered, and no bounce (DSN) goes to the sender. This cannot be undone.",
		},
		Action: "/mail/queue/" + url.PathEscape(id) + "/delete", Button: "Delete message", Cancel: "/mail/queue/" + url.PathEscape(id), Danger: true,
	}})
}

// queueDelete deletes a queued message.
func (s *Server) queueDelete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.be.call(r.Context(), "DELETE", "/v1/queue/"+url.PathEscape(id), nil, nil); err != nil {
		s.failed(w, r, "/mail#queue", err)
		return
	}
	s.done(w, r, "/mail#queue", "Queued message "+id+" deleted.")
}
