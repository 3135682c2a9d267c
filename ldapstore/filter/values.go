package filter

import "postern/ldapstore/schema"

// Finding the values a filter item names in an entry: by attribute type
// and its subtypes, and for entries whose attributes have options by
// attribute description (RFC 4512 §2.5), under the client's access.

// eachValues calls fn with the values of the attributes of e that d
// names (RFC 4511 §4.5.1.7: an attribute description also matches
// subtypes, and RFC 4512 §2.5 a description with options the attributes
// that have at least those options), until fn returns false. Types access
// denies are skipped; denied reports whether one that e holds was.
func eachValues(s *schema.Schema, d schema.Description, e Entry, access Access, fn func([]string) bool) (denied bool) {
	if hasOptions(e) {
		return eachDescribed(s, d, e, access, fn)
	}
	if len(d.Tags) > 0 {
		return false // no attribute of e has a tag
	}
	at := d.Type
	if v := getAny(at, e); len(v) > 0 {
		if !access.allows(e, at) {
			denied = true
		} else if !fn(v) {
			return denied
		}
	}
	for _, st := range at.Subtypes() {
		if v := getAny(st, e); len(v) > 0 {
			if !access.allows(e, st) {
				denied = true
			} else if !fn(v) {
				return denied
			}
		}
	}
	return denied
}

// eachDescribed is eachValues for an entry whose attributes may have
// options: each attribute's description is compared with d. It walks the
// attributes by index (no closure for fn to escape into: the hot paths
// stay allocation-free).
func eachDescribed(s *schema.Schema, d schema.Description, e Entry, access Access, fn func([]string) bool) (denied bool) {
	ie, ok := e.(indexedEntry)
	if !ok {
		ie = collectAttrs(e)
	}
	for i, n := 0, ie.NumAttrs(); i < n; i++ {
		typ, vals := ie.AttrAt(i)
		if len(vals) == 0 {
			continue
		}
		od, err := s.Describe(typ)
		if err != nil || !d.Covers(od) {
			continue
		}
		if !access.allows(e, od.Type) {
			denied = true
			continue
		}
		if !fn(vals) {
			return denied
		}
	}
	return denied
}

// indexedEntry is an Entry whose attributes can be walked by index
// (ldapstore.Entry is one).
type indexedEntry interface {
	NumAttrs() int
	AttrAt(i int) (typ string, vals []string)
}

// attrList is an indexedEntry made from any Entry's EachAttr.
type attrList []struct {
	typ  string
	vals []string
}

func (l attrList) NumAttrs() int                   { return len(l) }
func (l attrList) AttrAt(i int) (string, []string) { return l[i].typ, l[i].vals }

func collectAttrs(e Entry) attrList {
	var l attrList
	e.EachAttr(func(typ string, vals []string) {
		l = append(l, struct {
			typ  string
			vals []string
		}{typ, vals})
	})
	return l
}

// hasOptions reports whether an attribute of e may have options: entries
// that can tell (ldapstore.Entry's HasOptions) take the faster path.
func hasOptions(e Entry) bool {
	if o, ok := e.(interface{ HasOptions() bool }); ok {
		return o.HasOptions()
	}
	return true
}

func getAny(at *schema.AttributeType, e Entry) []string {
	if v := e.Get(at.Name()); v != nil {
		return v
	}
	for _, n := range at.Names[min(1, len(at.Names)):] {
		if v := e.Get(n); v != nil {
			return v
		}
	}
	return e.Get(at.OID)
}
