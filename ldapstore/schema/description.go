package schema

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Description is a parsed attribute description (RFC 4512 §2.5): an
// attribute type and its options. Postern knows two kinds of option, as
// slapd does out of the box: the transfer option "binary" (RFC 4522), for
// the syntaxes whose values are transferred as BER (certificates), and
// language tags "lang-..." (RFC 3866), tagging options that make a subtype
// of the attribute ("cn;lang-de" is a cn). Any other option is
// unrecognized, and the description with it too (RFC 4512 §2.5: "An
// attribute description with an unrecognized attribute option is to be
// treated as unrecognized").
type Description struct {
	Type   *AttributeType
	Binary bool
	// Tags are the language tags, in lower case and sorted. In a request or
	// a filter a tag ending in "-" is a language range (RFC 3866 §2.2):
	// "lang-de-" stands for lang-de and every lang-de-... tag.
	Tags []string
}

// Errors of Describe; each names the description in its message.
var (
	ErrUndefinedType      = errors.New("attribute type undefined")
	ErrUnrecognizedOption = errors.New("unrecognized option")
	ErrBinaryNotSupported = errors.New(`option "binary" not supported with type`)
)

// binarySyntaxes are the syntaxes whose values go on the wire as BER and
// take the binary option (RFC 4522 §2; RFC 4523 for the certificate
// syntaxes, which require it: X-BINARY-TRANSFER-REQUIRED).
var binarySyntaxes = map[string]bool{
	oidSyntaxPrefix + "8": true, oidSyntaxPrefix + "9": true, oidSyntaxPrefix + "10": true, oidSyntaxPrefix + "49": true,
}

// RequiresBinary reports whether values of a are transferred with the
// binary option only (RFC 4523 §2: certificates; slapd answers
// undefinedAttributeType "requires ;binary transfer" without it).
func (a *AttributeType) RequiresBinary() bool { return binarySyntaxes[a.Syntax.OID] }

// Describe parses the attribute description desc (RFC 4512 §2.5:
// attributedescription = attributetype options; options = *( SEMI option );
// option = 1*keychar). Options are case-insensitive and may come in any
// order; a repeated one counts once.
func (s *Schema) Describe(desc string) (Description, error) {
	typ, opts, hasOpts := strings.Cut(desc, ";")
	at := s.Attr(typ)
	if at == nil {
		return Description{}, fmt.Errorf("%s: %w", desc, ErrUndefinedType)
	}
	d := Description{Type: at}
	if !hasOpts {
		return d, nil
	}
	for _, o := range strings.Split(opts, ";") {
		lo := strings.ToLower(o)
		switch {
		case lo == "binary":
			if !binarySyntaxes[at.Syntax.OID] {
				return Description{}, fmt.Errorf("%s: %w", desc, ErrBinaryNotSupported)
			}
			d.Binary = true
		case strings.HasPrefix(lo, "lang-") && validLangTag(lo[len("lang-"):]):
			d.Tags = append(d.Tags, lo)
		default:
			return Description{}, fmt.Errorf("%s: %w", desc, ErrUnrecognizedOption)
		}
	}
	sort.Strings(d.Tags)
	d.Tags = dedupe(d.Tags)
	return d, nil
}

// validLangTag checks the part of a language option after "lang-": a
// language tag (RFC 3066 as RFC 3866 §2 uses it: subtags of letters and
// digits joined by '-') or, ending in '-', a range.
func validLangTag(t string) bool {
	t = strings.TrimSuffix(t, "-")
	if t == "" {
		return false
	}
	for _, sub := range strings.Split(t, "-") {
		if sub == "" || len(sub) > 8 {
			return false
		}
		for i := 0; i < len(sub); i++ {
			if c := sub[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
				return false
			}
		}
	}
	return true
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// String returns the canonical form of d, as slapd writes it: the type's
// primary name, then ";binary", then the tags in order.
func (d Description) String() string {
	if !d.Binary && len(d.Tags) == 0 {
		return d.Type.Name()
	}
	var b strings.Builder
	b.WriteString(d.Type.Name())
	if d.Binary {
		b.WriteString(";binary")
	}
	for _, t := range d.Tags {
		b.WriteByte(';')
		b.WriteString(t)
	}
	return b.String()
}

// HasOptions reports whether d has any option.
func (d Description) HasOptions() bool { return d.Binary || len(d.Tags) > 0 }

// Covers reports whether d, as named in a request, a filter or a compare,
// names attribute o of an entry: o's type is d's type or a subtype of it,
// and o has every tag of d (or, for a range, a tag in it). The binary
// option is a transfer option (RFC 4522) and plays no part.
func (d Description) Covers(o Description) bool {
	if !o.Type.IsSubtypeOf(d.Type) {
		return false
	}
	for _, t := range d.Tags {
		if !o.hasTag(t) {
			return false
		}
	}
	return true
}

func (d Description) hasTag(t string) bool {
	if strings.HasSuffix(t, "-") {
		base := t[:len(t)-1]
		for _, x := range d.Tags {
			if x == base || strings.HasPrefix(x, t) {
				return true
			}
		}
		return false
	}
	for _, x := range d.Tags {
		if x == t {
			return true
		}
	}
	return false
}
