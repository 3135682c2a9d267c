// Package integration holds Postern's end-to-end tests: they build the
// postern binary, start whole appliances as separate processes on
// 127.0.0.x loopback addresses, and drive them with real third-party
// clients (OpenLDAP's ldap* tools, swaks, Postfix's smtp-source/smtp-sink,
// OpenSSH) and with go-ldap. It has no non-test code beyond this comment.
package integration
