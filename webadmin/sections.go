package webadmin

import "html/template"

// The cluster page is the seed's cluster menu: its sections, in its order,
// each shown only when the seed says it appears. A section is a template
// (templates/parts/section-ID.html, which gets a *clusterView) and a rule;
// its actions are handlers in routes.go. Frontend sections (Add this
// device as frontend server, Remote LDAP server, Detach from LDAP server,
// Add additional backend) come with frontends: each is one more entry
// here, in the seed's place, a template and its handlers.
type section struct {
	ID    string
	Title string
	// Shown says whether the section appears on this appliance now.
	Shown func(v *clusterView) bool
	// Live sections are refreshed by themselves while the page is open.
	Live bool
}

func always(*clusterView) bool      { return true }
func member(v *clusterView) bool    { return v.Status.Member }
func notMember(v *clusterView) bool { return !v.Status.Member }

var clusterSections = []section{
	{ID: "introduction", Title: "Introduction", Shown: always},
	{ID: "prepare", Title: "Prepare for cluster", Shown: always},
	// "only appears if [it] has not already been integrated into a cluster"
	{ID: "join", Title: "Add this device to existing cluster", Shown: notMember},
	// "only appears if [it] is already part of a cluster"
	{ID: "members", Title: "Cluster members", Shown: member, Live: true},
	{ID: "leave", Title: "Remove from cluster", Shown: member},
	{ID: "inject", Title: "Allow mail injection", Shown: member},
	{ID: "setup", Title: "Cluster Setup", Shown: member, Live: true},
	{ID: "replication", Title: "Cluster replication", Shown: member, Live: true},
	{ID: "protect", Title: "Protect cluster identifier", Shown: member},
}

// renderedSection is a shown section, rendered.
type renderedSection struct {
	ID, Title string
	Live      bool
	HTML      template.HTML
}
