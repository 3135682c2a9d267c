package filter

import (
	"errors"
	"strings"

	"postern/ldapstore/dn"
	"postern/ldapstore/schema"
)

// Result is the outcome of evaluating a filter (RFC 4511 §4.5.1.7).
type Result int

// Filter results.
const (
	False Result = iota
	True
	Undefined
)

// Entry is what a filter is matched against. ldapstore.Entry implements it.
type Entry interface {
	// Get returns the values of the attribute whose type is name (any case).
	Get(name string) []string
	// EntryDN returns the entry's DN (for dnAttributes matching).
	EntryDN() string
	// EachAttr calls fn for every attribute of the entry.
	EachAttr(fn func(typ string, vals []string))
}

// Access tells whether the client a filter is evaluated for may read
// attribute type at of entry e. An attribute it may not read evaluates as
// Undefined in every filter form that names it (presence, equality,
// approx, ordering, substrings, extensible match with a type, its values in
// the DN with dnAttributes), and is not tried by an extensible match
// without a type, as slapd's test_filter does: otherwise the filter is an
// oracle for the values the client cannot read (issue 9, item 8). A nil
// Access allows everything.
type Access func(e Entry, at *schema.AttributeType) bool

func (a Access) allows(e Entry, at *schema.AttributeType) bool { return a == nil || a(e, at) }

// Matches reports whether f evaluates to True for e.
func (f *Filter) Matches(s *schema.Schema, e Entry) bool { return f.Match(s, e) == True }

// Match evaluates f against e using the matching rules of s, with access
// to every attribute.
func (f *Filter) Match(s *schema.Schema, e Entry) Result { return f.MatchAccess(s, e, nil) }

// MatchesAccess reports whether f evaluates to True for e under access.
func (f *Filter) MatchesAccess(s *schema.Schema, e Entry, access Access) bool {
	return f.MatchAccess(s, e, access) == True
}

// MatchAccess evaluates f against e using the matching rules of s; the
// attributes access denies evaluate as Undefined.
func (f *Filter) MatchAccess(s *schema.Schema, e Entry, access Access) Result {
	switch f.Kind {
	case And:
		// RFC 4511 §4.5.1.7.1: TRUE if all TRUE, FALSE if any FALSE, else Undefined.
		r := True
		for _, c := range f.Children {
			switch c.MatchAccess(s, e, access) {
			case False:
				return False
			case Undefined:
				r = Undefined
			}
		}
		return r
	case Or:
		r := False
		for _, c := range f.Children {
			switch c.MatchAccess(s, e, access) {
			case True:
				return True
			case Undefined:
				r = Undefined
			}
		}
		return r
	case Not:
		if len(f.Children) != 1 {
			return Undefined
		}
		switch f.Children[0].MatchAccess(s, e, access) {
		case True:
			return False
		case False:
			return True
		}
		return Undefined
	case Present:
		d, err := s.Describe(f.Attr)
		if errors.Is(err, schema.ErrUndefinedType) {
			if len(e.Get(f.Attr)) > 0 {
				return True
			}
			return Undefined
		}
		if err != nil {
			return Undefined // an unrecognized option (RFC 4512 §2.5)
		}
		found := false
		denied := eachValues(s, d, e, access, func([]string) bool { found = true; return false })
		return result(found, denied)
	case Equality, Approx:
		// Approximate matching uses the equality rule (RFC 4511 §4.5.1.7.6
		// leaves the algorithm to the server).
		d, err := s.Describe(f.Attr)
		if err != nil || d.Type.Equality == nil {
			return Undefined
		}
		if at := d.Type; at.Name() == "objectClass" && !d.HasOptions() {
			if !access.allows(e, at) {
				return Undefined
			}
			return matchObjectClass(s, f.Value, e)
		}
		return matchEquality(s, d, d.Type.Equality, f.Value, e, access)
	case GreaterEq, LessEq:
		d, err := s.Describe(f.Attr)
		if err != nil || d.Type.Ordering == nil {
			return Undefined
		}
		return matchOrdering(s, d, f.Kind, f.Value, e, access)
	case Substrings:
		d, err := s.Describe(f.Attr)
		if err != nil || d.Type.Substr == nil {
			return Undefined
		}
		return matchSubstrings(s, d, f, e, access)
	case Extensible:
		return matchExtensible(s, f, e, access)
	}
	return Undefined
}

// result is True when matched, else Undefined when an attribute the client
// may not read was skipped, else False.
func result(matched, denied bool) Result {
	switch {
	case matched:
		return True
	case denied:
		return Undefined
	}
	return False
}

func matchEquality(s *schema.Schema, d schema.Description, rule *schema.MatchingRule, value string, e Entry, access Access) Result {
	want, err := rule.Normalize(value)
	if err != nil {
		return Undefined
	}
	r := False
	denied := eachValues(s, d, e, access, func(vals []string) bool {
		for _, v := range vals {
			if v == want {
				r = True
				return false
			}
			if nv, err := rule.Normalize(v); err == nil && nv == want {
				r = True
				return false
			}
		}
		return true
	})
	return result(r == True, denied)
}

// matchObjectClass matches (objectClass=X) against an entry that belongs
// to X or to any subclass of X: an inetOrgPerson is a person too (RFC 4512
// §2.4.1, objectClass values imply their superclasses; slapd matches so).
// A class unknown to the schema matches its own name only.
func matchObjectClass(s *schema.Schema, value string, e Entry) Result {
	want := s.Class(value)
	for _, v := range e.Get("objectClass") {
		if want == nil {
			if strings.EqualFold(v, value) {
				return True
			}
			continue
		}
		if oc := s.Class(v); oc != nil && oc.IsSubclassOf(want) {
			return True
		}
	}
	return False
}

func matchOrdering(s *schema.Schema, d schema.Description, k Kind, value string, e Entry, access Access) Result {
	rule := d.Type.Ordering
	want, err := rule.Normalize(value)
	if err != nil {
		return Undefined
	}
	r := False
	denied := eachValues(s, d, e, access, func(vals []string) bool {
		for _, v := range vals {
			nv, err := rule.Normalize(v)
			if err != nil {
				continue
			}
			c := rule.CompareNormalized(nv, want)
			if k == GreaterEq && c >= 0 || k == LessEq && c <= 0 {
				r = True
				return false
			}
		}
		return true
	})
	return result(r == True, denied)
}

func matchSubstrings(s *schema.Schema, d schema.Description, f *Filter, e Entry, access Access) Result {
	// RFC 4518 §2.6.1: the pieces are prepared as the values are, with
	// the SPACEs at their ends that are significant kept.
	rule := d.Type.Substr
	var initial, final string
	var err error
	if f.Initial != "" {
		if initial, err = rule.NormalizeSubstring(f.Initial, true, false); err != nil {
			return Undefined
		}
	}
	if f.Final != "" {
		if final, err = rule.NormalizeSubstring(f.Final, false, true); err != nil {
			return Undefined
		}
	}
	anys := make([]string, 0, len(f.Any))
	for _, a := range f.Any {
		n, err := rule.NormalizeSubstring(a, false, false)
		if err != nil {
			return Undefined
		}
		if n != "" {
			anys = append(anys, n)
		}
	}
	r := False
	denied := eachValues(s, d, e, access, func(vals []string) bool {
		for _, v := range vals {
			nv, err := rule.Normalize(v)
			if err == nil && SubstringsMatch(nv, initial, anys, final) {
				r = True
				return false
			}
		}
		return true
	})
	return result(r == True, denied)
}

// SubstringsMatch reports whether v starts with initial, then contains each
// of anys in order without overlap, and ends with final.
func SubstringsMatch(v, initial string, anys []string, final string) bool {
	if !strings.HasPrefix(v, initial) {
		return false
	}
	v = v[len(initial):]
	for _, a := range anys {
		i := strings.Index(v, a)
		if i < 0 {
			return false
		}
		v = v[i+len(a):]
	}
	return strings.HasSuffix(v, final)
}

// matchExtensible implements RFC 4511 §4.5.1.7.7: with a rule and no type,
// every attribute whose syntax suits the rule is tried; with dnAttributes,
// the AVAs of the entry's DN are tried too.
func matchExtensible(s *schema.Schema, f *Filter, e Entry, access Access) Result {
	var rule *schema.MatchingRule
	var at *schema.AttributeType
	var d schema.Description
	if f.Rule != "" {
		if rule = s.Rule(f.Rule); rule == nil {
			return Undefined
		}
	}
	if f.Attr != "" {
		var err error
		if d, err = s.Describe(f.Attr); err != nil {
			return Undefined
		}
		at = d.Type
		if rule == nil {
			rule = at.Equality
		}
	}
	if rule == nil {
		return Undefined
	}
	if rule.Kind == schema.SubstringsRule {
		return Undefined
	}
	want, err := rule.Normalize(f.Value)
	if err != nil {
		return Undefined
	}
	test := func(v string) bool {
		nv, err := rule.Normalize(v)
		if err != nil {
			return false
		}
		if rule.Kind == schema.OrderingRule {
			// An ordering rule in an extensible match asserts "less than"
			// (X.501 §9.2: the rule is true if the value is less).
			return rule.CompareNormalized(nv, want) < 0
		}
		return nv == want
	}
	r, denied := False, false
	if at != nil {
		denied = eachValues(s, d, e, access, func(vals []string) bool {
			for _, v := range vals {
				if test(v) {
					r = True
					return false
				}
			}
			return true
		})
	} else {
		e.EachAttr(func(typ string, vals []string) {
			if r == True {
				return
			}
			a := s.Attr(typ)
			// Without a type, an attribute the client may not read is
			// not tried (slapd's test_mra_filter skips it): the result
			// then says nothing about its values.
			if a == nil || !compatible(a, rule) || !access.allows(e, a) {
				return
			}
			for _, v := range vals {
				if test(v) {
					r = True
					return
				}
			}
		})
	}
	if r == True || !f.DNAttributes {
		return result(r == True, denied)
	}
	name, err := dn.Parse(e.EntryDN())
	if err != nil {
		return result(false, denied)
	}
	for _, rdn := range name {
		for _, ava := range rdn {
			a := s.Attr(ava.Type)
			// a DN's AVAs have no options: a description with tags names none
			if a == nil || at != nil && (!a.IsSubtypeOf(at) || len(d.Tags) > 0) || at == nil && !compatible(a, rule) {
				continue
			}
			// RFC 4511 §4.5.1.7.7: the DN's values are attribute values too;
			// one the client may not read is not tried, and with a type
			// makes the result Undefined (as slapd).
			if !access.allows(e, a) {
				denied = denied || at != nil
				continue
			}
			if test(ava.Value) {
				return True
			}
		}
	}
	return result(false, denied)
}

// stringSyntaxes are the syntaxes whose values are character strings; a
// string matching rule applies to any of them.
var stringSyntaxes = map[string]bool{
	schema.SyntaxDirString: true, schema.SyntaxIA5: true,
	"1.3.6.1.4.1.1466.115.121.1.44": true, "1.3.6.1.4.1.1466.115.121.1.11": true,
	"1.3.6.1.4.1.1466.115.121.1.50": true, "1.3.6.1.4.1.1466.115.121.1.41": true,
}

// compatible reports whether rule can be applied to values of a (RFC 4512
// §4.1.4 matching rule use, approximated by syntax).
func compatible(a *schema.AttributeType, rule *schema.MatchingRule) bool {
	if a.Syntax.OID == rule.SyntaxOID {
		return true
	}
	return stringSyntaxes[a.Syntax.OID] && stringSyntaxes[rule.SyntaxOID]
}
