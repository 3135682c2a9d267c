package server

import (
	"fmt"
	"net"

	"postern/ldapstore/dn"
)

// ServeConn serves one already-connected, already-authenticated client
// connection (for example a channel of an SSH tunnel whose peer the
// transport has authenticated) as plain LDAP, bound as boundDN from its
// first request: the configured root DN gets the root's rights, any other
// DN a user's, "" anonymous. A Bind on the connection replaces that
// identity as usual (RFC 4511 §4.2.1). ServeConn returns when the
// connection ends or the server closes; it closes c.
func (s *Server) ServeConn(c net.Conn, boundDN string) error { return s.serveConn(c, boundDN, false) }

// ServeConnRestricted is ServeConn for a read-only session of limited
// sight, bound as boundDN (a DN that is not the root's): a cluster
// frontend's tunnel. It never sees userPassword nor the types of
// Config.RestrictedHide, in entries and in filters alike; it cannot write
// (unwillingToPerform); a Bind on it may become a user but never the root
// DN. RFC 4533 sync searches are open to it, with the same sight.
func (s *Server) ServeConnRestricted(c net.Conn, boundDN string) error {
	return s.serveConn(c, boundDN, true)
}

func (s *Server) serveConn(c net.Conn, boundDN string, restricted bool) error {
	id := identity{}
	if boundDN != "" {
		norm, err := dn.Normalize(boundDN)
		if err != nil {
			c.Close()
			return fmt.Errorf("server: ServeConn: bound DN %q: %w", boundDN, err)
		}
		id = identity{dn: boundDN, norm: norm, root: s.rootNorm != "" && norm == s.rootNorm}
		if id.root {
			id.dn = s.cfg.RootDN
		}
	}
	if restricted {
		if id.root {
			c.Close()
			return fmt.Errorf("server: ServeConnRestricted: %q is the root DN", boundDN)
		}
		id.restricted = true
	}
	cn := newConn(s, c, c, false)
	cn.ident = id
	cn.restricted = restricted
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return ErrServerClosed
	}
	s.conns[cn] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.metrics.connOpened()
	defer func() {
		s.mu.Lock()
		delete(s.conns, cn)
		s.mu.Unlock()
		s.metrics.connClosed()
		s.wg.Done()
	}()
	cn.serve()
	return nil
}
