package ldapstore

import (
	"log/slog"
	"strings"

	"postern/ldapstore/dn"
	"postern/ldapstore/schema"
)

// Operational attributes the store computes on read and never stores.
var computedAttrs = map[string]bool{
	"hasSubordinates": true, "subschemaSubentry": true, "entryDN": true, "contextCSN": true,
}

// SubschemaDN is the DN of the subschema subentry (RFC 4512 §4.2) that every
// entry's subschemaSubentry names.
const SubschemaDN = "cn=Subschema"

// target is a normalised DN inside the suffix.
type target struct {
	dn     string   // as given
	parsed dn.DN    // as given, parsed
	rdns   []string // normalised, most specific first
	key    []byte   // dn bucket key
}

func (t *target) isSuffix(s *Store) bool { return len(t.rdns) == len(s.sufRDN) }

func (t *target) parentKey() []byte { return dnKey(t.rdns[1:]) }

// resolve parses and normalises a DN. write selects the error for a DN
// outside the suffix: unwillingToPerform ("no global superior knowledge",
// as slapd says when no backend holds the DN) for writes, noSuchObject for
// reads.
func (s *Store) resolve(d string, write bool) (*target, error) {
	parsed, err := dn.Parse(d)
	if err != nil {
		return nil, &Error{Code: InvalidDNSyntax, Message: "invalid DN"}
	}
	rdns, err := s.sch.NormalizeParsedDN(parsed)
	if err != nil {
		return nil, &Error{Code: InvalidDNSyntax, Message: "invalid DN"}
	}
	if !s.inSuffix(rdns) {
		if write {
			return nil, &Error{Code: UnwillingToPerform, Message: "no global superior knowledge"}
		}
		return nil, &Error{Code: NoSuchObject, Message: "no such object"}
	}
	k := dnKey(rdns)
	// a full slice: an append by a caller copies instead of writing into
	// a target the base cache may share
	return &target{dn: d, parsed: parsed, rdns: rdns[:len(rdns):len(rdns)], key: k[:len(k):len(k)]}, nil
}

func (s *Store) inSuffix(rdns []string) bool {
	if len(rdns) < len(s.sufRDN) {
		return false
	}
	off := len(rdns) - len(s.sufRDN)
	for i, r := range s.sufRDN {
		if rdns[off+i] != r {
			return false
		}
	}
	return true
}

// prepareAttrs checks a set of attributes given by a client (or by the
// replication engine when internal): known types (RFC 4512 §4.1.2), no
// NO-USER-MODIFICATION types from users, values present and valid per
// syntax, no duplicate values. It returns them under canonical names with
// repeated types merged and plaintext userPassword values hashed.
func (s *Store) prepareAttrs(attrs []Attribute, internal bool) ([]Attribute, error) {
	out := make([]Attribute, 0, len(attrs)+8)
	pos := map[string]int{}
	for _, a := range attrs {
		d, err := s.describe(a.Type, internal)
		if err != nil {
			return nil, err
		}
		at := d.Type
		name := at.Name()
		if computedAttrs[name] {
			if internal {
				continue
			}
			return nil, Errorf(ConstraintViolation, "%s: no user modification allowed", a.Type)
		}
		if at.NoUserMod && !internal {
			return nil, Errorf(ConstraintViolation, "%s: no user modification allowed", a.Type)
		}
		if len(a.Vals) == 0 {
			return nil, Errorf(ProtocolError, "%s: no values for attribute type", a.Type)
		}
		vals, err := s.checkValues(at, a.Vals, internal)
		if err != nil {
			return nil, err
		}
		// RFC 4512 §2.5: the options are part of the attribute
		// description: "cn;lang-de" is stored, returned and matched as
		// itself, under its canonical spelling.
		desc := name
		if d.HasOptions() {
			desc = d.String()
		}
		if i, ok := pos[desc]; ok {
			merged, err := s.addValues(at, out[i].Vals, vals)
			if err != nil {
				return nil, err
			}
			out[i].Vals = merged
			continue
		}
		pos[desc] = len(out)
		out = append(out, Attribute{Type: desc, Vals: vals})
	}
	return out, nil
}

// describe parses an attribute description for storing (Add, Modify):
// an unknown type or option is undefinedAttributeType (17), as slapd
// answers, and so are a language range (not a tag) and a certificate
// without ";binary" (RFC 4523 §2; from replication the option is added
// instead, so that entries from peers that dropped it still apply).
func (s *Store) describe(desc string, internal bool) (schema.Description, error) {
	d, err := s.sch.Describe(desc)
	if err != nil {
		return d, Errorf(UndefinedAttributeType, "%s", err.Error())
	}
	for _, t := range d.Tags {
		if strings.HasSuffix(t, "-") {
			return d, Errorf(UndefinedAttributeType, "%s: %s", desc, schema.ErrUnrecognizedOption)
		}
	}
	if d.Type.RequiresBinary() && !d.Binary {
		if !internal {
			return d, Errorf(UndefinedAttributeType, "%s: requires ;binary transfer", desc)
		}
		d.Binary = true
	}
	return d, nil
}

// checkValues validates values per syntax and refuses duplicates; it hashes
// plaintext passwords and refuses userPassword values no password could
// verify (CheckPasswordValue) from clients. internal (replication) values
// are stored as the peer has them: refusing them would make the members'
// trees differ for good.
func (s *Store) checkValues(at *schema.AttributeType, vals []string, internal bool) ([]string, error) {
	out := make([]string, 0, len(vals))
	for i, v := range vals {
		if err := at.Syntax.Validate(v); err != nil {
			return nil, Errorf(InvalidAttributeSyntax, "%s: value #%d invalid per syntax", at.Name(), i)
		}
		if at == s.pwAttr {
			if err := CheckPasswordValue(v); err != nil {
				if !internal {
					return nil, Errorf(ConstraintViolation, "%s: value #%d: %s", at.Name(), i, strings.TrimPrefix(err.Error(), ErrPasswordScheme.Error()+": "))
				}
				s.log.Warn("ldapstore: replicated userPassword value cannot be verified", slog.Any("err", err))
			}
			h, err := hashIfPlain(v)
			if err != nil {
				return nil, Errorf(Other, "%s: cannot hash value", at.Name())
			}
			v = h
		}
		out = append(out, v)
	}
	if _, err := s.addValues(at, nil, out); err != nil {
		return nil, err
	}
	return out, nil
}

// addValues appends add to have, refusing values already present
// (attributeOrValueExists, RFC 4511 §4.6).
func (s *Store) addValues(at *schema.AttributeType, have, add []string) ([]string, error) {
	seen := make(map[string]bool, len(have)+len(add))
	for _, v := range have {
		seen[s.norm(at, v)] = true
	}
	out := append(have[:len(have):len(have)], make([]string, 0, len(add))...)
	for i, v := range add {
		n := s.norm(at, v)
		if seen[n] {
			return nil, Errorf(AttributeOrValueExists, "%s: value #%d provided more than once", at.Name(), i)
		}
		seen[n] = true
		out = append(out, v)
	}
	return out, nil
}

// norm returns the equality-normalised form of v (v itself when at has no
// equality rule or v does not normalise).
func (s *Store) norm(at *schema.AttributeType, v string) string {
	if at.Equality == nil {
		return v
	}
	if n, err := at.Equality.Normalize(v); err == nil {
		return n
	}
	return v
}

// hasValue reports whether vals holds v under at's equality rule.
func (s *Store) hasValue(at *schema.AttributeType, vals []string, v string) bool {
	n := s.norm(at, v)
	for _, x := range vals {
		if x == v || s.norm(at, x) == n {
			return true
		}
	}
	return false
}

// checkEntry checks e against the schema (RFC 4512 §2.4, §4.1.1, X.501
// §17.3) the way slapd's entry_schema_check does, and returns its
// structural object class.
// prev, when not nil, is the entry's current structural class: like slapd,
// a change of it is objectClassModsProhibited before any other check.
func (s *Store) checkEntry(e *Entry, prev *schema.ObjectClass) (*schema.ObjectClass, error) {
	ocVals := e.Get("objectClass")
	if len(ocVals) == 0 {
		return nil, Errorf(ObjectClassViolation, "no objectClass attribute")
	}
	r, err := s.classRules(ocVals)
	if err != nil {
		return nil, err
	}
	structural, allowed, must, extensible := r.structural, r.allowed, r.must, r.extensible
	if prev != nil && structural != prev {
		name := "(none)"
		if structural != nil {
			name = structural.Name()
		}
		return nil, Errorf(ObjectClassModsProhibited, "structural object class modification from '%s' to '%s' not allowed", prev.Name(), name)
	}
	if structural == nil {
		return nil, Errorf(ObjectClassViolation, "no structural object class provided")
	}
	for _, a := range must {
		if !hasType(s.sch, e, a) {
			return nil, Errorf(ObjectClassViolation, "object class '%s' requires attribute '%s'", ocName(s, ocVals, a), a.Name())
		}
	}
	for _, a := range e.Attributes {
		at := s.sch.Attr(a.Type)
		if at == nil {
			return nil, Errorf(UndefinedAttributeType, "%s: attribute type undefined", a.Type)
		}
		if at.SingleValue && len(a.Vals) > 1 {
			return nil, Errorf(ConstraintViolation, "attribute '%s' cannot have multiple values", at.Name())
		}
		if at.Operational() || extensible {
			continue
		}
		ok := false
		for t := at; t != nil && !ok; t = t.Sup {
			ok = allowed[t]
		}
		if !ok {
			return nil, Errorf(ObjectClassViolation, "attribute '%s' not allowed", at.Name())
		}
	}
	return structural, nil
}

// ocName names the first listed class that requires a (for messages).
func ocName(s *Store, ocVals []string, a *schema.AttributeType) string {
	for _, v := range ocVals {
		oc := s.sch.Class(v)
		found := false
		oc.Walk(func(c *schema.ObjectClass) {
			for _, m := range c.Must {
				found = found || m == a
			}
		})
		if found {
			return oc.Name()
		}
	}
	return ""
}

// missingRDN returns the type of the first RDN value of rdn not present in
// e, or "" (X.501 §9.4: the RDN's values are distinguished values of the
// entry).
func (s *Store) missingRDN(e *Entry, rdn dn.RDN) string {
	for _, ava := range rdn {
		at := s.sch.Attr(ava.Type)
		if at == nil || !s.hasValue(at, e.Get(at.Name()), ava.Value) {
			return ava.Type
		}
	}
	return ""
}

// hasType reports whether e holds an attribute of type a, with or without
// options (slapd: a MUST cn is met by cn;lang-de).
func hasType(sch *schema.Schema, e *Entry, a *schema.AttributeType) bool {
	for _, x := range e.Attributes {
		if len(x.Vals) > 0 && (x.Type == a.Name() || sch.Attr(x.Type) == a) {
			return true
		}
	}
	return false
}

// classRules is what a set of object classes requires and allows: the
// structural class of the chain, the attribute types allowed (MUST and MAY
// of the classes and their superclasses) and required, whether
// extensibleObject is among them.
type classRules struct {
	structural *schema.ObjectClass
	allowed    map[*schema.AttributeType]bool
	must       []*schema.AttributeType
	extensible bool
}

// maxClassRules bounds the cache of classRules (distinct objectClass
// lists; a directory has a handful).
const maxClassRules = 1024

// classRules returns the rules of the object classes ocVals, from a cache
// keyed by the list as written: every Add, Modify and ModifyDN checks the
// whole entry, and walking the class hierarchy into a fresh map each time
// was a tenth of a lone modify's CPU. Classes and attribute types are never
// redefined (the schema refuses duplicates), so an entry stays valid; an
// error (an unknown class, a bad structural chain) is not cached, a class
// added later makes the list valid.
func (s *Store) classRules(ocVals []string) (*classRules, error) {
	// NUL separates the names in the key; a name holding one (no class is
	// named so) bypasses the cache, so that no two lists share a key
	cache := true
	for _, v := range ocVals {
		cache = cache && strings.IndexByte(v, 0) < 0
	}
	key := strings.Join(ocVals, "\x00")
	if cache {
		if r, ok := s.rules.Load(key); ok {
			return r.(*classRules), nil
		}
	}
	r := &classRules{allowed: map[*schema.AttributeType]bool{}}
	for _, v := range ocVals {
		oc := s.sch.Class(v)
		if oc == nil {
			return nil, Errorf(ObjectClassViolation, "unrecognized objectClass '%s'", v)
		}
		if oc == s.extensOC {
			r.extensible = true
		}
		if oc.Kind == schema.Structural {
			switch {
			case r.structural == nil || oc.IsSubclassOf(r.structural):
				r.structural = oc
			case r.structural.IsSubclassOf(oc):
			default:
				return nil, Errorf(ObjectClassViolation, "invalid structural object class chain (%s/%s)", r.structural.Name(), oc.Name())
			}
		}
		oc.Walk(func(c *schema.ObjectClass) {
			for _, a := range c.Must {
				r.allowed[a] = true
				r.must = append(r.must, a)
			}
			for _, a := range c.May {
				r.allowed[a] = true
			}
		})
	}
	if cache && s.nrules.Load() < maxClassRules {
		if _, loaded := s.rules.LoadOrStore(key, r); !loaded {
			s.nrules.Add(1)
		}
	}
	return r, nil
}
