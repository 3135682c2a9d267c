package filter

import (
	"fmt"
	"strings"
)

// Parse parses the RFC 4515 §3 string form of a filter. Surrounding spaces
// are ignored; a filter without outer parentheses ("uid=x") is accepted as
// slapd and ldapsearch do.
func Parse(s string) (*Filter, error) {
	t := strings.TrimSpace(s)
	if t != "" && t[0] != '(' {
		t = "(" + t + ")"
	}
	p := &parser{s: t}
	f, err := p.filter(0)
	if err != nil {
		return nil, err
	}
	if p.i != len(p.s) {
		return nil, p.err("trailing characters")
	}
	return f, nil
}

type parser struct {
	s string
	i int
}

func (p *parser) err(why string) error {
	return fmt.Errorf("%w: %s at offset %d", ErrSyntax, why, p.i)
}

// filter = LPAREN filtercomp RPAREN (RFC 4515 §3).
func (p *parser) filter(depth int) (*Filter, error) {
	if depth > maxDepth {
		return nil, p.err("nested too deeply")
	}
	if p.i >= len(p.s) || p.s[p.i] != '(' {
		return nil, p.err("expected '('")
	}
	p.i++
	if p.i >= len(p.s) {
		return nil, p.err("unexpected end")
	}
	var f *Filter
	var err error
	switch p.s[p.i] {
	case '&', '|':
		kind := And
		if p.s[p.i] == '|' {
			kind = Or
		}
		p.i++
		f = &Filter{Kind: kind}
		for p.i < len(p.s) && p.s[p.i] == '(' {
			c, err := p.filter(depth + 1)
			if err != nil {
				return nil, err
			}
			f.Children = append(f.Children, c)
		}
	case '!':
		p.i++
		c, err := p.filter(depth + 1)
		if err != nil {
			return nil, err
		}
		f = &Filter{Kind: Not, Children: []*Filter{c}}
	default:
		if f, err = p.item(); err != nil {
			return nil, err
		}
	}
	if p.i >= len(p.s) || p.s[p.i] != ')' {
		return nil, p.err("expected ')'")
	}
	p.i++
	return f, nil
}

// item parses simple / present / substring / extensible (RFC 4515 §3).
func (p *parser) item() (*Filter, error) {
	end := strings.IndexByte(p.s[p.i:], ')')
	if end < 0 {
		return nil, p.err("unterminated item")
	}
	body := p.s[p.i : p.i+end]
	if strings.IndexByte(body, '(') >= 0 {
		return nil, p.err("unescaped '(' in value")
	}
	eq := strings.IndexByte(body, '=')
	if eq <= 0 {
		return nil, p.err("missing '='")
	}
	lhs, rhs := body[:eq], body[eq+1:]
	p.i += end
	f := &Filter{}
	switch lhs[len(lhs)-1] {
	case '>':
		f.Kind, lhs = GreaterEq, lhs[:len(lhs)-1]
	case '<':
		f.Kind, lhs = LessEq, lhs[:len(lhs)-1]
	case '~':
		f.Kind, lhs = Approx, lhs[:len(lhs)-1]
	case ':':
		return p.extensible(lhs[:len(lhs)-1], rhs)
	default:
		f.Kind = Equality
	}
	if !validAttr(lhs) {
		return nil, p.err("bad attribute description")
	}
	f.Attr = lhs
	if f.Kind != Equality {
		v, err := unescape(rhs)
		if err != nil {
			return nil, p.err(err.Error())
		}
		f.Value = v
		return f, nil
	}
	if rhs == "*" {
		f.Kind = Present
		return f, nil
	}
	if strings.IndexByte(rhs, '*') < 0 {
		v, err := unescape(rhs)
		if err != nil {
			return nil, p.err(err.Error())
		}
		f.Value = v
		return f, nil
	}
	// substring = attr EQUALS [initial] any [final] (RFC 4515 §3)
	parts := strings.Split(rhs, "*")
	f.Kind = Substrings
	for i, part := range parts {
		v, err := unescape(part)
		if err != nil {
			return nil, p.err(err.Error())
		}
		switch {
		case i == 0:
			f.Initial = v
		case i == len(parts)-1:
			f.Final = v
		case v == "":
			// "(cn=a**b)": an empty any substring constrains nothing
		default:
			f.Any = append(f.Any, v)
		}
	}
	return f, nil
}

// extensible parses attr [dnattrs] [matchingrule] COLON EQUALS value, or
// [dnattrs] matchingrule COLON EQUALS value (RFC 4515 §3); lhs lacks the
// final ':'.
func (p *parser) extensible(lhs, rhs string) (*Filter, error) {
	f := &Filter{Kind: Extensible}
	parts := strings.Split(lhs, ":")
	if parts[0] != "" {
		if !validAttr(parts[0]) {
			return nil, p.err("bad attribute description")
		}
		f.Attr = parts[0]
	}
	rest := parts[1:]
	if len(rest) > 0 && strings.EqualFold(rest[0], "dn") {
		f.DNAttributes = true
		rest = rest[1:]
	}
	switch len(rest) {
	case 0:
	case 1:
		if !validOID(rest[0]) {
			return nil, p.err("bad matching rule")
		}
		f.Rule = rest[0]
	default:
		return nil, p.err("bad extensible match")
	}
	if f.Attr == "" && f.Rule == "" {
		return nil, p.err("extensible match needs a type or a rule")
	}
	v, err := unescape(rhs)
	if err != nil {
		return nil, p.err(err.Error())
	}
	f.Value = v
	return f, nil
}

// validAttr checks attributedescription = attributetype options (RFC 4512 §2.5).
func validAttr(a string) bool {
	typ, opts, _ := strings.Cut(a, ";")
	if !validOID(typ) {
		return false
	}
	if opts != "" {
		for _, o := range strings.Split(opts, ";") {
			if o == "" || strings.Trim(o, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
				return false
			}
		}
	}
	return true
}

func validOID(s string) bool {
	if s == "" {
		return false
	}
	if s[0] >= '0' && s[0] <= '9' {
		for _, part := range strings.Split(s, ".") {
			if part == "" || strings.Trim(part, "0123456789") != "" {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '-')) {
			return false
		}
	}
	return true
}

// unescape decodes valueencoding (RFC 4515 §3): '\' followed by two hex
// digits. Unescaped '*', '(' and ')' are not allowed.
func unescape(v string) (string, error) {
	if strings.IndexByte(v, '\\') < 0 {
		if strings.ContainsAny(v, "*()\x00") {
			return "", fmt.Errorf("unescaped special character")
		}
		return v, nil
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch c {
		case '\\':
			if i+2 >= len(v) {
				return "", fmt.Errorf("truncated escape")
			}
			hi, ok1 := unhex(v[i+1])
			lo, ok2 := unhex(v[i+2])
			if !ok1 || !ok2 {
				return "", fmt.Errorf("bad escape")
			}
			b.WriteByte(hi<<4 | lo)
			i += 2
		case '*', '(', ')', 0:
			return "", fmt.Errorf("unescaped special character")
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
