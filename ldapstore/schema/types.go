package schema

import (
	"strings"
)

// Usage is an attribute type's USAGE (RFC 4512 §4.1.2).
type Usage int

// Attribute usages.
const (
	UserApplications Usage = iota
	DirectoryOperation
	DistributedOperation
	DSAOperation
)

var usageNames = [...]string{"userApplications", "directoryOperation", "distributedOperation", "dSAOperation"}

// Kind is an object class kind (RFC 4512 §2.4).
type Kind int

// Object class kinds.
const (
	Structural Kind = iota
	Abstract
	Auxiliary
)

// Syntax is an LDAP syntax (RFC 4517 §3.3): its OID, description and
// value check.
type Syntax struct {
	OID      string
	Desc     string
	validate func(string) error
	def      string
}

// Validate checks v against the syntax.
func (s *Syntax) Validate(v string) error {
	if s.validate == nil {
		return nil
	}
	return s.validate(v)
}

// RuleKind tells what a matching rule is for.
type RuleKind int

// Matching rule kinds.
const (
	EqualityRule RuleKind = iota
	OrderingRule
	SubstringsRule
)

// MatchingRule is a matching rule (RFC 4517 §4.2): it normalises values so
// that equal values have equal normal forms, and for ordering rules compares
// normal forms.
type MatchingRule struct {
	OID       string
	Name      string
	SyntaxOID string
	Kind      RuleKind
	norm      func(string) (string, error)
	sub       func(piece string, initial, final bool) (string, error)
	cmp       func(a, b string) int
	def       string
}

// Normalize returns the normal form of v under r, or an error when v is not
// a valid assertion or attribute value for r.
func (r *MatchingRule) Normalize(v string) (string, error) { return r.norm(v) }

// NormalizeSubstring prepares one piece of a substrings assertion
// (initial, any or final) for a substrings rule: like Normalize, but a
// SPACE at the piece's start or end is kept where RFC 4518 §2.6.1 makes it
// significant (the start of an any or final piece, the end of an initial
// or any piece).
func (r *MatchingRule) NormalizeSubstring(piece string, initial, final bool) (string, error) {
	if r.sub != nil {
		return r.sub(piece, initial, final)
	}
	return r.norm(piece)
}

// CompareNormalized orders two normalised values (ordering rules; other
// rules order bytewise).
func (r *MatchingRule) CompareNormalized(a, b string) int {
	if r.cmp != nil {
		return r.cmp(a, b)
	}
	return strings.Compare(a, b)
}

// AttributeType is an attribute type description (RFC 4512 §4.1.2).
type AttributeType struct {
	OID         string
	Names       []string
	Desc        string
	Sup         *AttributeType
	Equality    *MatchingRule // own or inherited; nil: no equality matching
	Ordering    *MatchingRule
	Substr      *MatchingRule
	Syntax      *Syntax
	SingleValue bool
	NoUserMod   bool
	Collective  bool
	Usage       Usage
	subtypes    []*AttributeType
	lname       string
	def         string
}

// Name returns the primary (first) name, or the OID when there is none.
func (a *AttributeType) Name() string {
	if len(a.Names) > 0 {
		return a.Names[0]
	}
	return a.OID
}

// Operational reports whether the type is operational (USAGE other than
// userApplications).
func (a *AttributeType) Operational() bool { return a.Usage != UserApplications }

// Subtypes returns the types derived from a, directly or not.
func (a *AttributeType) Subtypes() []*AttributeType { return a.subtypes }

// IsSubtypeOf reports whether a is sup or derives from it.
func (a *AttributeType) IsSubtypeOf(sup *AttributeType) bool {
	for t := a; t != nil; t = t.Sup {
		if t == sup {
			return true
		}
	}
	return false
}

// HasName reports whether n names a (case-insensitive name or OID).
func (a *AttributeType) HasName(n string) bool {
	if n == a.OID {
		return true
	}
	for _, x := range a.Names {
		if strings.EqualFold(x, n) {
			return true
		}
	}
	return false
}

// ObjectClass is an object class description (RFC 4512 §4.1.1).
type ObjectClass struct {
	OID   string
	Names []string
	Desc  string
	Sup   []*ObjectClass
	Kind  Kind
	Must  []*AttributeType // own only; see AllMust
	May   []*AttributeType
	def   string
}

// Name returns the primary name, or the OID.
func (o *ObjectClass) Name() string {
	if len(o.Names) > 0 {
		return o.Names[0]
	}
	return o.OID
}

// IsSubclassOf reports whether o is sup or inherits from it.
func (o *ObjectClass) IsSubclassOf(sup *ObjectClass) bool {
	if o == sup {
		return true
	}
	for _, s := range o.Sup {
		if s.IsSubclassOf(sup) {
			return true
		}
	}
	return false
}

// Walk calls fn for o and every superclass (each once).
func (o *ObjectClass) Walk(fn func(*ObjectClass)) {
	seen := map[*ObjectClass]bool{}
	var rec func(*ObjectClass)
	rec = func(c *ObjectClass) {
		if seen[c] {
			return
		}
		seen[c] = true
		fn(c)
		for _, s := range c.Sup {
			rec(s)
		}
	}
	rec(o)
}
