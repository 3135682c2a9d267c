package appliance

import (
	"io"
	"log/slog"
	"time"
)

// Default listen addresses of the embedded default. Everything is on
// loopback: nothing listens beyond it unless configured.
const (
	DefaultDataDir = "./var"
	DefaultLDAP    = "127.0.0.1:3389"
	DefaultLDAPS   = "127.0.0.1:3636"
	DefaultSMTP    = "127.0.0.1:2525"
	DefaultAdmin   = "127.0.0.1:8443"
	DefaultCluster = "127.0.0.1:2222"
	DefaultMetrics = "127.0.0.1:9464"
	DefaultSuffix  = "dc=postern,dc=local"
)

// Config configures one appliance. The zero value is usable: every empty
// field takes the default named in its comment. A listen address of "off"
// disables that listener.
type Config struct {
	DataDir string // default ./var
	Suffix  string // default dc=postern,dc=local

	LDAPAddr    string // default 127.0.0.1:3389
	LDAPSAddr   string // default 127.0.0.1:3636
	SMTPAddr    string // default 127.0.0.1:2525
	AdminAddr   string // default 127.0.0.1:8443
	ClusterAddr string // default 127.0.0.1:2222
	MetricsAddr string // default 127.0.0.1:9464

	// Hostname, when set, replaces the machine-local hostname setting.
	Hostname string
	// NTPServer, when set, replaces the machine-local NTP server setting.
	NTPServer string

	// ClusterHeartbeat is how often the member record is refreshed and
	// the peers are checked; default 15 s (tests use 1 s).
	ClusterHeartbeat time.Duration

	// ClockSkew sets this appliance's clock ahead of the machine's (behind
	// when negative) for the directory's CSNs and the cluster's NTP
	// measurement: an injectable clock for tests of clock faults
	// (POSTERN_TEST_CLOCK_SKEW for `postern serve`). Zero in production.
	ClockSkew time.Duration

	// AdminPassword is used on the first start only, to set the admin
	// password; empty means generate one and print it once.
	AdminPassword string

	// Out receives the start-up report (listeners, the generated password).
	Out io.Writer
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger

	// menu is the serve command's admin web menu, which outlives an
	// appliance made anew in a new role (webadmin_menu.go); nil: the
	// appliance has a menu of its own.
	menu *webMenu
}

func (c *Config) setDefaults() {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.DataDir, DefaultDataDir)
	def(&c.Suffix, DefaultSuffix)
	def(&c.LDAPAddr, DefaultLDAP)
	def(&c.LDAPSAddr, DefaultLDAPS)
	def(&c.SMTPAddr, DefaultSMTP)
	def(&c.AdminAddr, DefaultAdmin)
	def(&c.ClusterAddr, DefaultCluster)
	def(&c.MetricsAddr, DefaultMetrics)
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// AdminDN returns the LDAP admin's DN for this suffix.
func (c *Config) AdminDN() string { return "cn=admin," + c.Suffix }

func enabled(addr string) bool { return addr != "off" && addr != "" }
