package webadmin

import (
	"net/http"
)

// routes is every route of the menu and the middleware that covers it:
// static files and the login page need no session; every page and action
// needs one (requireSession), /api/ a session or a bearer token
// (requireAuth); cross-site state-changing requests are refused
// everywhere (crossOrigin), and every answer carries the security headers.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", staticFiles())
	mux.Handle("GET /favicon.ico", favicon())
	mux.HandleFunc("GET /login", s.loginShow)
	mux.HandleFunc("POST /login", s.loginCheck)

	page := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.requireSession(h)) }
	page("POST /logout", s.logout)
	page("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/cluster", http.StatusSeeOther) })

	page("GET /cluster", s.clusterShow)
	page("POST /cluster/prepare", s.clusterPrepare)
	page("POST /cluster/join", s.joinStart)
	page("GET /cluster/join/{id}", s.jobShow)
	page("GET /cluster/members/{id}", s.memberShow)
	page("POST /cluster/members/{id}/remove", s.memberRemove)
	page("GET /cluster/members/{id}/forget", s.memberForgetConfirm)
	page("POST /cluster/members/{id}/forget", s.memberForget)
	page("GET /cluster/leave", s.leaveConfirm)
	page("POST /cluster/leave", s.leave)
	page("POST /cluster/inject", s.injectSave)
	page("POST /cluster/protect", s.protectSave)
	// frontends
	page("POST /cluster/attach", s.attachStart)
	page("GET /cluster/attach/{id}", s.jobShow)
	page("POST /cluster/backends", s.backendAdd)
	page("GET /cluster/backends/{addr}", s.backendShow)
	page("POST /cluster/backends/{addr}/remove", s.backendRemove)
	page("GET /cluster/detach", s.detachConfirm)
	page("POST /cluster/detach", s.detachStart)
	page("GET /cluster/detach/{id}", s.jobShow)

	page("GET /system", s.systemShow)
	page("POST /system", s.systemSave)
	page("GET /ssl", s.sslShow)
	page("POST /ssl", s.sslUpload)
	page("GET /logs", s.logsShow)

	page("GET /mail", s.mailShow)
	page("POST /mail/domains", s.domainAdd)
	page("POST /mail/domains/{name}/remove", s.domainRemove)
	page("POST /mail/relay", s.relaySave)
	page("GET /mail/queue/{id}", s.queueShow)
	page("POST /mail/queue/flush", s.queueFlush)
	page("POST /mail/queues/flush", s.queueFlushCluster)
	page("GET /mail/queue/{id}/delete", s.queueDeleteConfirm)
	page("POST /mail/queue/{id}/delete", s.queueDelete)

	page("GET /directory", s.directoryShow)
	page("GET /directory/export", s.ldifExport)
	page("POST /directory/import", s.ldifImport)
	page("GET /directory/import/{id}", s.jobShow)

	page("GET /status", s.statusShow)
	page("/", s.notFound)

	mux.Handle("/api/", s.requireAuth(http.HandlerFunc(s.api)))
	return securityHeaders(s.crossOrigin(s.recoverPanics(mux)))
}
