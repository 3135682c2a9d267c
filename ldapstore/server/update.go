package server

import (
	"context"

	"postern/ldapstore/filter"

	"postern/ldapstore"
)

// add serves an AddRequest (RFC 4511 §4.7).
func (c *conn) add(ctx context.Context, r *addRequest, id identity) error {
	if err := canWrite(id); err != nil {
		return err
	}
	for _, a := range r.entry.Attributes {
		// RFC 4511 §4.7: vals SET SIZE (1..MAX) OF value.
		if len(a.Vals) == 0 {
			return ldapstore.Errorf(ldapstore.ProtocolError, "attribute %s has no values", a.Type)
		}
	}
	return c.srv.store.Add(ctx, r.entry, id.dn)
}

// modify serves a ModifyRequest (RFC 4511 §4.6, RFC 4525 increment).
func (c *conn) modify(ctx context.Context, r *modifyRequest, id identity) error {
	if err := canWrite(id); err != nil {
		return err
	}
	for _, m := range r.mods {
		// RFC 4511 §4.6: add needs at least one value; RFC 4525 §2:
		// increment takes exactly one.
		switch {
		case m.Op == ldapstore.ModAdd && len(m.Attr.Vals) == 0:
			return ldapstore.Errorf(ldapstore.ProtocolError, "modify/add of %s without values", m.Attr.Type)
		case m.Op == ldapstore.ModIncrement && len(m.Attr.Vals) != 1:
			return ldapstore.Errorf(ldapstore.ProtocolError, "modify/increment of %s needs exactly one value", m.Attr.Type)
		}
	}
	return c.srv.store.Modify(ctx, r.dn, r.mods, id.dn)
}

// del serves a DelRequest (RFC 4511 §4.8); the store refuses non-leaf
// entries with notAllowedOnNonLeaf.
func (c *conn) del(ctx context.Context, r *delRequest, id identity) error {
	if err := canWrite(id); err != nil {
		return err
	}
	return c.srv.store.Delete(ctx, r.dn, id.dn)
}

// modDN serves a ModifyDNRequest (RFC 4511 §4.9): rename and move.
func (c *conn) modDN(ctx context.Context, r *modDNRequest, id identity) error {
	if err := canWrite(id); err != nil {
		return err
	}
	if r.hasSuperior && r.newSuperior == "" {
		return ldapstore.Errorf(ldapstore.UnwillingToPerform, "entries cannot move to the root DSE")
	}
	return c.srv.store.ModifyDN(ctx, r.dn, r.newRDN, r.deleteOldRDN, r.newSuperior, id.dn)
}

// compare serves a CompareRequest (RFC 4511 §4.10): compareTrue or
// compareFalse are results, not failures.
func (c *conn) compare(ctx context.Context, r *compareRequest, id identity) error {
	switch {
	case r.dn == "":
		return c.srv.compareSpecial(c.srv.rootDSE(id), r)
	case isSubschemaDN(r.dn):
		return c.srv.compareSpecial(c.srv.subschema, r)
	}
	if err := canRead(id); err != nil {
		return err
	}
	// The same access as a filter's: a user compares its own userPassword,
	// not other users' (slapd: insufficientAccessRights, as the entry is
	// disclosed to it).
	if at := c.srv.store.Schema().Attr(baseName(r.attr)); at != nil && !id.root {
		if c.srv.rootOnly[at] || (id.restricted && (c.srv.hidden[at] || isPassword(c.srv.store.Schema(), r.attr))) {
			return ldapstore.Errorf(ldapstore.InsufficientAccessRights, "%s cannot be compared in this session", r.attr)
		}
	}
	if !id.root && isPassword(c.srv.store.Schema(), r.attr) && !sameDN(r.dn, id) {
		return ldapstore.Errorf(ldapstore.InsufficientAccessRights, "userPassword of another entry cannot be compared")
	}
	ok, err := c.srv.store.Compare(ctx, r.dn, r.attr, r.value)
	switch {
	case err != nil:
		return err
	case ok:
		return &ldapstore.Error{Code: ldapstore.CompareTrue}
	default:
		return &ldapstore.Error{Code: ldapstore.CompareFalse}
	}
}

// compareSpecial compares against the Root DSE or the subschema subentry,
// which everyone may read, with the attribute's equality rule.
func (s *Server) compareSpecial(e *ldapstore.Entry, r *compareRequest) error {
	if e.Get(r.attr) == nil {
		if t := s.store.Schema().Attr(r.attr); t == nil || e.Get(t.Name()) == nil {
			return ldapstore.Errorf(ldapstore.NoSuchAttribute, "no such attribute")
		}
	}
	f := &filter.Filter{Kind: filter.Equality, Attr: r.attr, Value: r.value}
	switch f.Match(s.store.Schema(), e) {
	case filter.True:
		return &ldapstore.Error{Code: ldapstore.CompareTrue}
	case filter.False:
		return &ldapstore.Error{Code: ldapstore.CompareFalse}
	default:
		return ldapstore.Errorf(ldapstore.InappropriateMatching, "%s cannot be compared", r.attr)
	}
}
