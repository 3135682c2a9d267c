// Package stringprep prepares LDAP character strings for matching as RFC
// 4518 says: transcode (the strings are UTF-8), map (characters to nothing
// or to SPACE, and case folding for the case-ignoring rules), normalize
// (NFKC), and insignificant space handling. The matching rules of package
// schema prepare stored values and assertion values with it, so that both
// sides of every comparison are prepared the same way.
//
// The prepared form of a value is "collapsed": no leading or trailing
// SPACE and single inner SPACEs. RFC 4518 §2.6.1 writes it with a SPACE
// at each end and two for each inner run; both forms compare equal and
// order alike, and the collapsed one is what the store's indexes and DN
// keys hold. Prohibited code points (§2.4) are not refused: slapd does not
// refuse them either.
//
// It does not know about matching rules or attribute types.
package stringprep

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Value prepares an attribute or assertion value (RFC 4518 §2.1-§2.6.1),
// case folding it when fold is set (the caseIgnore rules). v must be valid
// UTF-8.
func Value(v string, fold bool) string {
	if s, ok := asciiFast(v, fold); ok {
		return s
	}
	return collapse(mapNormalize(v, fold))
}

// Substring prepares one piece of a substrings assertion (RFC 4518
// §2.6.1): mapped, folded and normalized like a value, inner runs of SPACE
// made one, and a leading or trailing SPACE kept (as one) only where it is
// significant: at the start of an any or final piece and at the end of an
// initial or any piece. A piece of SPACEs only is one SPACE where a SPACE
// is significant, else empty.
func Substring(piece string, fold bool, initial, final bool) string {
	m := mapNormalize(piece, fold)
	c := collapse(m)
	lead := !initial && strings.HasPrefix(m, " ")
	trail := !final && strings.HasSuffix(m, " ")
	if c == "" {
		if lead || trail {
			return " "
		}
		return ""
	}
	if lead {
		c = " " + c
	}
	if trail {
		c += " "
	}
	return c
}

// asciiFast prepares v when it is printable ASCII (all the steps but the
// space handling and case folding are then the identity).
func asciiFast(v string, fold bool) (string, bool) {
	clean := true
	prevSpace := true
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= 0x7f || c < 0x20 {
			return "", false
		}
		if fold && c >= 'A' && c <= 'Z' || c == ' ' && prevSpace {
			clean = false
		}
		prevSpace = c == ' '
	}
	if clean && (len(v) == 0 || v[len(v)-1] != ' ') {
		return v, true
	}
	if fold {
		v = strings.ToLower(v)
	}
	return collapse(v), true
}

// folder is RFC 3454 table B.2's case folding: Unicode full case folding.
var folder = cases.Fold()

// mapNormalize applies RFC 4518 §2.2 (map), the case folding of table B.2
// when fold is set, and §2.3 (NFKC). Folding and NFKC are applied twice so
// that the result is stable under both, as table B.2 is built to be.
func mapNormalize(v string, fold bool) string {
	var b strings.Builder
	b.Grow(len(v))
	for _, r := range v {
		switch m := mapRune(r); m {
		case mapNothing:
		case mapSpace:
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	s := b.String()
	if isASCII(s) {
		if fold {
			s = strings.ToLower(s)
		}
		return s
	}
	if fold {
		s = folder.String(s)
	}
	s = norm.NFKC.String(s)
	if fold {
		s = norm.NFKC.String(folder.String(s))
	}
	return s
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

const (
	mapKeep = iota
	mapNothing
	mapSpace
)

// mapRune is RFC 4518 §2.2's mapping of one code point.
func mapRune(r rune) int {
	switch {
	case r == 0x09 || r == 0x0a || r == 0x0b || r == 0x0c || r == 0x0d || r == 0x85:
		return mapSpace
	case r == ' ' || r == 0xa0 || r == 0x1680 || r >= 0x2000 && r <= 0x200a || r == 0x2028 || r == 0x2029 || r == 0x202f || r == 0x205f || r == 0x3000:
		return mapSpace
	case r < 0x20 || r >= 0x7f && r <= 0x9f:
		return mapNothing // the other control codes
	case r < 0xad:
		return mapKeep
	case r == 0xad || r == 0x1806 || r == 0x034f || r >= 0x180b && r <= 0x180d || r >= 0xfe00 && r <= 0xfe0f || r == 0xfffc:
		return mapNothing // soft hyphens, joiners, variation selectors
	case r == 0x06dd || r == 0x070f || r == 0x180e || r >= 0x200b && r <= 0x200f || r >= 0x202a && r <= 0x202e ||
		r >= 0x2060 && r <= 0x2063 || r >= 0x206a && r <= 0x206f || r == 0xfeff || r >= 0xfff9 && r <= 0xfffb ||
		r >= 0x1d173 && r <= 0x1d17a || r == 0xe0001 || r >= 0xe0020 && r <= 0xe007f:
		return mapNothing // code points with a control function, ZERO WIDTH SPACE
	}
	return mapKeep
}

// collapse removes leading and trailing SPACEs and makes inner runs one
// (RFC 4518 §2.6.1, in the collapsed form).
func collapse(v string) string {
	if !strings.Contains(v, "  ") && !strings.HasPrefix(v, " ") && !strings.HasSuffix(v, " ") {
		return v
	}
	var b strings.Builder
	b.Grow(len(v))
	pending := false
	for _, f := range strings.Split(v, " ") {
		if f == "" {
			continue
		}
		if pending {
			b.WriteByte(' ')
		}
		b.WriteString(f)
		pending = true
	}
	return b.String()
}
