package ldapstore

import "strings"

// Attribute is one attribute of an entry: its type as written by the client
// (or its canonical schema name) and its values in order.
type Attribute struct {
	Type string
	Vals []string
}

// Entry is a directory entry: its DN as stored (user form, not normalised)
// and its attributes, user and operational alike.
type Entry struct {
	DN         string
	Attributes []Attribute
}

// Get returns the values of attribute name (case-insensitive; no alias
// resolution beyond the exact type name).
func (e *Entry) Get(name string) []string {
	for _, a := range e.Attributes {
		if strings.EqualFold(a.Type, name) {
			return a.Vals
		}
	}
	return nil
}

// First returns the first value of attribute name, or "".
func (e *Entry) First(name string) string {
	if v := e.Get(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set replaces (or adds) attribute name with vals; empty vals removes it.
func (e *Entry) Set(name string, vals ...string) {
	for i, a := range e.Attributes {
		if strings.EqualFold(a.Type, name) {
			if len(vals) == 0 {
				e.Attributes = append(e.Attributes[:i], e.Attributes[i+1:]...)
			} else {
				e.Attributes[i].Vals = vals
			}
			return
		}
	}
	if len(vals) > 0 {
		e.Attributes = append(e.Attributes, Attribute{Type: name, Vals: vals})
	}
}

// Clone returns a deep copy of e.
func (e *Entry) Clone() *Entry {
	c := &Entry{DN: e.DN, Attributes: make([]Attribute, len(e.Attributes))}
	for i, a := range e.Attributes {
		c.Attributes[i] = Attribute{Type: a.Type, Vals: append([]string(nil), a.Vals...)}
	}
	return c
}

// ModOp is the operation of one modification (RFC 4511 §4.6, RFC 4525).
type ModOp int

// Modification operations, numbered as on the wire.
const (
	ModAdd       ModOp = 0
	ModDelete    ModOp = 1
	ModReplace   ModOp = 2
	ModIncrement ModOp = 3
)

// Modification is one change of a Modify operation.
type Modification struct {
	Op   ModOp
	Attr Attribute
}

// Scope is a search scope (RFC 4511 §4.5.1.2).
type Scope int

// Search scopes, numbered as on the wire.
const (
	ScopeBase Scope = 0
	ScopeOne  Scope = 1
	ScopeSub  Scope = 2
)

// EntryDN returns e.DN; with Get and EachAttr it lets filters match entries
// (filter.Entry).
func (e *Entry) EntryDN() string { return e.DN }

// EachAttr calls fn for every attribute of e, in order.
func (e *Entry) EachAttr(fn func(typ string, vals []string)) {
	for _, a := range e.Attributes {
		fn(a.Type, a.Vals)
	}
}

// HasOptions reports whether an attribute of e has a description with
// options ("cn;lang-de"); filters take a faster path for entries without.
func (e *Entry) HasOptions() bool {
	for _, a := range e.Attributes {
		if strings.IndexByte(a.Type, ';') >= 0 {
			return true
		}
	}
	return false
}

// NumAttrs and AttrAt walk e's attributes by index (filter matching of
// attributes with options).
func (e *Entry) NumAttrs() int { return len(e.Attributes) }

// AttrAt returns the type and values of e's i-th attribute.
func (e *Entry) AttrAt(i int) (string, []string) { return e.Attributes[i].Type, e.Attributes[i].Vals }
