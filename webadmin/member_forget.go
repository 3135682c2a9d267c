package webadmin

import (
	"net/http"
	"net/url"
)

// memberForgetConfirm asks before the record of a switched-off member is
// deleted (the delete symbol of Cluster Setup).
func (s *Server) memberForgetConfirm(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.render(w, r, http.StatusOK, "confirm", &page{Title: "Delete the record of " + id, Nav: "cluster", Data: confirm{
		What: []string{
			"The record of " + id + " is deleted from Cluster Setup on every member.",
			"Use this for a member that is permanently switched off. An active member (frontends too) writes its record again with its next heartbeat: it reappears within a minute.",
			"Its access is not revoked: to shut a member out, remove it (click its Device ID in Cluster members).",
		},
		Action: "/cluster/members/" + url.PathEscape(id) + "/forget", Button: "Delete record", Cancel: "/cluster#setup",
	}})
}

// memberForget deletes a member's record.
func (s *Server) memberForget(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.be.call(r.Context(), "POST", "/v1/cluster/forget/"+url.PathEscape(id), nil, nil); err != nil {
		s.failed(w, r, "/cluster#setup", err)
		return
	}
	s.done(w, r, "/cluster#setup", "The record of "+id+" was deleted (an active member comes back with its next heartbeat).")
}
