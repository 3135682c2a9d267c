package filter

import (
	"fmt"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// Decode decodes a Filter from its BER form (RFC 4511 §4.5.1):
//
//	Filter ::= CHOICE { and [0] SET OF Filter, or [1] SET OF Filter,
//	    not [2] Filter, equalityMatch [3] AttributeValueAssertion,
//	    substrings [4] SubstringFilter, greaterOrEqual [5] ...,
//	    lessOrEqual [6] ..., present [7] AttributeDescription,
//	    approxMatch [8] ..., extensibleMatch [9] MatchingRuleAssertion }
func Decode(p *ber.Packet) (*Filter, error) { return decode(p, 0) }

func bad(why string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSyntax, fmt.Sprintf(why, args...))
}

func data(p *ber.Packet) string {
	if p.Data != nil && p.Data.Len() > 0 {
		return p.Data.String()
	}
	if s, ok := p.Value.(string); ok {
		return s
	}
	return ""
}

func decode(p *ber.Packet, depth int) (*Filter, error) {
	if p == nil {
		return nil, bad("missing filter")
	}
	if depth > maxDepth {
		return nil, bad("nested too deeply")
	}
	if p.ClassType != ber.ClassContext {
		return nil, bad("filter is not context-specific")
	}
	k := Kind(p.Tag)
	f := &Filter{Kind: k}
	switch k {
	case And, Or:
		if p.TagType != ber.TypeConstructed {
			return nil, bad("and/or must be constructed")
		}
		for _, c := range p.Children {
			cf, err := decode(c, depth+1)
			if err != nil {
				return nil, err
			}
			f.Children = append(f.Children, cf)
		}
	case Not:
		if p.TagType != ber.TypeConstructed || len(p.Children) != 1 {
			return nil, bad("not must hold one filter")
		}
		cf, err := decode(p.Children[0], depth+1)
		if err != nil {
			return nil, err
		}
		f.Children = []*Filter{cf}
	case Equality, GreaterEq, LessEq, Approx:
		// AttributeValueAssertion ::= SEQUENCE { attributeDesc, assertionValue }
		if p.TagType != ber.TypeConstructed || len(p.Children) != 2 {
			return nil, bad("attribute value assertion must have two parts")
		}
		f.Attr, f.Value = data(p.Children[0]), data(p.Children[1])
	case Present:
		if p.TagType != ber.TypePrimitive {
			return nil, bad("present must be primitive")
		}
		f.Attr = data(p)
	case Substrings:
		// SubstringFilter ::= SEQUENCE { type, substrings SEQUENCE SIZE (1..MAX) OF
		//     CHOICE { initial [0], any [1], final [2] } } (RFC 4511 §4.5.1.7.2)
		if p.TagType != ber.TypeConstructed || len(p.Children) != 2 {
			return nil, bad("substrings must have type and substrings")
		}
		f.Attr = data(p.Children[0])
		subs := p.Children[1].Children
		if len(subs) == 0 {
			return nil, bad("substrings must not be empty")
		}
		for i, s := range subs {
			if s.ClassType != ber.ClassContext {
				return nil, bad("substring choice is not context-specific")
			}
			v := data(s)
			switch s.Tag {
			case 0:
				if i != 0 {
					return nil, bad("initial substring not first")
				}
				f.Initial = v
			case 1:
				f.Any = append(f.Any, v)
			case 2:
				if i != len(subs)-1 {
					return nil, bad("final substring not last")
				}
				f.Final = v
			default:
				return nil, bad("unknown substring choice %d", s.Tag)
			}
		}
	case Extensible:
		// MatchingRuleAssertion ::= SEQUENCE { matchingRule [1] OPTIONAL,
		//     type [2] OPTIONAL, matchValue [3], dnAttributes [4] BOOLEAN DEFAULT FALSE }
		haveValue := false
		for _, c := range p.Children {
			switch c.Tag {
			case 1:
				f.Rule = data(c)
			case 2:
				f.Attr = data(c)
			case 3:
				f.Value, haveValue = data(c), true
			case 4:
				b := c.Data.Bytes()
				f.DNAttributes = len(b) == 1 && b[0] != 0
			default:
				return nil, bad("unknown matching rule assertion field %d", c.Tag)
			}
		}
		if !haveValue || f.Rule == "" && f.Attr == "" {
			return nil, bad("incomplete extensible match")
		}
	default:
		return nil, bad("unknown filter choice %d", p.Tag)
	}
	if f.Kind != And && f.Kind != Or && f.Kind != Not && f.Kind != Extensible && f.Attr == "" {
		return nil, bad("empty attribute description")
	}
	return f, nil
}

// Encode returns the BER form of f (RFC 4511 §4.5.1).
func (f *Filter) Encode() *ber.Packet {
	tag := ber.Tag(f.Kind)
	switch f.Kind {
	case And, Or, Not:
		p := ber.Encode(ber.ClassContext, ber.TypeConstructed, tag, nil, "")
		for _, c := range f.Children {
			p.AppendChild(c.Encode())
		}
		return p
	case Present:
		return ber.NewString(ber.ClassContext, ber.TypePrimitive, tag, f.Attr, "")
	case Substrings:
		p := ber.Encode(ber.ClassContext, ber.TypeConstructed, tag, nil, "")
		p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, f.Attr, ""))
		seq := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
		if f.Initial != "" {
			seq.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, f.Initial, ""))
		}
		for _, a := range f.Any {
			seq.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 1, a, ""))
		}
		if f.Final != "" {
			seq.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 2, f.Final, ""))
		}
		p.AppendChild(seq)
		return p
	case Extensible:
		p := ber.Encode(ber.ClassContext, ber.TypeConstructed, tag, nil, "")
		if f.Rule != "" {
			p.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 1, f.Rule, ""))
		}
		if f.Attr != "" {
			p.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 2, f.Attr, ""))
		}
		p.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 3, f.Value, ""))
		if f.DNAttributes {
			p.AppendChild(ber.NewBoolean(ber.ClassContext, ber.TypePrimitive, 4, true, ""))
		}
		return p
	default:
		p := ber.Encode(ber.ClassContext, ber.TypeConstructed, tag, nil, "")
		p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, f.Attr, ""))
		p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, f.Value, ""))
		return p
	}
}
