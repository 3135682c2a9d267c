package webadmin

import "html/template"

// The cluster page is the seed's cluster menu: its sections, in its order,
// each shown only when the seed says it appears. A section is a template
// (templates/parts/section-ID.html, which gets a *clusterView) and a rule;
// its actions are handlers in routes.go.
type section struct {
	ID    string
	Title string
	// Shown says whether the section appears on this appliance now.
	Shown func(v *clusterView) bool
	// Live sections are refreshed by themselves while the page is open.
	Live bool
}

// An appliance is standalone (not a member), a backend (a member with a
// directory) or a frontend (a member without one).
func member(v *clusterView) bool        { return v.Status.Member }
func notMember(v *clusterView) bool     { return !v.Status.Member }
func frontend(v *clusterView) bool      { return v.Status.Frontend != nil }
func notFrontend(v *clusterView) bool   { return v.Status.Frontend == nil }
func backendMember(v *clusterView) bool { return v.Status.Member && v.Status.Frontend == nil }

var clusterSections = []section{
	// on a frontend only its own sections appear: preparing a cluster,
	// its members and their replication are the backends' business
	{ID: "introduction", Title: "Introduction", Shown: notFrontend},
	{ID: "prepare", Title: "Prepare for cluster", Shown: notFrontend},
	// "only appears if [it] has not already been integrated into a cluster"
	{ID: "join", Title: "Add this device to existing cluster", Shown: notMember},
	// "only appears if [it] is already part of a cluster"
	{ID: "members", Title: "Cluster members", Shown: backendMember, Live: true},
	{ID: "leave", Title: "Remove from cluster", Shown: backendMember},
	// on a frontend: the backends only
	{ID: "inject", Title: "Allow mail injection", Shown: member},
	{ID: "setup", Title: "Cluster Setup", Shown: backendMember, Live: true},
	{ID: "replication", Title: "Cluster replication", Shown: backendMember, Live: true},
	// "only appears if [it] has not already been integrated in a cluster"
	{ID: "attach", Title: "Add this device as frontend server (no local database)", Shown: notMember},
	// "only appears if [it] is already part of a cluster as a frontend server"
	{ID: "remote", Title: "Remote LDAP server", Shown: frontend, Live: true},
	{ID: "detach", Title: "Detach from LDAP server", Shown: frontend},
	{ID: "add-backend", Title: "Add additional backend", Shown: frontend},
	{ID: "protect", Title: "Protect cluster identifier", Shown: backendMember},
}

// renderedSection is a shown section, rendered.
type renderedSection struct {
	ID, Title string
	Live      bool
	HTML      template.HTML
}
