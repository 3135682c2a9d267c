package webadmin

import (
	"fmt"
	"net/http"
	"strings"

	"postern/webadmin/form"
)

// injectSave stores on which members this one may inject mail.
func (s *Server) injectSave(w http.ResponseWriter, r *http.Request) {
	f := form.ParseInject(r)
	var ans struct {
		InjectTo []string `json:"inject_to"`
	}
	if err := s.be.call(r.Context(), "POST", "/v1/cluster/inject", f, &ans); err != nil {
		s.failed(w, r, "/cluster#inject", err)
		return
	}
	msg := "This member may inject mail on no other member."
	if len(ans.InjectTo) > 0 {
		msg = fmt.Sprintf("This member may inject mail on %s.", strings.Join(ans.InjectTo, ", "))
	}
	s.done(w, r, "/cluster#inject", msg)
}
