package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// errUsage reports a flag error that the flag package already printed.
var errUsage = errors.New("ldapload: usage")

// target is where and as whom the client connects.
type target struct {
	URL         string
	BindDN      string
	Password    string
	Suffix      string
	OpTimeout   time.Duration
	AllowRemote bool
}

func (t *target) register(fs *flag.FlagSet) {
	fs.StringVar(&t.URL, "url", "ldap://127.0.0.1:3389", "server `URL` (ldap:// or ldaps://)")
	fs.StringVar(&t.BindDN, "D", "cn=admin,dc=postern,dc=local", "bind `DN` of every client")
	fs.StringVar(&t.Password, "w", "", "bind `password`")
	fs.StringVar(&t.Suffix, "base", "dc=postern,dc=local", "directory suffix; users live in ou=people below it")
	fs.DurationVar(&t.OpTimeout, "op-timeout", 10*time.Second, "limit on one LDAP operation")
	fs.BoolVar(&t.AllowRemote, "allow-remote", false, "allow a server that is not on a loopback address")
}

// check refuses a target that is not on loopback unless -allow-remote: the benchmark
// is a local measurement and must never load somebody else's directory by mistake.
func (t *target) check() error {
	u, err := url.Parse(t.URL)
	if err != nil {
		return fmt.Errorf("-url %q: %w", t.URL, err)
	}
	if u.Scheme != "ldap" && u.Scheme != "ldaps" {
		return fmt.Errorf("-url %q: scheme must be ldap or ldaps", t.URL)
	}
	if t.AllowRemote {
		return nil
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-url %q: not a loopback address (use -allow-remote to override)", t.URL)
	}
	return nil
}

// dial opens one connection and binds it.
func (t *target) dial() (*ldap.Conn, error) {
	c, err := ldap.DialURL(t.URL, ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", t.URL, err)
	}
	c.SetTimeout(t.OpTimeout)
	if err := c.Bind(t.BindDN, t.Password); err != nil {
		c.Close()
		return nil, fmt.Errorf("bind %s as %q: %w", t.URL, t.BindDN, err)
	}
	return c, nil
}

// dialAll opens n bound connections, closing the ones already open if one fails.
func (t *target) dialAll(n int) ([]*ldap.Conn, error) {
	conns := make([]*ldap.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, err := t.dial()
		if err != nil {
			closeAll(conns)
			return nil, fmt.Errorf("client %d: %w", i, err)
		}
		conns = append(conns, c)
	}
	return conns, nil
}

func closeAll(conns []*ldap.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// peopleDN is the parent of every benchmark user.
func (t *target) peopleDN() string { return "ou=people," + t.Suffix }

// userDN is the DN of benchmark user n.
func (t *target) userDN(n int) string { return fmt.Sprintf("uid=user%d,%s", n, t.peopleDN()) }
