package filter

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// Kind is the type of a filter item; the values are the BER context tags of
// RFC 4511 §4.5.1.
type Kind int

// Filter kinds.
const (
	And        Kind = 0
	Or         Kind = 1
	Not        Kind = 2
	Equality   Kind = 3
	Substrings Kind = 4
	GreaterEq  Kind = 5
	LessEq     Kind = 6
	Present    Kind = 7
	Approx     Kind = 8
	Extensible Kind = 9
)

// Filter is a node of a filter's syntax tree.
type Filter struct {
	Kind     Kind
	Children []*Filter // And, Or: any number; Not: exactly one
	Attr     string    // attribute description (Extensible: may be "")
	Value    string    // assertion value (unescaped)
	// Substrings (RFC 4511 §4.5.1.7.2): at most one Initial and one Final.
	Initial string
	Any     []string
	Final   string
	// Extensible (RFC 4511 §4.5.1.7.7).
	Rule         string // matching rule name or OID, may be ""
	DNAttributes bool
}

// ErrSyntax is wrapped by every parse and decode failure.
var ErrSyntax = errors.New("filter: bad search filter")

// maxDepth bounds nesting so that hostile input cannot exhaust the stack.
const maxDepth = 100

// String returns the RFC 4515 string form of f.
func (f *Filter) String() string {
	var b strings.Builder
	f.write(&b)
	return b.String()
}

func (f *Filter) write(b *strings.Builder) {
	b.WriteByte('(')
	switch f.Kind {
	case And, Or, Not:
		b.WriteByte("&|!"[f.Kind])
		for _, c := range f.Children {
			c.write(b)
		}
	case Equality:
		b.WriteString(f.Attr)
		b.WriteByte('=')
		b.WriteString(Escape(f.Value))
	case GreaterEq:
		b.WriteString(f.Attr)
		b.WriteString(">=")
		b.WriteString(Escape(f.Value))
	case LessEq:
		b.WriteString(f.Attr)
		b.WriteString("<=")
		b.WriteString(Escape(f.Value))
	case Approx:
		b.WriteString(f.Attr)
		b.WriteString("~=")
		b.WriteString(Escape(f.Value))
	case Present:
		b.WriteString(f.Attr)
		b.WriteString("=*")
	case Substrings:
		b.WriteString(f.Attr)
		b.WriteByte('=')
		b.WriteString(Escape(f.Initial))
		b.WriteByte('*')
		for _, a := range f.Any {
			b.WriteString(Escape(a))
			b.WriteByte('*')
		}
		b.WriteString(Escape(f.Final))
	case Extensible:
		b.WriteString(f.Attr)
		if f.DNAttributes {
			b.WriteString(":dn")
		}
		if f.Rule != "" {
			b.WriteByte(':')
			b.WriteString(f.Rule)
		}
		b.WriteString(":=")
		b.WriteString(Escape(f.Value))
	}
	b.WriteByte(')')
}

// Escape escapes an assertion value for the string form (RFC 4515 §3):
// '*', '(', ')', '\', NUL and bytes that are not UTF-8 become \XX.
func Escape(v string) string {
	clean := true
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '*' || c == '(' || c == ')' || c == '\\' || c == 0 || c >= 0x80 {
			clean = false
			break
		}
	}
	if clean {
		return v
	}
	const hexd = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(v); {
		c := v[i]
		if c >= 0x80 {
			r, n := utf8.DecodeRuneInString(v[i:])
			if r != utf8.RuneError || n > 1 {
				b.WriteString(v[i : i+n])
				i += n
				continue
			}
		}
		if c == '*' || c == '(' || c == ')' || c == '\\' || c == 0 || c >= 0x80 {
			b.WriteByte('\\')
			b.WriteByte(hexd[c>>4])
			b.WriteByte(hexd[c&15])
		} else {
			b.WriteByte(c)
		}
		i++
	}
	return b.String()
}
