package schema

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
	"unicode/utf8"

	"postern/ldapstore/csn"
	"postern/ldapstore/dn"
	"postern/ldapstore/stringprep"
)

// Syntax OIDs (RFC 4517 §3.3, RFC 4530 §2.1, OpenLDAP's CSN syntax).
const (
	oidSyntaxPrefix = "1.3.6.1.4.1.1466.115.121.1."
	SyntaxBoolean   = oidSyntaxPrefix + "7"
	SyntaxDN        = oidSyntaxPrefix + "12"
	SyntaxDirString = oidSyntaxPrefix + "15"
	SyntaxGenTime   = oidSyntaxPrefix + "24"
	SyntaxIA5       = oidSyntaxPrefix + "26"
	SyntaxInteger   = oidSyntaxPrefix + "27"
	SyntaxNumeric   = oidSyntaxPrefix + "36"
	SyntaxOID       = oidSyntaxPrefix + "38"
	SyntaxOctet     = oidSyntaxPrefix + "40"
	SyntaxUUID      = "1.3.6.1.1.16.1"
	SyntaxCSN       = "1.3.6.1.4.1.4203.666.11.2.1"
)

var errEmpty = errors.New("empty value")

func dirString(v string) error {
	if v == "" {
		return errEmpty
	}
	if !utf8.ValidString(v) {
		return errors.New("not UTF-8")
	}
	return nil
}

func ia5(v string) error {
	for i := 0; i < len(v); i++ {
		if v[i] >= 0x80 {
			return errors.New("not IA5")
		}
	}
	return nil
}

// validInteger checks RFC 4517 §3.3.16: ( HYPHEN LDIGIT *DIGIT ) / number.
func validInteger(v string) error {
	s := strings.TrimPrefix(v, "-")
	if s == "" || (len(s) > 1 && s[0] == '0') || (s == "0" && len(v) > 1) {
		return fmt.Errorf("invalid INTEGER %q", v)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return fmt.Errorf("invalid INTEGER %q", v)
		}
	}
	return nil
}

func validBoolean(v string) error {
	if v != "TRUE" && v != "FALSE" {
		return fmt.Errorf("invalid Boolean %q", v)
	}
	return nil
}

func validDN(v string) error { _, err := dn.Parse(v); return err }

func validOID(v string) error {
	if v == "" {
		return errEmpty
	}
	if v[0] >= '0' && v[0] <= '9' {
		for _, p := range strings.Split(v, ".") {
			if p == "" || strings.Trim(p, "0123456789") != "" {
				return fmt.Errorf("invalid OID %q", v)
			}
		}
		return nil
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '-')) {
			return fmt.Errorf("invalid descr %q", v)
		}
	}
	return nil
}

func validNumeric(v string) error {
	if v == "" || strings.Trim(v, "0123456789 ") != "" {
		return fmt.Errorf("invalid NumericString %q", v)
	}
	return nil
}

func validUUID(v string) error { _, err := normUUID(v); return err }
func validCSN(v string) error  { _, err := csn.Parse(v); return err }
func validGenTime(v string) error {
	_, err := ParseGeneralizedTime(v)
	return err
}

func builtinSyntaxes() []*Syntax {
	mk := func(oid, desc string, f func(string) error) *Syntax {
		return &Syntax{OID: oid, Desc: desc, validate: f, def: fmt.Sprintf("( %s DESC '%s' )", oid, desc)}
	}
	p := oidSyntaxPrefix
	return []*Syntax{
		mk(p+"3", "Attribute Type Description", dirString),
		mk(p+"5", "Binary", nil),
		mk(p+"6", "Bit String", nil),
		mk(SyntaxBoolean, "Boolean", validBoolean),
		mk(p+"8", "Certificate", nil),
		mk(p+"11", "Country String", dirString),
		mk(SyntaxDN, "DN", validDN),
		mk(p+"14", "Delivery Method", dirString),
		mk(SyntaxDirString, "Directory String", dirString),
		mk(p+"22", "Facsimile Telephone Number", dirString),
		mk(SyntaxGenTime, "Generalized Time", validGenTime),
		mk(SyntaxIA5, "IA5 String", ia5),
		mk(SyntaxInteger, "INTEGER", validInteger),
		mk(p+"28", "JPEG", nil),
		mk(p+"30", "Matching Rule Description", dirString),
		mk(p+"31", "Matching Rule Use Description", dirString),
		mk(p+"34", "Name And Optional UID", validDN),
		mk(SyntaxNumeric, "Numeric String", validNumeric),
		mk(p+"37", "Object Class Description", dirString),
		mk(SyntaxOID, "OID", validOID),
		mk(SyntaxOctet, "Octet String", nil),
		mk(p+"41", "Postal Address", dirString),
		mk(p+"44", "Printable String", dirString),
		mk(p+"50", "Telephone Number", dirString),
		mk(p+"52", "Telex Number", dirString),
		mk(p+"54", "LDAP Syntax Description", dirString),
		mk(p+"58", "Substring Assertion", dirString),
		mk(SyntaxUUID, "UUID", validUUID),
		mk(SyntaxCSN, "CSN", validCSN),
	}
}

// builtinRules returns the matching rules (RFC 4517 §4.2, RFC 4530 §2.3,
// OpenLDAP CSN rules). objectIdentifierMatch resolves names through s.
func builtinRules(s *Schema) []*MatchingRule {
	mk := func(oid, name, syntax string, kind RuleKind, norm func(string) (string, error), cmp func(a, b string) int) *MatchingRule {
		return &MatchingRule{OID: oid, Name: name, SyntaxOID: syntax, Kind: kind, norm: norm, cmp: cmp,
			def: fmt.Sprintf("( %s NAME '%s' SYNTAX %s )", oid, name, syntax)}
	}
	sub := oidSyntaxPrefix + "58"
	oidNorm := func(v string) (string, error) {
		if err := validOID(v); err != nil {
			return "", err
		}
		if c := s.Class(v); c != nil {
			return c.OID, nil
		}
		if a := s.Attr(v); a != nil {
			return a.OID, nil
		}
		return strings.ToLower(v), nil
	}
	dnNorm := func(v string) (string, error) { return s.NormalizeDN(v) }
	uniqueMemberNorm := func(v string) (string, error) {
		// RFC 4517 §3.3.21: DN optionally followed by '#' and a bit string.
		uid := ""
		if i := strings.LastIndex(v, "#'"); i >= 0 && strings.HasSuffix(v, "'B") {
			v, uid = v[:i], v[i:]
		}
		n, err := s.NormalizeDN(v)
		return n + uid, err
	}
	return []*MatchingRule{
		mk("2.5.13.0", "objectIdentifierMatch", SyntaxOID, EqualityRule, oidNorm, nil),
		mk("2.5.13.1", "distinguishedNameMatch", SyntaxDN, EqualityRule, dnNorm, nil),
		mk("2.5.13.2", "caseIgnoreMatch", SyntaxDirString, EqualityRule, caseIgnore, nil),
		mk("2.5.13.3", "caseIgnoreOrderingMatch", SyntaxDirString, OrderingRule, caseIgnore, nil),
		withSub(mk("2.5.13.4", "caseIgnoreSubstringsMatch", sub, SubstringsRule, caseIgnore, nil), substrings(true, false)),
		mk("2.5.13.5", "caseExactMatch", SyntaxDirString, EqualityRule, caseExact, nil),
		mk("2.5.13.6", "caseExactOrderingMatch", SyntaxDirString, OrderingRule, caseExact, nil),
		withSub(mk("2.5.13.7", "caseExactSubstringsMatch", sub, SubstringsRule, caseExact, nil), substrings(false, false)),
		mk("2.5.13.8", "numericStringMatch", SyntaxNumeric, EqualityRule, numericNorm, nil),
		mk("2.5.13.9", "numericStringOrderingMatch", SyntaxNumeric, OrderingRule, numericNorm, nil),
		mk("2.5.13.10", "numericStringSubstringsMatch", sub, SubstringsRule, numericNorm, nil),
		mk("2.5.13.13", "booleanMatch", SyntaxBoolean, EqualityRule, boolNorm, nil),
		mk("2.5.13.14", "integerMatch", SyntaxInteger, EqualityRule, intNorm, nil),
		mk("2.5.13.15", "integerOrderingMatch", SyntaxInteger, OrderingRule, intNorm, compareIntegers),
		mk("2.5.13.17", "octetStringMatch", SyntaxOctet, EqualityRule, identity, nil),
		mk("2.5.13.18", "octetStringOrderingMatch", SyntaxOctet, OrderingRule, identity, nil),
		mk("2.5.13.20", "telephoneNumberMatch", oidSyntaxPrefix+"50", EqualityRule, phoneNorm, nil),
		mk("2.5.13.21", "telephoneNumberSubstringsMatch", sub, SubstringsRule, phoneNorm, nil),
		mk("2.5.13.23", "uniqueMemberMatch", oidSyntaxPrefix+"34", EqualityRule, uniqueMemberNorm, nil),
		mk("2.5.13.27", "generalizedTimeMatch", SyntaxGenTime, EqualityRule, genTimeNorm, nil),
		mk("2.5.13.28", "generalizedTimeOrderingMatch", SyntaxGenTime, OrderingRule, genTimeNorm, nil),
		mk("2.5.13.30", "objectIdentifierFirstComponentMatch", SyntaxOID, EqualityRule, firstComponent(oidNorm), nil),
		mk("1.3.6.1.4.1.1466.109.114.1", "caseExactIA5Match", SyntaxIA5, EqualityRule, ia5Exact, nil),
		mk("1.3.6.1.4.1.1466.109.114.2", "caseIgnoreIA5Match", SyntaxIA5, EqualityRule, ia5Ignore, nil),
		withSub(mk("1.3.6.1.4.1.1466.109.114.3", "caseIgnoreIA5SubstringsMatch", sub, SubstringsRule, ia5Ignore, nil), substrings(true, true)),
		mk("1.3.6.1.1.16.2", "UUIDMatch", SyntaxUUID, EqualityRule, normUUID, nil),
		mk("1.3.6.1.1.16.3", "UUIDOrderingMatch", SyntaxUUID, OrderingRule, normUUID, nil),
		mk("1.3.6.1.4.1.4203.666.11.2.2", "CSNMatch", SyntaxCSN, EqualityRule, csnNorm, nil),
		mk("1.3.6.1.4.1.4203.666.11.2.3", "CSNOrderingMatch", SyntaxCSN, OrderingRule, csnNorm, nil),
	}
}

func identity(v string) (string, error) { return v, nil }

// withSub sets the piece preparation of a substrings rule.
func withSub(r *MatchingRule, sub func(string, bool, bool) (string, error)) *MatchingRule {
	r.sub = sub
	return r
}

// caseIgnore prepares a string as RFC 4518 §2 does for caseIgnoreMatch:
// mapping, case folding, NFKC, insignificant space handling.
func caseIgnore(v string) (string, error) {
	if !utf8.ValidString(v) {
		return "", errors.New("not UTF-8")
	}
	return stringprep.Value(v, true), nil
}

// caseExact prepares a string as RFC 4518 §2 does for caseExactMatch:
// the same without case folding.
func caseExact(v string) (string, error) {
	if !utf8.ValidString(v) {
		return "", errors.New("not UTF-8")
	}
	return stringprep.Value(v, false), nil
}

func ia5Exact(v string) (string, error) {
	if err := ia5(v); err != nil {
		return "", err
	}
	return stringprep.Value(v, false), nil
}

func ia5Ignore(v string) (string, error) {
	if err := ia5(v); err != nil {
		return "", err
	}
	return stringprep.Value(v, true), nil
}

// substrings returns the preparation of a substrings assertion's pieces for
// a rule whose values stringprep prepares (RFC 4518 §2.6.1).
func substrings(fold, ia5only bool) func(string, bool, bool) (string, error) {
	return func(piece string, initial, final bool) (string, error) {
		if ia5only {
			if err := ia5(piece); err != nil {
				return "", err
			}
		} else if !utf8.ValidString(piece) {
			return "", errors.New("not UTF-8")
		}
		return stringprep.Substring(piece, fold, initial, final), nil
	}
}

func numericNorm(v string) (string, error) {
	return strings.ReplaceAll(v, " ", ""), nil
}

// phoneNorm ignores spaces and hyphens (RFC 4517 §4.2.28).
func phoneNorm(v string) (string, error) {
	r := strings.NewReplacer(" ", "", "-", "")
	return strings.ToLower(r.Replace(v)), nil
}

func boolNorm(v string) (string, error) {
	if err := validBoolean(v); err != nil {
		return "", err
	}
	return v, nil
}

func intNorm(v string) (string, error) {
	v = strings.TrimSpace(v)
	if err := validInteger(v); err != nil {
		return "", err
	}
	return v, nil
}

func compareIntegers(a, b string) int {
	x, ok1 := new(big.Int).SetString(a, 10)
	y, ok2 := new(big.Int).SetString(b, 10)
	if !ok1 || !ok2 {
		return strings.Compare(a, b)
	}
	return x.Cmp(y)
}

// normUUID accepts the RFC 4122 string form (RFC 4530 §2.1) and returns it
// in lower case.
func normUUID(v string) (string, error) {
	if len(v) != 36 || v[8] != '-' || v[13] != '-' || v[18] != '-' || v[23] != '-' {
		return "", fmt.Errorf("invalid UUID %q", v)
	}
	for i := 0; i < 36; i++ {
		c := v[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return "", fmt.Errorf("invalid UUID %q", v)
		}
	}
	return strings.ToLower(v), nil
}

func csnNorm(v string) (string, error) {
	c, err := csn.Parse(v)
	if err != nil {
		return "", err
	}
	return c.String(), nil
}

// genTimeNorm maps a GeneralizedTime to fixed-width UTC so that byte order is
// time order.
func genTimeNorm(v string) (string, error) {
	t, err := ParseGeneralizedTime(v)
	if err != nil {
		return "", err
	}
	return t.UTC().Format("20060102150405.000000000Z"), nil
}

func firstComponent(norm func(string) (string, error)) func(string) (string, error) {
	return func(v string) (string, error) {
		s := strings.TrimSpace(v)
		if strings.HasPrefix(s, "(") {
			s = strings.TrimSpace(s[1:])
			if i := strings.IndexAny(s, " )"); i >= 0 {
				s = s[:i]
			}
		}
		return norm(s)
	}
}

// ParseGeneralizedTime parses RFC 4517 §3.3.13 GeneralizedTime:
// YYYYMMDDHH[MM[SS]][(.|,)fraction](Z|(+|-)HH[MM]).
func ParseGeneralizedTime(v string) (time.Time, error) {
	bad := func() (time.Time, error) { return time.Time{}, fmt.Errorf("invalid GeneralizedTime %q", v) }
	i := 0
	num := func(n int) (int, bool) {
		if i+n > len(v) {
			return 0, false
		}
		x := 0
		for _, c := range v[i : i+n] {
			if c < '0' || c > '9' {
				return 0, false
			}
			x = x*10 + int(c-'0')
		}
		i += n
		return x, true
	}
	year, ok1 := num(4)
	month, ok2 := num(2)
	day, ok3 := num(2)
	hour, ok4 := num(2)
	if !ok1 || !ok2 || !ok3 || !ok4 || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 {
		return bad()
	}
	min, sec := 0, 0
	var frac time.Duration
	unit := time.Hour
	if m, ok := num(2); ok {
		min, unit = m, time.Minute
		if s, ok := num(2); ok {
			sec, unit = s, time.Second
		}
	}
	if min > 59 || sec > 60 {
		return bad()
	}
	if i < len(v) && (v[i] == '.' || v[i] == ',') {
		i++
		start := i
		f := 0.0
		scale := 1.0
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			scale /= 10
			f += float64(v[i]-'0') * scale
			i++
		}
		if i == start {
			return bad()
		}
		frac = time.Duration(f * float64(unit))
	}
	if i >= len(v) {
		return bad()
	}
	loc := time.UTC
	switch v[i] {
	case 'Z':
		i++
	case '+', '-':
		sign := 1
		if v[i] == '-' {
			sign = -1
		}
		i++
		hh, ok := num(2)
		if !ok || hh > 23 {
			return bad()
		}
		mm := 0
		if i < len(v) {
			if mm, ok = num(2); !ok || mm > 59 {
				return bad()
			}
		}
		loc = time.FixedZone("", sign*(hh*3600+mm*60))
	default:
		return bad()
	}
	if i != len(v) {
		return bad()
	}
	t := time.Date(year, time.Month(month), day, hour, min, sec, 0, loc).Add(frac)
	if t.Day() != day && sec < 60 {
		return bad()
	}
	return t, nil
}
