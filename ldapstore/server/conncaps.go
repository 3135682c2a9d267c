package server

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"postern/ldapstore"
)

// connCaps counts the connections accepted from the listeners, in all and
// per client address (Config.MaxConnections, MaxConnectionsPerIP), as the
// SMTP gateway does: one client, or many, cannot take every file
// descriptor of the appliance.
type connCaps struct {
	mu         sync.Mutex
	total      int
	perIP      map[netip.Addr]int
	max, maxIP int
}

func newConnCaps(max, maxIP int) *connCaps {
	return &connCaps{perIP: map[netip.Addr]int{}, max: max, maxIP: maxIP}
}

// acquire counts a connection from ip, or reports false when a cap is
// reached.
func (c *connCaps) acquire(ip netip.Addr) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total >= c.max || c.perIP[ip] >= c.maxIP {
		return false
	}
	c.total++
	c.perIP[ip]++
	return true
}

func (c *connCaps) release(ip netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total--
	if c.perIP[ip]--; c.perIP[ip] <= 0 {
		delete(c.perIP, ip)
	}
}

// remoteIP is the client address of a connection (the zero Addr when it
// has none, as a net.Pipe).
func remoteIP(c net.Conn) netip.Addr {
	if a := c.RemoteAddr(); a != nil {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			return ap.Addr().Unmap()
		}
	}
	return netip.Addr{}
}

// refuse answers a connection over a cap with a Notice of Disconnection
// (RFC 4511 §4.4.1), unavailable (52), and closes it. The connection is
// fresh, so the short write does not block the accept loop; for LDAPS the
// notice is not sent (it would need a TLS handshake).
func (s *Server) refuse(nc net.Conn, ip netip.Addr, useTLS bool) {
	s.log.Warn("ldap connection refused: too many connections", slog.String("client", ip.String()))
	s.metrics.refused()
	if !useTLS {
		e := getEncoder()
		e.beginMessage(0, appExtendedResponse)
		e.result(ldapstore.Unavailable, "", "too many connections")
		e.str(classContext|10, OIDNoticeOfDisconnection)
		e.endMessage(nil)
		nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		nc.Write(e.b)
		putEncoder(e)
	}
	nc.Close()
}

// temporaryAccept reports whether an Accept error is one to wait out: a
// timeout, a connection aborted before it was accepted, or a resource
// exhausted for now (file descriptors, buffers, memory). net/http retries
// on the same (its net.Error Temporary rule) and so does every accept loop
// of Postern.
func temporaryAccept(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
