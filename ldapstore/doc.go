// Package ldapstore is Postern's directory store: LDAP entries under one
// suffix in a bbolt file, with a normalised-DN index, a parent index,
// equality indexes used by a search planner, the operational attributes of
// RFC 4512 §3.4 and RFC 4530, OpenLDAP-format CSNs, a changelog keyed by CSN
// and tombstones for deletes, all written in one transaction per batch of
// group-committed writes (fsync before a write returns).
//
// Its sub-packages own the vocabulary: csn (change sequence numbers), dn
// (RFC 4514 names), filter (RFC 4515 filters and their evaluation), schema
// (the built-in schema, matching rules and attribute descriptions) and
// stringprep (RFC 4518 string preparation for matching). The LDAP protocol server
// is ldapstore/server; replication (RFC 4533) lives outside and uses the
// change feed (Notify, ChangesSince) and the internal apply path
// (ApplyEntry, ApplyDelete). The store knows nothing of clusters or access
// control: the caller decides who may do what.
package ldapstore
