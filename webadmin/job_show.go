package webadmin

import (
	"errors"
	"net/http"
)

// jobShow is the progress page of a join or an LDIF import: the lines so
// far, then the result. While the job runs the page refreshes itself
// (live.js, or a meta refresh without script).
func (s *Server) jobShow(w http.ResponseWriter, r *http.Request) {
	j := s.jobs.get(r.PathValue("id"))
	if j == nil {
		s.errorPage(w, r, http.StatusNotFound, "Progress", errors.New("no such job: it finished long ago or the appliance restarted since"))
		return
	}
	v := j.view()
	p := &page{Title: v.Title, Nav: "cluster", Data: v}
	if v.Kind == "import" {
		p.Nav = "directory"
	}
	if !v.Done {
		p.NoScript = 2
		p.RefreshMS = 1000
	}
	s.render(w, r, http.StatusOK, "job", p)
}
