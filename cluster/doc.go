// Package cluster is the cluster agent of a Postern appliance: the cluster
// identifier (clusterid.txt), the SSH transport between members (server
// and client, tunnels to the members' own LDAP and SMTP listeners, one
// control channel), join, leave, remove and forget, member records and
// their heartbeats, firmware and NTP parity, "protect cluster identifier"
// (the IPs allowed to use a cluster key) and the mail injection ACL.
//
// Keys. The cluster key (an ed25519 key encrypted with the cluster
// password inside clusterid.txt) is for joining only: it opens the control
// channel and nothing else. At join every member registers its device key
// (its machine-local SSH host key) in its member record, which replicates;
// every later tunnel authenticates with device keys, both ways (the record
// pins the peer's host key). Removing a member deletes its record, revokes
// its device key and drops every cluster key, so its clusterid.txt is
// useless; the remaining members keep working on their device keys.
//
// Replication runs through the tunnels: a member's direct-tcpip channel to
// a peer's LDAP listener is served by the peer's LDAP server as a
// pre-authenticated connection of the LDAP root identity (the SSH layer
// has authenticated the member; no password is shared), and the
// replication consumer of package replication reads it. The package does
// not know RFC 4533: it starts links through Config.NewLink.
//
// What it does not do: it keeps no mail and no LDAP data of its own
// (member records live in the replicated tree, machine-local state in
// cluster.json and the host key in the data directory). Frontend members
// (no local database) are outside this package's present scope: the
// member records and status tables carry their columns (is-frontend-of,
// is-backend-of, F(…) numbers), which stay empty while every member is a
// backend.
package cluster
