package smtp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TLSPolicy is a next hop's outbound TLS requirement.
type TLSPolicy string

const (
	// TLSNone: never use STARTTLS.
	TLSNone TLSPolicy = "none"
	// TLSMay: STARTTLS when offered, any certificate (opportunistic, like
	// Postfix's "may"); plaintext when not offered or when the handshake fails.
	TLSMay TLSPolicy = "may"
	// TLSEncrypt: STARTTLS is mandatory; without it the delivery is
	// deferred, never sent in plaintext. Certificates are verified only when
	// Config.VerifyEncrypt is set (Postfix's "encrypt" level does not verify).
	TLSEncrypt TLSPolicy = "encrypt"
)

// Domain is a managed domain's delivery policy.
type Domain struct {
	Name      string
	DeliverTo string    // "host:port" of the domain's mail server; "" = the domain's MX hosts
	TLS       TLSPolicy // "" means TLSMay
}

// RelayPolicy is the cluster-wide relay setting.
type RelayPolicy struct {
	Networks  []netip.Prefix // clients allowed to relay to non-managed domains
	Smarthost string         // "host:port" for relayed mail; "" = the domain's MX hosts on port 25
	// Stale marks a policy that may be out of date (a frontend between
	// two backends): the gateway answers a client it would refuse with
	// 451 4.4.3 instead of 554 5.7.1, so that nothing is refused for good
	// on what was known a moment ago.
	Stale bool
}

// Directory is what the gateway needs from the directory. The appliance
// implements it on top of LDAP (posternDomain entries, inetOrgPerson users
// with mail, the posternRelayPolicy entry). The gateway calls it on every
// RCPT and for every delivery round, so a change in the directory applies
// without a restart; an implementation may cache for a few seconds at most.
// Names and addresses are passed lower-cased (the domain part) as received.
type Directory interface {
	// Domain returns the policy of a managed domain; ok is false for a
	// domain that is not managed.
	Domain(ctx context.Context, name string) (d Domain, ok bool, err error)
	// HasUsers reports whether a managed domain has user entries; a domain
	// without users accepts every address.
	HasUsers(ctx context.Context, domain string) (bool, error)
	// UserExists reports whether a user has the address (case-insensitive).
	UserExists(ctx context.Context, address string) (bool, error)
	// Relay returns the relay networks and the smarthost.
	Relay(ctx context.Context) (RelayPolicy, error)
}

// Resolver looks up MX records; *net.Resolver implements it.
type Resolver interface {
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
}

// Config configures a Gateway. Zero values get the documented defaults.
type Config struct {
	Hostname  string      // name in the greeting, Received and DSNs; default os.Hostname()
	TLSConfig *tls.Config // machine certificate for STARTTLS; nil = STARTTLS not offered
	DataDir   string      // queue directory (required)
	Directory Directory   // policy (required)

	MaxConns        int           // concurrent inbound connections; default 100 (Postfix default_process_limit)
	MaxConnsPerIP   int           // per client IP; default 50 (Postfix smtpd_client_connection_count_limit)
	MaxMessageBytes int64         // default 10240000 (Postfix message_size_limit)
	MaxRecipients   int           // per message; default 1000 (Postfix smtpd_recipient_limit)
	MaxLineLength   int           // command line, octets with CRLF; default 2000: RFC 5321 §4.5.3.1.4's 512 with room for extension parameters, doubled for leniency
	ReadTimeout     time.Duration // for a whole command line; default 5 min (RFC 5321 §4.5.3.2.7)
	DataTimeout     time.Duration // for each read of DATA/BDAT, and the grace before MinDataRate applies; default 5 min (RFC 5321 §4.5.3.2.6)
	MinDataRate     int64         // octets per second a message must average after DataTimeout; default 500 (Postfix smtpd_min_data_rate)
	SessionTimeout  time.Duration // no new command after this long a connection; default 30 min
	WriteTimeout    time.Duration // writing a reply; default 1 min

	RetryMin      time.Duration // first retry after a temporary failure; default 5 min (Postfix minimal_backoff_time)
	RetryMax      time.Duration // backoff cap; default 4000 s (Postfix maximal_backoff_time)
	QueueLifetime time.Duration // give up and bounce; default 5 days (Postfix maximal_queue_lifetime)

	MaxDeliveries          int                                                               // concurrent outbound connections in all; default 100
	DestinationConcurrency int                                                               // per next hop; default 20 (Postfix default_destination_concurrency_limit)
	ConnectTimeout         time.Duration                                                     // outbound TCP connect; default 30 s
	CommandTimeout         time.Duration                                                     // outbound reply wait; default 5 min (RFC 5321 §4.5.3.2)
	ConnCacheTime          time.Duration                                                     // keep an idle outbound connection for the next message; default 2 s
	VerifyEncrypt          bool                                                              // verify certificates of "encrypt" next hops
	RootCAs                *x509.CertPool                                                    // for VerifyEncrypt; nil = system roots
	Dial                   func(ctx context.Context, network, addr string) (net.Conn, error) // outbound; default net.Dialer
	Resolver               Resolver                                                          // MX lookups; default net.DefaultResolver

	SegmentBytes int64 // queue log segment size; default 64 MiB

	// MinFreeBytes is the free space the queue's file system must keep:
	// below it (plus a declared SIZE) MAIL and RCPT get 452 4.3.1. Default
	// 1.5 × MaxMessageBytes (Postfix smtpd's rule).
	MinFreeBytes int64
	// FreeSpace returns the octets free for the queue in dir; default
	// statfs(2). Tests substitute it.
	FreeSpace func(dir string) (int64, error)

	// InjectAllowed decides, when a connection arrives on a listener given
	// to ServeInjected, whether the cluster member may inject mail here. nil
	// refuses all injection.
	InjectAllowed func(member string) bool

	// Processor transforms queued mail just before delivery and may refuse
	// recipients and messages before they are queued (secure mail:
	// postern/smtp/secure). nil: mail goes out as it was accepted.
	Processor Processor

	Registry *prometheus.Registry // metrics; nil = not registered
	Logger   *slog.Logger         // default discards
}

func (c *Config) setDefaults() error {
	if c.DataDir == "" {
		return errors.New("smtp: Config.DataDir is required")
	}
	if c.Directory == nil {
		return errors.New("smtp: Config.Directory is required")
	}
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	defd := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&c.MaxConns, 100)
	def(&c.MaxConnsPerIP, 50)
	def(&c.MaxRecipients, 1000)
	def(&c.MaxLineLength, 2000)
	def(&c.MaxDeliveries, 100)
	def(&c.DestinationConcurrency, 20)
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 10240000
	}
	if c.MinFreeBytes <= 0 {
		c.MinFreeBytes = c.MaxMessageBytes + c.MaxMessageBytes/2
	}
	if c.FreeSpace == nil {
		c.FreeSpace = statfsFree
	}
	defd(&c.ReadTimeout, 5*time.Minute)
	defd(&c.DataTimeout, 5*time.Minute)
	defd(&c.SessionTimeout, 30*time.Minute)
	if c.MinDataRate <= 0 {
		c.MinDataRate = 500
	}
	defd(&c.WriteTimeout, time.Minute)
	defd(&c.RetryMin, 5*time.Minute)
	defd(&c.RetryMax, 4000*time.Second)
	defd(&c.QueueLifetime, 5*24*time.Hour)
	defd(&c.ConnectTimeout, 30*time.Second)
	defd(&c.CommandTimeout, 5*time.Minute)
	defd(&c.ConnCacheTime, 2*time.Second)
	if c.Dial == nil {
		d := &net.Dialer{}
		c.Dial = d.DialContext
	}
	if c.Resolver == nil {
		c.Resolver = net.DefaultResolver
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}
