// Package server is Postern's LDAP v3 server (RFC 4511): it frames and
// decodes requests with a small in-place BER reader (search filters go to
// package filter as github.com/go-asn1-ber/asn1-ber packets), encodes
// responses with an appending BER encoder, authenticates simple binds,
// enforces Postern's access rules (in every filter form too), connection
// caps, idle timeouts and per-connection limits, bounds the memory held
// for unsent search results, and runs every operation against an
// *ldapstore.Store.
//
// Each connection has one reading goroutine; binds, abandons and StartTLS
// run there, every other operation runs concurrently on a reused goroutine
// and responses go out whole, in any order, through one buffered writer.
//
// It serves plain LDAP (with StartTLS, RFC 4511 §4.14) and LDAPS, the Root DSE
// (RFC 4512 §5.1) and the cn=Subschema subentry (RFC 4512 §4.2), the WhoAmI
// (RFC 4532) and Password Modify (RFC 3062) extended operations, and the
// paged results (RFC 2696) and ManageDsaIT (RFC 3296) controls.
//
// It knows nothing of RFC 4533 content synchronisation or of clusters: package
// replication plugs a SearchHandler in with Server.HandleSearchControl, and the
// handler sends entries with controls, intermediate responses and the final
// SearchResultDone through a SearchWriter.
//
// The server does not store anything itself and keeps no global state except
// that New lowers asn1-ber's process-wide packet-size and nesting limits once
// (DESIGN.md: "Lower asn1-ber's global packet-size and nesting limits at
// start-up").
package server
