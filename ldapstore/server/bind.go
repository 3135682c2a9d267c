package server

import (
	"context"
	"log/slog"

	"postern/ldapstore"
	"postern/ldapstore/dn"
)

// bind authenticates a BindRequest (RFC 4511 §4.2, RFC 4513 §5.1). Whatever
// the outcome, the connection's previous authentication is gone: a failed
// bind leaves it anonymous (RFC 4511 §4.2.1).
func (c *conn) bind(m *message, r *bindRequest) {
	// a restricted session stays restricted whoever binds on it: a bind
	// changes who reads, never how much may be seen
	c.ident = identity{restricted: c.restricted}
	if err := c.srv.checkControls(m); err != nil {
		c.sendBind(m.id, err)
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.srv.cfg.WriteTimeout)
	defer cancel()
	id, err := c.srv.authenticate(ctx, c.ip, r)
	if err == nil && id.root && c.restricted {
		// a frontend's tunnel carries its clients' binds to the backend:
		// never the backend's own administrator's
		id, err = identity{}, ldapstore.Errorf(ldapstore.UnwillingToPerform, "the root DN cannot bind through a frontend's session")
	}
	if err == nil {
		id.restricted = c.restricted
		c.ident = id
		c.log.Debug("ldap bind", slog.String("dn", id.dn))
	} else {
		c.log.Info("ldap bind failed", slog.String("dn", r.name), slog.Any("err", err))
	}
	c.sendBind(m.id, err)
}

func (c *conn) sendBind(id int64, err error) {
	c.sendResult(id, appBindResponse, err, nil)
}

var errInvalidCredentials = ldapstore.Errorf(ldapstore.InvalidCredentials, "invalid credentials")

// authenticate checks the credentials of a bind request. Passwords are
// never logged.
func (s *Server) authenticate(ctx context.Context, ip string, r *bindRequest) (identity, error) {
	// RFC 4511 §4.2: "version: A version number indicating the version of
	// the protocol to be used at the LDAP message layer." Only 3 is ours.
	if r.version != 3 {
		return identity{}, ldapstore.Errorf(ldapstore.ProtocolError, "only LDAPv3 is supported")
	}
	switch r.method {
	case 0: // simple
	case 3:
		// RFC 4513 §5.2: SASL; Postern offers no mechanisms.
		return identity{}, ldapstore.Errorf(ldapstore.AuthMethodNotSupported, "SASL mechanism %q is not supported", r.mech)
	default:
		return identity{}, ldapstore.Errorf(ldapstore.AuthMethodNotSupported, "authentication method %d is not supported", r.method)
	}
	switch {
	case r.name == "" && r.password == "":
		// RFC 4513 §5.1.1: anonymous authentication.
		return identity{}, nil
	case r.name == "":
		return identity{}, errInvalidCredentials
	case r.password == "":
		// RFC 4513 §5.1.2: unauthenticated binds are refused by default.
		return identity{}, ldapstore.Errorf(ldapstore.UnwillingToPerform, "unauthenticated bind (DN with no password) disallowed")
	}
	norm, err := dn.Normalize(r.name)
	if err != nil {
		return identity{}, ldapstore.Errorf(ldapstore.InvalidDNSyntax, "invalid DN")
	}
	if s.rootNorm != "" && norm == s.rootNorm {
		// RFC 4513 §5.1.3: name/password authentication of the root DN
		// against its configured hash.
		hash := *s.rootPW.Load()
		if hash == "" {
			return identity{}, errInvalidCredentials
		}
		err := s.pw.do(ctx, ip, func() error {
			if !ldapstore.VerifyPassword(hash, r.password) {
				return errInvalidCredentials
			}
			return nil
		})
		if err != nil {
			return identity{}, err
		}
		return identity{dn: s.cfg.RootDN, norm: norm, root: true}, nil
	}
	err = s.pw.do(ctx, ip, func() error { return s.store.CheckPassword(ctx, r.name, r.password) })
	if err != nil {
		if c := ldapstore.CodeOf(err); c == ldapstore.Other || c == ldapstore.Busy {
			return identity{}, err
		}
		// Do not tell a missing entry from a wrong password.
		return identity{}, errInvalidCredentials
	}
	return identity{dn: r.name, norm: norm}, nil
}

// Access rules (Postern's equivalent of slapd's ACLs):
//   - the root DN reads and writes everything;
//   - a user bound with its userPassword reads the tree (not other users'
//     userPassword values) and may change its own password;
//   - anonymous reads only the Root DSE and cn=Subschema.

var (
	// errReadOnlySession answers every write in a restricted session (a
	// cluster frontend's), password changes included
	errReadOnlySession = ldapstore.Errorf(ldapstore.UnwillingToPerform, "this session is read-only: write on a backend member")
	errWriteAccess     = ldapstore.Errorf(ldapstore.InsufficientAccessRights, "only the root DN may modify the directory")
	errReadAccess      = ldapstore.Errorf(ldapstore.InsufficientAccessRights, "anonymous may read only the Root DSE and cn=Subschema")
)

func canWrite(id identity) error {
	if id.root {
		return nil
	}
	if id.restricted {
		return errReadOnlySession
	}
	return errWriteAccess
}

func canRead(id identity) error {
	if id.anonymous() {
		return errReadAccess
	}
	return nil
}
