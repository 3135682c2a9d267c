// Package smtp is Postern's SMTP gateway: it accepts mail over SMTP
// (emersion/go-smtp), decides by the policy in the directory which mail it
// takes, stores each accepted message durably before it answers 250, and
// delivers the queue onward with retries, per-recipient status and delivery
// status notifications (RFC 3464).
//
// Inbound, a Gateway serves listeners handed to it (Serve). In front of
// go-smtp it caps connections (total and per client IP), reads the client's
// input itself and hands go-smtp one command line, end of a DATA body (the
// body itself it decodes for the session) or BDAT chunk at a time (input.go,
// command.go, dataread.go: no octet of a body or chunk can be taken for a
// command), applies per-line, per-message and per-session
// deadlines (deadline.go), performs STARTTLS itself (so that every session it
// hands to go-smtp is a plain stream it can observe) and corrects the few
// replies where go-smtp departs from RFC 5321 (see conn.go). Sessions check
// addresses (address.go), keep the content as canonical CRLF lines
// (canonical.go), refuse mail early when the queue's disk is nearly full
// (storage.go) and look policy up through the Directory interface on every
// transaction, so directory changes apply to the next command without a
// restart.
//
// Outbound, a scheduler groups queued recipients by next hop (a managed
// domain's server, the smarthost, or the MX hosts of a relayed domain), runs
// at most DestinationConcurrency connections per next hop, reuses them for
// consecutive messages (kept ConnCacheTime when idle), speaks the mail
// transaction itself with RFC 2920 pipelining where offered (outbound.go),
// applies the next hop's TLS policy and fits each message to the hop's
// SMTPUTF8 and 8BITMIME support (downgrade.go).
//
// The durable queue itself is package postern/smtp/queue. This package knows
// nothing of LDAP, the cluster or the web menu: the appliance implements
// Directory on top of its store and passes listeners, TLS configuration,
// metrics registry and logger in Config.
package smtp
