package server

import (
	"errors"
	"strings"

	"postern/ldapstore"
	"postern/ldapstore/schema"
)

// selector implements the attribute selection of a search (RFC 4511
// §4.5.1.8, RFC 3673): an empty list or "*" selects all user attributes,
// "+" all operational ones, "1.1" alone none, and other names select their
// attribute type and its subtypes.
type selector struct {
	sch      *schema.Schema
	allUser  bool
	allOp    bool
	types    []schema.Description
	unknown  []string // requested names the schema does not know
	explicit bool     // any attribute named explicitly
}

func newSelector(sch *schema.Schema, attrs []string) *selector {
	s := &selector{sch: sch}
	if len(attrs) == 0 {
		s.allUser = true
		return s
	}
	for _, a := range attrs {
		switch a {
		case "*":
			s.allUser = true
		case "+":
			s.allOp = true
		case "1.1":
			// RFC 4511 §4.5.1.8: "1.1" means no attributes; combined with
			// others it is ignored.
		default:
			s.explicit = true
			// RFC 4512 §2.5: "cn" selects cn and its subtypes with any
			// options, "cn;lang-de" those with that tag; a description
			// with an unrecognized option selects nothing (as in slapd).
			d, err := sch.Describe(a)
			switch {
			case err == nil:
				s.types = append(s.types, d)
			case errors.Is(err, schema.ErrUndefinedType):
				s.unknown = append(s.unknown, baseName(a))
			}
		}
	}
	return s
}

// baseName strips attribute options ("userCertificate;binary").
func baseName(a string) string {
	if i := strings.IndexByte(a, ';'); i >= 0 {
		return a[:i]
	}
	return a
}

// include reports whether an attribute of the given type is selected, and
// returns its schema type (nil when unknown). special entries (Root DSE,
// cn=Subschema) have no schema of their own: their attributes are
// operational except objectClass and cn.
func (s *selector) include(typ string, special bool) (bool, *schema.AttributeType) {
	var t *schema.AttributeType
	if s.sch != nil {
		t = s.sch.Attr(typ)
	}
	if s.allUser && s.allOp && !s.explicit {
		return true, t
	}
	var op bool
	if special {
		op = !strings.EqualFold(typ, "objectClass") && !strings.EqualFold(typ, "cn")
	} else {
		op = t != nil && t.Operational()
	}
	if op && s.allOp || !op && s.allUser {
		return true, t
	}
	if !s.explicit {
		return false, t
	}
	if t != nil {
		od := schema.Description{Type: t}
		if strings.IndexByte(typ, ';') >= 0 {
			var err error
			if od, err = s.sch.Describe(typ); err != nil {
				return false, t
			}
		}
		for _, w := range s.types {
			if w.Covers(od) {
				return true, t
			}
		}
		return false, t
	}
	b := baseName(typ)
	for _, u := range s.unknown {
		if strings.EqualFold(u, b) {
			return true, t
		}
	}
	return false, t
}

// isPassword reports whether an attribute description names userPassword
// (by any name or its OID).
func isPassword(sch *schema.Schema, typ string) bool {
	if strings.EqualFold(baseName(typ), "userPassword") {
		return true
	}
	if sch == nil {
		return false
	}
	t := sch.Attr(typ)
	return t != nil && t.HasName("userPassword")
}

// entryView says how to present one entry to one client.
type entryView struct {
	sel       *selector
	typesOnly bool
	special   bool
	hidePW    bool // userPassword is not shown
	// hide are further types not shown (a restricted session's)
	hide map[*schema.AttributeType]bool
}

// searchEntry appends a SearchResultEntry (RFC 4511 §4.5.2):
// [APPLICATION 4] SEQUENCE { objectName LDAPDN, attributes
// PartialAttributeList }, with its controls.
func (e *encoder) searchEntry(id int64, ent *ldapstore.Entry, v *entryView, ctrls []Control) {
	e.beginMessage(id, appSearchEntry)
	e.str(tagOctetString, ent.DN)
	e.begin(tagSequence)
	for i := range ent.Attributes {
		a := &ent.Attributes[i]
		ok, t := v.sel.include(a.Type, v.special)
		if !ok {
			continue
		}
		if v.hidePW && (t != nil && t.HasName("userPassword") || t == nil && strings.EqualFold(baseName(a.Type), "userPassword")) {
			continue
		}
		if t != nil && v.hide[t] {
			continue
		}
		e.begin(tagSequence)
		e.str(tagOctetString, a.Type)
		e.begin(tagSet)
		if !v.typesOnly {
			for _, val := range a.Vals {
				e.str(tagOctetString, val)
			}
		}
		e.end()
		e.end()
	}
	e.end()
	e.endMessage(ctrls)
}
