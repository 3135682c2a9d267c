package server

import (
	"context"
	"strings"
	"time"

	"postern/ldapstore"
	"postern/ldapstore/dn"
	"postern/ldapstore/filter"
	"postern/ldapstore/schema"
)

// subschemaDN is the DN of the subschema subentry (RFC 4512 §4.2), as slapd
// names it.
const subschemaDN = "cn=Subschema"

// search serves a SearchRequest (RFC 4511 §4.5).
func (c *conn) search(op *operation, m *message, r *searchRequest, id identity) {
	if h, ok := c.srv.handler(m.controls); ok {
		c.serveHandler(op, m, r, id, h)
		return
	}
	switch {
	case r.base == "" && r.scope == ldapstore.ScopeBase:
		c.searchRootDSE(op, m, r, id)
		return
	case isSubschemaDN(r.base):
		c.searchSubschema(op, m, r)
		return
	}
	if err := canRead(id); err != nil {
		c.sendResult(m.id, appSearchDone, err, nil)
		return
	}
	if pc := findControl(m.controls, OIDPagedResults); pc != nil {
		c.pagedSearch(op, m, r, id, pc)
		return
	}
	ctx := op.ctx
	if r.timeLimit > 0 {
		// RFC 4511 §4.5.1.5: timeLimit in seconds; 0 is no limit.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(r.timeLimit)*c.srv.timeUnit)
		defer cancel()
	}
	v := c.view(r, id)
	e := getEncoder()
	sent := 0
	req := c.storeRequest(r, id)
	req.LongScan = op.moveReader // an unindexed search: let the connection be read meanwhile
	err := c.srv.store.Search(ctx, req, func(ent *ldapstore.Entry) error {
		if err := op.ctx.Err(); err != nil {
			return err
		}
		if sent++; sent == inlineEntries && op.moveReader != nil {
			op.moveReader() // a long search: let the connection be read meanwhile
		}
		e.reset()
		e.searchEntry(m.id, ent, c.viewFor(v, ent, id), nil)
		return c.send(e.b, false)
	})
	putEncoder(e)
	c.finish(op, m, appSearchDone, err)
}

func (c *conn) storeRequest(r *searchRequest, id identity) *ldapstore.SearchRequest {
	return &ldapstore.SearchRequest{
		BaseDN:    r.base,
		Scope:     r.scope,
		Filter:    r.filter,
		SizeLimit: int(r.sizeLimit),
		Access:    c.srv.access(id),
		Buffer:    resultBuffer{conn: c.results, global: c.srv.results},
	}
}

func (c *conn) view(r *searchRequest, id identity) *entryView {
	v := &entryView{
		sel:       newSelector(c.srv.store.Schema(), r.attrs),
		typesOnly: r.typesOnly,
		hidePW:    !id.root,
	}
	switch {
	case id.restricted:
		v.hide = c.srv.hidden
	case !id.root && len(c.srv.rootOnly) > 0:
		v.hide = c.srv.rootOnly
	}
	return v
}

// viewFor returns the view for one entry: a user sees its own userPassword
// but not other users'.
func (c *conn) viewFor(v *entryView, ent *ldapstore.Entry, id identity) *entryView {
	if !v.hidePW || id.anonymous() || id.restricted || ent.Get("userPassword") == nil {
		return v
	}
	if sameDN(ent.DN, id) {
		own := *v
		own.hidePW = false
		return &own
	}
	return v
}

// sameDN reports whether the entry DN d names the bound identity.
func sameDN(d string, id identity) bool {
	if strings.EqualFold(d, id.dn) {
		return true
	}
	n, err := dn.Normalize(d)
	return err == nil && n == id.norm
}

func isSubschemaDN(base string) bool {
	if strings.IndexByte(base, ',') >= 0 || len(base) > 64 {
		return false
	}
	n, err := dn.Normalize(base)
	return err == nil && n == "cn=subschema"
}

// searchRootDSE serves the base search of "" (RFC 4512 §5.1): the Root DSE,
// readable by everyone. One-level and subtree searches of "" go to the
// store, which takes them as searches of the suffix (the suffix is the Root
// DSE's only child), like slapd with a default search base.
func (c *conn) searchRootDSE(op *operation, m *message, r *searchRequest, id identity) {
	c.sendSpecial(op, m, r, c.srv.rootDSE(id))
}

// searchSubschema serves searches of cn=Subschema (RFC 4512 §4.2), readable
// by everyone. It has no children: a one-level search finds nothing.
func (c *conn) searchSubschema(op *operation, m *message, r *searchRequest) {
	if r.scope == ldapstore.ScopeOne {
		c.sendResult(m.id, appSearchDone, nil, nil)
		return
	}
	c.sendSpecial(op, m, r, c.srv.subschema)
}

// sendSpecial sends the Root DSE or the subschema subentry if the filter
// matches it.
func (c *conn) sendSpecial(op *operation, m *message, r *searchRequest, ent *ldapstore.Entry) {
	if c.srv.matches(r.filter, ent) {
		v := &entryView{sel: newSelector(c.srv.store.Schema(), r.attrs), typesOnly: r.typesOnly, special: true}
		e := getEncoder()
		e.searchEntry(m.id, ent, v, nil)
		c.send(e.b, false)
		putEncoder(e)
	}
	c.finish(op, m, appSearchDone, nil)
}

// access returns the read access of id for filter evaluation (bind.go's
// rules): the root DN reads everything (nil), a user every attribute but
// other entries' userPassword. A filter that touches an attribute the
// client may not read evaluates it as Undefined, in every filter form, as
// slapd does with its ACLs; refusing only some filter forms left the others
// as an oracle for the hashes (issue 9, item 8).
func (s *Server) access(id identity) filter.Access {
	if id.root {
		return nil
	}
	pw := s.store.Schema().Attr("userPassword")
	if id.restricted {
		return func(_ filter.Entry, at *schema.AttributeType) bool {
			return at != pw && !s.hidden[at]
		}
	}
	return func(e filter.Entry, at *schema.AttributeType) bool {
		return (at != pw || sameDN(e.EntryDN(), id)) && !s.rootOnly[at]
	}
}
