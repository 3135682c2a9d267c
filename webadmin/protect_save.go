package webadmin

import (
	"net/http"
	"slices"
	"strings"

	"postern/webadmin/form"
)

// protectSave sets "limit cluster identifier to the specified IPs".
func (s *Server) protectSave(w http.ResponseWriter, r *http.Request) {
	f := form.ParseProtect(r)
	var p protection
	if err := s.be.call(r.Context(), "POST", "/v1/cluster/protect", f, &p); err != nil {
		s.failed(w, r, "/cluster#protect", err)
		return
	}
	msg := "The cluster identifier is no longer limited: it works from every IP (not recommended)."
	if p.On {
		var ips []string
		for _, ip := range append(append([]string{}, p.AllowedIPs...), p.MemberIPs...) {
			if !slices.Contains(ips, ip) {
				ips = append(ips, ip)
			}
		}
		msg = "The cluster identifier is limited to " + strings.Join(ips, ", ") + " (the members' own IPs included)."
	}
	s.done(w, r, "/cluster#protect", msg)
}
