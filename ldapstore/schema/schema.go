package schema

import (
	"fmt"
	"strings"

	"postern/ldapstore/dn"
)

// Schema is a set of syntaxes, matching rules, attribute types and object
// classes. It is read-only once built and safe for concurrent use.
type Schema struct {
	syntaxes map[string]*Syntax
	rules    map[string]*MatchingRule // by lower-case name and OID
	attrs    map[string]*AttributeType
	classes  map[string]*ObjectClass
	// definition order, for rendering
	syntaxList []*Syntax
	ruleList   []*MatchingRule
	attrList   []*AttributeType
	classList  []*ObjectClass
}

// Default returns a new copy of the built-in schema.
func Default() *Schema {
	s := &Schema{
		syntaxes: map[string]*Syntax{},
		rules:    map[string]*MatchingRule{},
		attrs:    map[string]*AttributeType{},
		classes:  map[string]*ObjectClass{},
	}
	for _, sx := range builtinSyntaxes() {
		s.syntaxes[sx.OID] = sx
		s.syntaxList = append(s.syntaxList, sx)
	}
	for _, r := range builtinRules(s) {
		s.rules[r.OID] = r
		s.rules[strings.ToLower(r.Name)] = r
		s.ruleList = append(s.ruleList, r)
	}
	for _, d := range attributeTypeDefs {
		if err := s.AddAttributeType(d); err != nil {
			panic(fmt.Sprintf("schema: built-in attribute type %s: %v", d, err))
		}
	}
	for _, d := range objectClassDefs {
		if err := s.AddObjectClass(d); err != nil {
			panic(fmt.Sprintf("schema: built-in object class %s: %v", d, err))
		}
	}
	return s
}

// Attr returns the attribute type named by name (a name, alias or numeric
// OID, case-insensitive; attribute options after ';' are ignored), or nil.
func (s *Schema) Attr(name string) *AttributeType {
	if a, ok := s.attrs[name]; ok {
		return a
	}
	if i := strings.IndexByte(name, ';'); i >= 0 {
		name = name[:i]
	}
	return s.attrs[strings.ToLower(name)]
}

// Class returns the object class named by name or OID, or nil.
func (s *Schema) Class(name string) *ObjectClass {
	if c, ok := s.classes[name]; ok {
		return c
	}
	return s.classes[strings.ToLower(name)]
}

// Rule returns the matching rule with this name or OID, or nil.
func (s *Schema) Rule(name string) *MatchingRule {
	if r, ok := s.rules[name]; ok {
		return r
	}
	return s.rules[strings.ToLower(name)]
}

// Syntax returns the syntax with this OID, or nil.
func (s *Schema) Syntax(oid string) *Syntax { return s.syntaxes[oid] }

// AttributeTypes returns every attribute type in definition order.
func (s *Schema) AttributeTypes() []*AttributeType { return s.attrList }

// ObjectClasses returns every object class in definition order.
func (s *Schema) ObjectClasses() []*ObjectClass { return s.classList }

// AddAttributeType parses an RFC 4512 §4.1.2 AttributeTypeDescription and
// adds it. Its SUP, rules and syntax must already be known.
func (s *Schema) AddAttributeType(def string) error {
	d, err := parseDescription(def)
	if err != nil {
		return err
	}
	a := &AttributeType{OID: d.oid, Names: d.names, Desc: d.desc, def: def}
	if sup := d.one("SUP"); sup != "" {
		if a.Sup = s.Attr(sup); a.Sup == nil {
			return fmt.Errorf("schema: unknown SUP %q", sup)
		}
		a.Equality, a.Ordering, a.Substr, a.Syntax = a.Sup.Equality, a.Sup.Ordering, a.Sup.Substr, a.Sup.Syntax
		a.Usage = a.Sup.Usage
	}
	for _, f := range []struct {
		key  string
		dest **MatchingRule
	}{{"EQUALITY", &a.Equality}, {"ORDERING", &a.Ordering}, {"SUBSTR", &a.Substr}} {
		if n := d.one(f.key); n != "" {
			if *f.dest = s.Rule(n); *f.dest == nil {
				return fmt.Errorf("schema: unknown %s rule %q", f.key, n)
			}
		}
	}
	if sx := d.one("SYNTAX"); sx != "" {
		if i := strings.IndexByte(sx, '{'); i >= 0 {
			sx = sx[:i]
		}
		if a.Syntax = s.syntaxes[sx]; a.Syntax == nil {
			return fmt.Errorf("schema: unknown syntax %q", sx)
		}
	}
	if a.Syntax == nil {
		return fmt.Errorf("schema: attribute type %s has no syntax", a.OID)
	}
	a.SingleValue = d.flags["SINGLE-VALUE"]
	a.NoUserMod = d.flags["NO-USER-MODIFICATION"]
	a.Collective = d.flags["COLLECTIVE"]
	if u := d.one("USAGE"); u != "" {
		found := false
		for i, n := range usageNames {
			if strings.EqualFold(n, u) {
				a.Usage, found = Usage(i), true
			}
		}
		if !found {
			return fmt.Errorf("schema: unknown USAGE %q", u)
		}
	}
	a.lname = strings.ToLower(a.Name())
	for _, k := range append([]string{a.OID}, a.Names...) {
		k = strings.ToLower(k)
		if _, dup := s.attrs[k]; dup {
			return fmt.Errorf("schema: duplicate attribute type %q", k)
		}
		s.attrs[k] = a
	}
	s.attrs[a.Name()] = a // exact-case fast path for Attr
	for sup := a.Sup; sup != nil; sup = sup.Sup {
		sup.subtypes = append(sup.subtypes, a)
	}
	s.attrList = append(s.attrList, a)
	return nil
}

// AddObjectClass parses an RFC 4512 §4.1.1 ObjectClassDescription and adds it.
func (s *Schema) AddObjectClass(def string) error {
	d, err := parseDescription(def)
	if err != nil {
		return err
	}
	o := &ObjectClass{OID: d.oid, Names: d.names, Desc: d.desc, def: def}
	for _, n := range d.list["SUP"] {
		c := s.Class(n)
		if c == nil {
			return fmt.Errorf("schema: unknown SUP class %q", n)
		}
		o.Sup = append(o.Sup, c)
	}
	switch {
	case d.flags["ABSTRACT"]:
		o.Kind = Abstract
	case d.flags["AUXILIARY"]:
		o.Kind = Auxiliary
	default:
		o.Kind = Structural
	}
	for _, f := range []struct {
		key  string
		dest *[]*AttributeType
	}{{"MUST", &o.Must}, {"MAY", &o.May}} {
		for _, n := range d.list[f.key] {
			a := s.Attr(n)
			if a == nil {
				return fmt.Errorf("schema: class %s: unknown attribute %q", o.Name(), n)
			}
			*f.dest = append(*f.dest, a)
		}
	}
	for _, k := range append([]string{o.OID}, o.Names...) {
		k = strings.ToLower(k)
		if _, dup := s.classes[k]; dup {
			return fmt.Errorf("schema: duplicate object class %q", k)
		}
		s.classes[k] = o
	}
	s.classes[o.Name()] = o
	s.classList = append(s.classList, o)
	return nil
}

// NormalizeDN returns the canonical form of the DN str: each RDN's type as
// the lower-case primary name, its value normalised by the type's equality
// rule and escaped (RFC 4514 §2.4). Unknown types are an error, as in slapd.
func (s *Schema) NormalizeDN(str string) (string, error) {
	parts, err := s.NormalizeRDNs(str)
	if err != nil {
		return "", err
	}
	return strings.Join(parts, ","), nil
}

// NormalizeRDNs returns the normalised RDNs of str, most specific first.
func (s *Schema) NormalizeRDNs(str string) ([]string, error) {
	d, err := dn.Parse(str)
	if err != nil {
		return nil, err
	}
	return s.NormalizeParsedDN(d)
}

// NormalizeParsedDN is NormalizeRDNs for a DN already parsed.
func (s *Schema) NormalizeParsedDN(d dn.DN) ([]string, error) {
	return dn.NormalizeFunc(d, s.foldAVA)
}

func (s *Schema) foldAVA(typ, val string) (string, string, error) {
	a := s.Attr(typ)
	if a == nil {
		return "", "", fmt.Errorf("%w: undefined attribute type %q", dn.ErrSyntax, typ)
	}
	if a.Equality == nil {
		return "", "", fmt.Errorf("%w: attribute type %q has no equality rule", dn.ErrSyntax, typ)
	}
	nv, err := a.Equality.Normalize(val)
	if err != nil {
		return "", "", fmt.Errorf("%w: %s: %v", dn.ErrSyntax, typ, err)
	}
	return a.lname, nv, nil
}

// SubschemaAttributes returns the values of the subschema subentry's
// attributeTypes, objectClasses, ldapSyntaxes and matchingRules attributes,
// each a description in the RFC 4512 §4.1 format.
func (s *Schema) SubschemaAttributes() map[string][]string {
	out := map[string][]string{}
	for _, sx := range s.syntaxList {
		out["ldapSyntaxes"] = append(out["ldapSyntaxes"], sx.def)
	}
	for _, r := range s.ruleList {
		out["matchingRules"] = append(out["matchingRules"], r.def)
	}
	for _, a := range s.attrList {
		out["attributeTypes"] = append(out["attributeTypes"], a.def)
	}
	for _, o := range s.classList {
		out["objectClasses"] = append(out["objectClasses"], o.def)
	}
	return out
}

// description is a parsed RFC 4512 §4.1 description: OID, NAMEs, DESC,
// single-valued fields, lists (SUP/MUST/MAY) and flags.
type description struct {
	oid    string
	names  []string
	desc   string
	fields map[string]string
	list   map[string][]string
	flags  map[string]bool
}

func (d *description) one(k string) string { return d.fields[k] }

// parseDescription tokenises "( oid NAME 'x' ... )" (RFC 4512 §4.1).
func parseDescription(def string) (*description, error) {
	toks, err := tokenize(def)
	if err != nil {
		return nil, err
	}
	if len(toks) < 3 || toks[0] != "(" || toks[len(toks)-1] != ")" {
		return nil, fmt.Errorf("schema: bad description %q", def)
	}
	toks = toks[1 : len(toks)-1]
	d := &description{oid: toks[0], fields: map[string]string{}, list: map[string][]string{}, flags: map[string]bool{}}
	i := 1
	// values reads one qdescr/oid or a parenthesised '$'-separated list.
	values := func() ([]string, error) {
		if i >= len(toks) {
			return nil, fmt.Errorf("schema: truncated description %q", def)
		}
		if toks[i] != "(" {
			i++
			return []string{unquote(toks[i-1])}, nil
		}
		i++
		var out []string
		for i < len(toks) && toks[i] != ")" {
			if toks[i] != "$" {
				out = append(out, unquote(toks[i]))
			}
			i++
		}
		if i >= len(toks) {
			return nil, fmt.Errorf("schema: unclosed list in %q", def)
		}
		i++
		return out, nil
	}
	for i < len(toks) {
		k := toks[i]
		i++
		switch {
		case k == "NAME", k == "SUP", k == "MUST", k == "MAY":
			v, err := values()
			if err != nil {
				return nil, err
			}
			if k == "NAME" {
				d.names = v
			} else {
				d.list[k] = v
				if len(v) > 0 {
					d.fields[k] = v[0]
				}
			}
		case k == "DESC", k == "EQUALITY", k == "ORDERING", k == "SUBSTR", k == "SYNTAX", k == "USAGE":
			v, err := values()
			if err != nil {
				return nil, err
			}
			d.fields[k] = v[0]
			if k == "DESC" {
				d.desc = v[0]
			}
		case strings.HasPrefix(k, "X-"):
			if _, err := values(); err != nil {
				return nil, err
			}
		default:
			d.flags[k] = true
		}
	}
	return d, nil
}

func unquote(t string) string {
	if len(t) >= 2 && t[0] == '\'' && t[len(t)-1] == '\'' {
		return t[1 : len(t)-1]
	}
	return t
}

func tokenize(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '(' || c == ')' || c == '$':
			toks = append(toks, string(c))
			i++
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("schema: unterminated quote in %q", s)
			}
			toks = append(toks, s[i:i+j+2])
			i += j + 2
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n()$'", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks, nil
}
