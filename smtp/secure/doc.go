// Package secure is the secure-mail step of the gateway: S/MIME (RFC 8551),
// OpenPGP (RFC 9580, PGP/MIME RFC 3156) and DKIM (RFC 6376), applied to
// queued mail just before it is delivered, by the policy inherited global →
// domain → user.
//
// It runs between the queue and the next hop (smtp.Processor): a message is
// acknowledged with 250 once it is on disk as received, and this package
// turns it, per group of recipients, into what goes on the wire. Outgoing
// mail (an internal sender, an external recipient) is signed and encrypted
// as the sender's effective policy says; incoming mail (an internal
// recipient) is decrypted when the gateway holds the recipient's or the
// domain's private key, its signature verified, and the outcome written in
// the X-Postern-Secure header after every copy of that header that came
// from outside was removed. Mail of a managed domain with a DKIM key is
// DKIM-signed last, on the exact octets of the wire.
//
// Keys, certificates and the policy are read through Keys, which the
// appliance implements on the directory (a backend) or by asking a backend
// (a frontend, which keeps no key material). Private keys are handed over
// per message and used in memory only; this package never writes a file.
//
// It does not store, generate or import keys (the appliance does, with the
// helpers in keyfile.go), and it knows nothing of LDAP or the cluster.
package secure
