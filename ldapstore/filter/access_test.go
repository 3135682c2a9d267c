package filter

import (
	"testing"

	"postern/ldapstore/schema"
)

// TestMatchAccess: an attribute the client may not read is Undefined in
// every filter form that names it and not tried by an extensible match
// without a type (slapd's semantics; ldapstore/server's
// TestFilterAccessLikeSlapd compares them with a running slapd).
func TestMatchAccess(t *testing.T) {
	carol := &entry{dn: "userPassword=dn-secret+cn=carol,ou=people,dc=postern,dc=local", attrs: map[string][]string{
		"objectClass":  {"person"},
		"cn":           {"carol"},
		"sn":           {"C"},
		"userPassword": {"{SSHA}abc"},
	}}
	pw := sch.Attr("userPassword")
	noPW := Access(func(e Entry, at *schema.AttributeType) bool { return at != pw })
	for _, tc := range []struct {
		f              string
		all, withoutPW Result
	}{
		{"(userPassword=*)", True, Undefined},
		{"(userPassword={SSHA}abc)", True, Undefined},
		{"(userPassword={SSHA}x)", False, Undefined},
		{"(userPassword~={SSHA}abc)", True, Undefined},
		{"(2.5.4.35={SSHA}abc)", True, Undefined},
		{"(userPassword:octetStringMatch:={SSHA}abc)", True, Undefined},
		{"(userPassword:2.5.13.18:={SSHA}b)", True, Undefined},
		{"(userPassword:=x)", False, Undefined},
		{"(:2.5.13.18:={SSHA}b)", True, False},
		{"(:octetStringMatch:={SSHA}abc)", True, False},
		{"(:dn:octetStringMatch:=dn-secret)", True, False},
		{"(userPassword:dn:octetStringMatch:=dn-secret)", True, Undefined},
		{"(!(userPassword=x))", True, Undefined},
		{"(&(cn=carol)(userPassword=*))", True, Undefined},
		{"(|(cn=carol)(userPassword=*))", True, True},
		{"(cn=carol)", True, True},
	} {
		f, err := Parse(tc.f)
		if err != nil {
			t.Fatalf("%s: %v", tc.f, err)
		}
		if got := f.Match(sch, carol); got != tc.all {
			t.Errorf("%s: Match = %v, want %v", tc.f, got, tc.all)
		}
		if got := f.MatchAccess(sch, carol, noPW); got != tc.withoutPW {
			t.Errorf("%s: MatchAccess without userPassword = %v, want %v", tc.f, got, tc.withoutPW)
		}
	}
}
