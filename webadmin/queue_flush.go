package webadmin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
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

// queueFlushCluster schedules every queued message of every backend member
// for delivery now (`queue flush --cluster`).
func (s *Server) queueFlushCluster(w http.ResponseWriter, r *http.Request) {
	var res []callResult
	if err := s.be.call(r.Context(), "POST", "/v1/queue/flush?cluster=true", nil, &res); err != nil {
		s.failed(w, r, "/mail#cluster-queues", err)
		return
	}
	total, failed := 0, []string{}
	for _, m := range res {
		if m.Error != "" {
			failed = append(failed, m.DeviceID+" ("+m.Error+")")
			continue
		}
		var n struct {
			Scheduled int `json:"scheduled"`
		}
		json.Unmarshal(m.Result, &n)
		total += n.Scheduled
	}
	if len(failed) > 0 {
		s.failed(w, r, "/mail#cluster-queues", fmt.Errorf("%d message(s) scheduled for delivery now; not reached: %s", total, strings.Join(failed, ", ")))
		return
	}
	s.done(w, r, "/mail#cluster-queues", fmt.Sprintf("%d message(s) on %d member(s) scheduled for delivery now.", total, len(res)))
}
