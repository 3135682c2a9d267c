// Package appliance wires one Postern appliance together: its configuration
// and data directory, its machine-local identity (device ID, UUID, TLS
// certificate, admin password), the lifecycle of every listener (LDAP,
// LDAPS, SMTP, metrics), the control socket the CLI talks to, and the CLI
// itself. It owns no protocol: those live in ldapstore, smtp, replication
// and cluster, which it only configures and starts.
package appliance
