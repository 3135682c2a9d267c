package filter

import (
	"errors"
	"strings"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"postern/ldapstore/schema"
)

var sch = schema.Default()

// entry is a minimal filter.Entry for tests.
type entry struct {
	dn    string
	attrs map[string][]string
}

func (e *entry) Get(n string) []string {
	for k, v := range e.attrs {
		if strings.EqualFold(k, n) {
			return v
		}
	}
	return nil
}
func (e *entry) EntryDN() string { return e.dn }
func (e *entry) EachAttr(fn func(string, []string)) {
	for k, v := range e.attrs {
		fn(k, v)
	}
}

var bob = &entry{dn: "uid=bob,ou=People,dc=postern,dc=local", attrs: map[string][]string{
	"objectClass":      {"top", "person", "organizationalPerson", "inetOrgPerson"},
	"cn":               {"Bob  Smith", "Robert Smith"},
	"sn":               {"Smith"},
	"uid":              {"bob"},
	"mail":             {"Bob@Example.com"},
	"labeledURI":       {"http://Example.com/Bob"},
	"posternClusterNo": {"12"},
	"createTimestamp":  {"20240102030405Z"},
}}

var cases = []struct {
	f    string
	want Result
}{
	{"(uid=bob)", True},
	{"(uid=BOB)", True},
	{"(UID=alice)", False},
	{"(commonName=bob smith)", True},
	{"(cn=*)", True},
	{"(description=*)", False},
	{"(nosuchattr=*)", Undefined},
	{"(nosuchattr=x)", Undefined},
	{"(!(nosuchattr=x))", Undefined},
	{"(|(nosuchattr=x)(uid=bob))", True},
	{"(&(nosuchattr=x)(uid=bob))", Undefined},
	{"(&(nosuchattr=x)(uid=alice))", False},
	{"(&)", True},
	{"(|)", False},
	{"(objectClass=inetOrgPerson)", True},
	{"(objectClass=2.16.840.1.113730.3.2.2)", True},
	{"(objectClass=groupOfNames)", False},
	{"(cn=rob*)", True},
	{"(cn=*smith)", True},
	{"(cn=b*b*th)", True},
	{"(cn=*ob*sm*)", True},
	{"(cn=x*)", False},
	{"(name=bob smith)", True}, // cn is a subtype of name
	{"(mail=bob@example.COM)", True},
	{"(labeledURI=http://example.com/bob)", False}, // caseExactMatch
	{"(labeledURI=http://Example.com/Bob)", True},
	{"(posternClusterNo>=9)", True}, // integer, not string, ordering
	{"(posternClusterNo<=9)", False},
	{"(posternClusterNo=012)", Undefined},
	{"(createTimestamp>=20240101000000Z)", True},
	{"(createTimestamp<=2024010100Z)", False},
	{"(uid<=z)", Undefined}, // uid has no ordering rule
	{"(cn~=BOB SMITH)", True},
	{"(uid:caseExactMatch:=bob)", True},
	{"(uid:caseExactMatch:=Bob)", False},
	{"(uid:2.5.13.2:=BOB)", True},
	{"(uid:=BOB)", True},
	{"(:caseIgnoreMatch:=smith)", True},
	{"(ou:dn:=people)", True},
	{"(ou:=people)", False},
	{"(:dn:caseIgnoreMatch:=PEOPLE)", True},
	{"(uid:nosuchRule:=bob)", Undefined},
	{"(!(uid=bob))", False},
	{"(&(objectClass=person)(|(uid=alice)(mail=bob@example.com)))", True},
}

func TestMatch(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.f, func(t *testing.T) {
			f, err := Parse(tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Match(sch, bob); got != tc.want {
				t.Fatalf("Match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, s := range []string{"(", "()", "(uid=bob", "(uid=bob))", "(=bob)", "(uid=a(b)", `(uid=\zz)`, `(uid=\4)`,
		"(&(uid=a)x)", "(!(a=b)(c=d))", "(u id=x)", "(uid:=)x", "(:=x)", "(1a=x)", "(uid:dn:a:b:=x)"} {
		if f, err := Parse(s); err == nil || !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) = %v, %v; want syntax error", s, f, err)
		}
	}
	if _, err := Parse(strings.Repeat("(!", 200) + "(a=b)" + strings.Repeat(")", 200)); err == nil {
		t.Error("deep nesting accepted")
	}
}

// TestStringAndWire checks String against the input, and Decode against
// go-ldap's CompileFilter (what a real client puts on the wire).
func TestStringAndWire(t *testing.T) {
	for _, s := range []string{
		"(uid=bob)", "(&(objectClass=person)(!(cn=a\\2ab)))", "(|(cn=a*)(cn=*b*c*)(cn=*d))",
		"(cn>=a)", "(cn<=b)", "(cn~=c)", "(mail=*)", "(cn:dn:caseExactMatch:=x)", "(:2.5.13.5:=y)",
		"(cn=\\28x\\29\\5c\\00)", "(cn=caf\xc3\xa9)",
	} {
		t.Run(s, func(t *testing.T) {
			f, err := Parse(s)
			if err != nil {
				t.Fatal(err)
			}
			if f.String() != s {
				t.Fatalf("String() = %q", f.String())
			}
			pkt, err := ldap.CompileFilter(s)
			if err != nil {
				t.Fatal(err)
			}
			wire, err := ber.DecodePacketErr(pkt.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			d, err := Decode(wire)
			if err != nil {
				t.Fatal(err)
			}
			if d.String() != s {
				t.Fatalf("Decode = %q", d.String())
			}
			own, err := ber.DecodePacketErr(f.Encode().Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if back, err := Decode(own); err != nil || back.String() != s {
				t.Fatalf("Encode/Decode = %v, %v", back, err)
			}
			if !bytesEqual(f.Encode().Bytes(), pkt.Bytes()) {
				t.Fatalf("Encode differs from go-ldap")
			}
		})
	}
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

func TestDecodeErrors(t *testing.T) {
	bad := []*ber.Packet{
		ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "x", ""),
		ber.Encode(ber.ClassContext, ber.TypeConstructed, 2, nil, ""),  // empty not
		ber.Encode(ber.ClassContext, ber.TypeConstructed, 3, nil, ""),  // AVA without parts
		ber.Encode(ber.ClassContext, ber.TypeConstructed, 12, nil, ""), // unknown choice
		ber.NewString(ber.ClassContext, ber.TypePrimitive, 7, "", ""),  // empty present
		ber.Encode(ber.ClassContext, ber.TypeConstructed, 9, nil, ""),  // extensible without value
	}
	for i, p := range bad {
		if _, err := Decode(p); err == nil || !errors.Is(err, ErrSyntax) {
			t.Errorf("case %d: err = %v", i, err)
		}
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, c := range cases {
		f.Add(c.f)
	}
	f.Add("(cn=a\\2a*b)")
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := Parse(s)
		if err != nil {
			return
		}
		out := flt.String()
		again, err := Parse(out)
		if err != nil || again.String() != out {
			t.Fatalf("String of %q is %q, which parses to %v, %v", s, out, again, err)
		}
		flt.Match(sch, bob)
	})
}

func FuzzDecodeFilter(f *testing.F) {
	for _, c := range cases {
		if p, err := ldap.CompileFilter(c.f); err == nil {
			f.Add(p.Bytes())
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ber.DecodePacketErr(b)
		if err != nil {
			return
		}
		flt, err := Decode(p)
		if err != nil {
			return
		}
		flt.Match(sch, bob)
		_ = flt.String()
		if _, err := Decode(flt.Encode()); err != nil {
			t.Fatalf("re-encoded filter does not decode: %v", err)
		}
	})
}
