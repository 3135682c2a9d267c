// Package csn implements OpenLDAP's change sequence numbers
// ("YYYYmmddHHMMSS.ffffffZ#cccccc#sid#mmmmmm"), a monotonic generator of
// them, and the context CSN vector (the newest CSN seen per server ID).
//
// It does not store anything or know about entries.
package csn
