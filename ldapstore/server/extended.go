package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"log/slog"

	"postern/ldapstore"
	"postern/ldapstore/dn"
)

// extended serves the extended operations other than StartTLS (RFC 4511
// §4.12).
func (c *conn) extended(op *operation, m *message, r *extendedRequest, id identity) {
	var (
		err   error
		name  string
		value []byte
	)
	switch r.name {
	case OIDWhoAmI:
		value, err = whoAmI(r, id)
	case OIDPasswordModify:
		value, err = c.passwordModify(op.ctx, r, id)
	default:
		// RFC 4511 §4.12: "If the server does not recognize the request
		// name, it MUST return only the response fields from LDAPResult,
		// containing the protocolError result code."
		err = ldapstore.Errorf(ldapstore.ProtocolError, "unsupported extended operation %s", r.name)
	}
	if op.abandoned() {
		c.srv.metrics.op("extended", ldapstore.Canceled)
		return
	}
	c.sendExtended(m.id, err, name, value)
}

// whoAmI answers RFC 4532 §2: the authzId of the connection, "dn:<DN>", or
// an empty value for anonymous.
func whoAmI(r *extendedRequest, id identity) ([]byte, error) {
	// RFC 4532 §2.1: "The requestValue field is absent."
	if r.hasValue {
		return nil, ldapstore.Errorf(ldapstore.ProtocolError, "WhoAmI takes no request value")
	}
	if id.anonymous() {
		return []byte{}, nil
	}
	return []byte("dn:" + id.norm), nil
}

// passwordModify serves RFC 3062. PasswdModifyRequestValue ::= SEQUENCE {
// userIdentity [0] OCTET STRING OPTIONAL, oldPasswd [1] OCTET STRING
// OPTIONAL, newPasswd [2] OCTET STRING OPTIONAL }.
//
// A user changes its own password and must prove the old one; the root DN
// sets anyone's. Without newPasswd the server generates one and returns it
// as genPasswd [0] in PasswdModifyResponseValue.
func (c *conn) passwordModify(ctx context.Context, r *extendedRequest, id identity) ([]byte, error) {
	var user, oldPW, newPW string
	var hasUser, hasOld, hasNew bool
	if r.hasValue {
		bad := ldapstore.Errorf(ldapstore.ProtocolError, "malformed PasswdModifyRequestValue")
		top := reader{b: r.value}
		vr, err := top.sequence(tagSequence, "PasswdModifyRequestValue")
		if err != nil || top.end("PasswdModifyRequestValue") != nil {
			return nil, bad
		}
		last := -1
		for vr.more() {
			f, err := vr.next()
			tag := int(f.id & 0x1f)
			if err != nil || f.id&^0x1f != classContext || tag > 2 || tag <= last {
				return nil, bad
			}
			last = tag
			switch tag {
			case 0:
				user, hasUser = string(f.content), true
			case 1:
				oldPW, hasOld = string(f.content), true
			case 2:
				newPW, hasNew = string(f.content), true
			}
		}
	}
	if id.restricted {
		return nil, errReadOnlySession
	}
	if id.anonymous() {
		return nil, ldapstore.Errorf(ldapstore.InsufficientAccessRights, "anonymous may not change passwords")
	}
	// RFC 3062 §2: without userIdentity, the request is for the user
	// associated with the session.
	target := id.dn
	if hasUser {
		target = user
	}
	tnorm, err := dn.Normalize(target)
	if err != nil {
		return nil, ldapstore.Errorf(ldapstore.InvalidDNSyntax, "invalid userIdentity")
	}
	if c.srv.rootNorm != "" && tnorm == c.srv.rootNorm {
		return nil, ldapstore.Errorf(ldapstore.UnwillingToPerform, "the root DN's password is configured on the appliance, not in the directory")
	}
	if !id.root {
		if tnorm != id.norm {
			return nil, ldapstore.Errorf(ldapstore.InsufficientAccessRights, "users may change only their own password")
		}
		if !hasOld {
			return nil, ldapstore.Errorf(ldapstore.UnwillingToPerform, "oldPasswd is required")
		}
	}
	if hasOld {
		err := c.srv.pw.do(ctx, c.ip, func() error { return c.srv.store.CheckPassword(ctx, target, oldPW) })
		if ldapstore.CodeOf(err) == ldapstore.Busy {
			return nil, err
		}
		if err != nil {
			return nil, ldapstore.Errorf(ldapstore.InvalidCredentials, "oldPasswd does not match")
		}
	}
	var value []byte
	if !hasNew || newPW == "" {
		newPW = generatePassword()
		// PasswdModifyResponseValue ::= SEQUENCE { genPasswd [0] OCTET
		// STRING OPTIONAL }
		var e encoder
		e.begin(tagSequence)
		e.str(classContext|0, newPW)
		e.end()
		value = e.b
	}
	if err := c.srv.pw.do(ctx, c.ip, func() error { return c.srv.store.SetPassword(ctx, target, newPW, id.dn) }); err != nil {
		return nil, err
	}
	c.log.Info("ldap password changed", slog.String("dn", target), slog.String("by", id.dn))
	return value, nil
}

// generatePassword returns a random password: 26 base32 characters, 128
// bits from crypto/rand.
func generatePassword() string { return rand.Text() }

// startTLS serves the StartTLS extended operation (RFC 4511 §4.14) in the
// reading goroutine. It returns false when the connection must close.
func (c *conn) startTLS(m *message) bool {
	err := c.srv.checkControls(m)
	switch {
	case err != nil:
	case c.srv.tls == nil:
		err = ldapstore.Errorf(ldapstore.Unavailable, "TLS is not configured")
	case c.isTLS:
		// RFC 4511 §4.14.1: StartTLS on a TLS connection is a sequencing
		// error.
		err = ldapstore.Errorf(ldapstore.OperationsError, "TLS is already established")
	case c.outstanding() > 0:
		// RFC 4511 §4.14.1: "the client MUST NOT send a StartTLS request
		// while there are outstanding operations".
		err = ldapstore.Errorf(ldapstore.OperationsError, "operations are outstanding")
	case c.br.Buffered() > 0:
		err = ldapstore.Errorf(ldapstore.OperationsError, "requests sent after StartTLS before its response")
	}
	if err != nil {
		c.sendExtended(m.id, err, OIDStartTLS, nil)
		return true
	}
	// RFC 4511 §4.14.2: the response carries responseName; the TLS
	// handshake starts right after it.
	c.sendExtended(m.id, nil, OIDStartTLS, nil)
	c.wmu.Lock()
	if c.werr != nil {
		c.wmu.Unlock()
		return false
	}
	t := tls.Server(c.raw, c.srv.tls)
	c.nc = t
	c.bw.Reset(t)
	c.wmu.Unlock()
	if err := c.handshake(t); err != nil {
		c.log.Info("starttls handshake failed", slog.Any("err", err))
		return false
	}
	c.br.Reset(t)
	c.isTLS = true
	// RFC 4513 §3.1.5: the authorization state is unchanged; any bind
	// done before StartTLS stays in effect.
	c.log.Debug("starttls established")
	return true
}
