// Package replication is Postern's multi-master replication engine: RFC 4533
// content synchronisation ("syncrepl") with OpenLDAP-style cookies, so that
// Postern members replicate with each other and with a stock slapd.
//
//   - Provider serves the Sync Request control on an ldapstore server, as
//     the syncprov overlay does on slapd: a refresh from a cookie sends what
//     changed since (changelog) and the deletes since (tombstones); a cookie
//     older than the changelog gets a present phase; refreshAndPersist then
//     streams every later change.
//   - Consumer runs one sync session (one LDAP connection) from one provider
//     and applies it to the local store with ldapstore.ApplyBatch: last
//     writer wins by entryCSN, deletes win, conflicts and orphans are kept
//     visibly, and the provider's cookie is stored in the same transaction
//     as the changes it covers.
//   - Status reports per link and per server ID for the cluster agent and
//     the menu.
//
// The package imports only ldapstore and its sub-packages from this module.
package replication
