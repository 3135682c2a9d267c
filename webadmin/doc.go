// Package webadmin is the appliance's admin web menu: server-rendered HTML
// pages (html/template, parsed once from an embedded file system), login
// and sessions, and the /api/ JSON routes.
//
// It does not implement any action itself: its backend is the appliance's
// control API (the http.Handler the CLI reaches through the control
// socket), called in process. The pages decode its JSON into webadmin's own
// small structs and post its requests; /api/ hands requests to it with the
// /api prefix stripped. So every action exists once, and webadmin imports
// nothing of Postern's.
//
// Layout, after Miniflux: one file per page or action named noun_verb.go
// (cluster_show.go, join_start.go, member_remove.go, ...), every route in
// routes.go with the middleware that covers it, form parsing in form/,
// sessions and the login throttle in session/. The cluster page is a list
// of sections (sections.go), each a template and a "shown when" rule, in
// the seed's order; adding a section is a template, an entry and the
// handler of its action. Pages work without script; static/live.js only
// makes tables refresh by themselves and progress appear live.
//
// On a cluster frontend (no local directory) the cluster page shows the
// frontend sections, and the pages that need a directory show the control
// API's 409 instead of their tables (frontend_refusal.go). An attach or a
// detach makes the appliance anew in the same process; its job is done
// once the appliance answers in its new role (role_wait.go).
package webadmin
