package webadmin

import (
	"fmt"
	"math"
	"net/http"

	"postern/webadmin/form"
)

// loginCheck checks the admin password. Failed logins are limited per
// client IP with a growing delay: while an IP waits, its attempts are
// refused without looking at the password.
func (s *Server) loginCheck(w http.ResponseWriter, r *http.Request) {
	f := form.ParseLogin(r)
	ip := clientIP(r)
	if wait := s.throttle.Wait(ip); wait > 0 {
		secs := int(math.Ceil(wait.Seconds()))
		w.Header().Set("Retry-After", fmt.Sprint(secs))
		s.render(w, r, http.StatusTooManyRequests, "login", &page{Title: "Log in", Data: loginData{Next: f.Next,
			Error: fmt.Sprintf("Too many failed logins from %s: wait %d s before the next attempt.", ip, secs)}})
		return
	}
	if f.Password == "" || !s.cfg.VerifyPassword(f.Password) {
		wait := s.throttle.Fail(ip)
		s.log.Warn("web menu login failed", "client", ip)
		s.render(w, r, http.StatusUnauthorized, "login", &page{Title: "Log in", Data: loginData{Next: f.Next,
			Error: fmt.Sprintf("Wrong password. The next attempt from %s is possible in %d s. (Lost it? `postern admin password` on the appliance makes a new one.)", ip, int(math.Ceil(wait.Seconds())))}})
		return
	}
	s.throttle.Succeed(ip)
	ss := s.sessions.Create(ip)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: ss.ID, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	s.log.Info("web menu login", "client", ip)
	http.Redirect(w, r, f.Next, http.StatusSeeOther)
}
