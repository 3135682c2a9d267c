package webadmin

import (
	"net/http"

	"postern/webadmin/form"
)

type loginData struct {
	Next  string
	Error string
}

// loginShow is the login page (the only page without a session).
func (s *Server) loginShow(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.session(r); ok {
		http.Redirect(w, r, "/cluster", http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "login", &page{Title: "Log in", Data: loginData{Next: form.LocalPath(r.URL.Query().Get("next"))}})
}
