package dn

import (
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	"postern/ldapstore/stringprep"
)

// AVA is one attribute type and value assertion of an RDN (RFC 4514 §2.3).
// Value is the unescaped value.
type AVA struct{ Type, Value string }

// RDN is a relative distinguished name: one or more AVAs joined by '+'.
type RDN []AVA

// DN is a distinguished name, most specific RDN first. The empty DN (the
// root DSE) has no RDNs.
type DN []RDN

// ErrSyntax is the error every parse failure wraps.
var ErrSyntax = errors.New("dn: invalid DN syntax")

func syntaxErr(s string, pos int, why string) error {
	return fmt.Errorf("%w: %q at %d: %s", ErrSyntax, s, pos, why)
}

// Parse parses the RFC 4514 §3 string form of a DN. Like slapd it also
// accepts spaces around ',', '+' and '=' and ';' as an RDN separator
// (RFC 4514 §4 liberal parsing). A value in '#hex' form is decoded from BER
// when it is a string type, else kept as raw bytes.
func Parse(s string) (DN, error) {
	p := parser{s: s}
	p.skipSpaces()
	if p.i == len(s) {
		return DN{}, nil
	}
	d := make(DN, 0, strings.Count(s, ",")+1)
	for {
		rdn, err := p.rdn()
		if err != nil {
			return nil, err
		}
		d = append(d, rdn)
		p.skipSpaces()
		if p.i == len(s) {
			return d, nil
		}
		if c := s[p.i]; c != ',' && c != ';' {
			return nil, syntaxErr(s, p.i, "expected ','")
		}
		p.i++
		p.skipSpaces()
	}
}

type parser struct {
	s string
	i int
}

func (p *parser) skipSpaces() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *parser) rdn() (RDN, error) {
	var r RDN
	for {
		ava, err := p.ava()
		if err != nil {
			return nil, err
		}
		r = append(r, ava)
		p.skipSpaces()
		if p.i < len(p.s) && p.s[p.i] == '+' {
			p.i++
			p.skipSpaces()
			continue
		}
		return r, nil
	}
}

// ava parses attributeTypeAndValue (RFC 4514 §3).
func (p *parser) ava() (AVA, error) {
	start := p.i
	for p.i < len(p.s) && isTypeChar(p.s[p.i]) {
		p.i++
	}
	typ := p.s[start:p.i]
	if !validType(typ) {
		return AVA{}, syntaxErr(p.s, start, "bad attribute type")
	}
	p.skipSpaces()
	if p.i >= len(p.s) || p.s[p.i] != '=' {
		return AVA{}, syntaxErr(p.s, p.i, "expected '='")
	}
	p.i++
	p.skipSpaces()
	val, err := p.value()
	if err != nil {
		return AVA{}, err
	}
	return AVA{Type: typ, Value: val}, nil
}

func isTypeChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == ';'
}

// validType checks descr / numericoid (RFC 4512 §1.4); an "oid." prefix and
// attribute options are not allowed in DNs.
func validType(t string) bool {
	if t == "" {
		return false
	}
	if t[0] >= '0' && t[0] <= '9' {
		for _, part := range strings.Split(t, ".") {
			if part == "" || (len(part) > 1 && part[0] == '0') {
				return false
			}
			for i := 0; i < len(part); i++ {
				if part[i] < '0' || part[i] > '9' {
					return false
				}
			}
		}
		return true
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '-')) {
			return false
		}
	}
	return true
}

// value parses attributeValue: a '#' hexstring or an escaped string.
func (p *parser) value() (string, error) {
	if p.i < len(p.s) && p.s[p.i] == '#' {
		start := p.i + 1
		p.i = start
		for p.i < len(p.s) && isHex(p.s[p.i]) {
			p.i++
		}
		h := p.s[start:p.i]
		if len(h) == 0 || len(h)%2 != 0 {
			return "", syntaxErr(p.s, start, "bad hexstring")
		}
		raw, _ := hex.DecodeString(h)
		return berString(raw), nil
	}
	// fast path: no escapes, the value is a substring of the input
	start := p.i
	j := start
	for j < len(p.s) {
		c := p.s[j]
		if c == ',' || c == ';' || c == '+' || c == '\\' || c == '"' || c == '<' || c == '>' || c == 0 {
			break
		}
		j++
	}
	if j == len(p.s) || p.s[j] == ',' || p.s[j] == ';' || p.s[j] == '+' {
		p.i = j
		return strings.TrimRight(p.s[start:j], " "), nil
	}
	var b strings.Builder
	trailing := 0 // unescaped spaces at the end of b, trimmed (RFC 4514 §4)
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch c {
		case ',', ';', '+':
			return b.String()[:b.Len()-trailing], nil
		case '\\':
			if p.i+1 >= len(p.s) {
				return "", syntaxErr(p.s, p.i, "dangling escape")
			}
			n := p.s[p.i+1]
			if isHex(n) {
				if p.i+2 >= len(p.s) || !isHex(p.s[p.i+2]) {
					return "", syntaxErr(p.s, p.i, "bad hex escape")
				}
				v, _ := hex.DecodeString(p.s[p.i+1 : p.i+3])
				b.WriteByte(v[0])
				p.i += 3
			} else if strings.IndexByte("\\\"+,;<>= #", n) >= 0 {
				b.WriteByte(n)
				p.i += 2
			} else {
				return "", syntaxErr(p.s, p.i, "bad escape")
			}
			trailing = 0
			continue
		case '"', '<', '>', 0:
			return "", syntaxErr(p.s, p.i, "character must be escaped")
		case ' ':
			trailing++
		default:
			trailing = 0
		}
		b.WriteByte(c)
		p.i++
	}
	return b.String()[:b.Len()-trailing], nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// berString returns the contents of a BER-encoded string type (RFC 4514
// §2.4 hexstring), or the raw bytes if it is not one.
func berString(raw []byte) string {
	if len(raw) >= 2 {
		switch raw[0] {
		case 0x04, 0x0c, 0x13, 0x14, 0x16, 0x1a, 0x1e:
			l := int(raw[1])
			off := 2
			if l&0x80 != 0 {
				n := l & 0x7f
				if n == 0 || n > 3 || len(raw) < 2+n {
					return string(raw)
				}
				l = 0
				for _, b := range raw[2 : 2+n] {
					l = l<<8 | int(b)
				}
				off = 2 + n
			}
			if off+l == len(raw) {
				return string(raw[off:])
			}
		}
	}
	return string(raw)
}

// EscapeValue escapes an attribute value for a DN string (RFC 4514 §2.4).
func EscapeValue(v string) string {
	need := false
	for i := 0; i < len(v); i++ {
		if needsEscape(v, i) {
			need = true
			break
		}
	}
	if !need {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == 0:
			b.WriteString(`\00`)
		case needsEscape(v, i):
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func needsEscape(v string, i int) bool {
	c := v[i]
	switch c {
	case '"', '+', ',', ';', '<', '>', '\\', 0:
		return true
	case ' ':
		return i == 0 || i == len(v)-1
	case '#':
		return i == 0
	}
	return false
}

// String returns the RFC 4514 string form of the RDN.
func (r RDN) String() string {
	var b strings.Builder
	for i, a := range r {
		if i > 0 {
			b.WriteByte('+')
		}
		b.WriteString(a.Type)
		b.WriteByte('=')
		b.WriteString(EscapeValue(a.Value))
	}
	return b.String()
}

// String returns the RFC 4514 string form of the DN.
func (d DN) String() string {
	var b strings.Builder
	for i, r := range d {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(r.String())
	}
	return b.String()
}

// RDNString returns the string form of the first (most specific) RDN, or "".
func (d DN) RDNString() string {
	if len(d) == 0 {
		return ""
	}
	return d[0].String()
}

// Parent returns the DN without its first RDN (nil for the root).
func (d DN) Parent() DN {
	if len(d) == 0 {
		return nil
	}
	return d[1:]
}

// IsDescendantOf reports whether d lies strictly below ancestor, comparing
// with the default folding of Normalize.
func (d DN) IsDescendantOf(ancestor DN) bool {
	if len(d) <= len(ancestor) {
		return false
	}
	off := len(d) - len(ancestor)
	for i := range ancestor {
		if normRDN(d[off+i], defaultFold) != normRDN(ancestor[i], defaultFold) {
			return false
		}
	}
	return true
}

// Equal reports whether d and o name the same entry under the default folding.
func (d DN) Equal(o DN) bool {
	if len(d) != len(o) {
		return false
	}
	for i := range d {
		if normRDN(d[i], defaultFold) != normRDN(o[i], defaultFold) {
			return false
		}
	}
	return true
}

// FoldFunc maps an attribute type and value to their canonical forms.
type FoldFunc func(typ, value string) (ctyp, cvalue string, err error)

// NormalizeFunc returns the normalised RDN strings of d, most specific first,
// using fold for each AVA; the AVAs of a multi-valued RDN are sorted.
func NormalizeFunc(d DN, fold FoldFunc) ([]string, error) {
	out := make([]string, len(d))
	for i, r := range d {
		s, err := normRDNErr(r, fold)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

func normRDN(r RDN, fold FoldFunc) string {
	s, _ := normRDNErr(r, fold)
	return s
}

func normRDNErr(r RDN, fold FoldFunc) (string, error) {
	if len(r) == 1 {
		t, v, err := fold(r[0].Type, r[0].Value)
		if err != nil {
			return "", err
		}
		return t + "=" + EscapeValue(v), nil
	}
	parts := make([]string, len(r))
	for i, a := range r {
		t, v, err := fold(a.Type, a.Value)
		if err != nil {
			return "", err
		}
		parts[i] = t + "=" + EscapeValue(v)
	}
	sort.Strings(parts)
	return strings.Join(parts, "+"), nil
}

// Normalize returns the canonical string of the DN s: attribute types as
// lower-case short names, values folded as caseIgnoreMatch does (RFC 4518
// insignificant space handling, lower case), escaped per RFC 4514, no spaces
// around separators, AVAs of multi-valued RDNs sorted.
func Normalize(s string) (string, error) {
	d, err := Parse(s)
	if err != nil {
		return "", err
	}
	parts, err := NormalizeFunc(d, defaultFold)
	if err != nil {
		return "", err
	}
	return strings.Join(parts, ","), nil
}

func defaultFold(typ, value string) (string, string, error) {
	t := strings.ToLower(typ)
	if short, ok := shortNames[t]; ok {
		t = short
	}
	return t, FoldSpaceCase(value), nil
}

// shortNames maps long names and OIDs of common naming attributes to the
// short names (RFC 4519 §2).
var shortNames = map[string]string{
	"commonname": "cn", "2.5.4.3": "cn",
	"surname": "sn", "2.5.4.4": "sn",
	"countryname": "c", "2.5.4.6": "c",
	"localityname": "l", "2.5.4.7": "l",
	"stateorprovincename": "st", "2.5.4.8": "st",
	"streetaddress": "street", "2.5.4.9": "street",
	"organizationname": "o", "2.5.4.10": "o",
	"organizationalunitname": "ou", "2.5.4.11": "ou",
	"domaincomponent": "dc", "0.9.2342.19200300.100.1.25": "dc",
	"userid": "uid", "0.9.2342.19200300.100.1.1": "uid",
	"rfc822mailbox": "mail", "0.9.2342.19200300.100.1.3": "mail",
}

// FoldSpaceCase prepares v as caseIgnoreMatch does (RFC 4518: mapping,
// case folding, NFKC, insignificant space handling; package stringprep).
// It returns v itself when nothing changes.
func FoldSpaceCase(v string) string { return stringprep.Value(v, true) }

// FoldSpace prepares v as caseExactMatch does (RFC 4518 without case
// folding).
func FoldSpace(v string) string { return stringprep.Value(v, false) }
