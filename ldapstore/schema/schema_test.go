package schema

import (
	"strings"
	"testing"
)

func TestDefaultLookups(t *testing.T) {
	s := Default()
	for _, tc := range []struct{ name, want string }{
		{"cn", "cn"}, {"commonName", "cn"}, {"2.5.4.3", "cn"}, {"CN;lang-en", "cn"},
		{"surname", "sn"}, {"rfc822Mailbox", "mail"}, {"userid", "uid"},
		{"entryuuid", "entryUUID"}, {"posternClusterNo", "posternClusterNo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := s.Attr(tc.name)
			if a == nil || a.Name() != tc.want {
				t.Fatalf("Attr(%q) = %v, want %s", tc.name, a, tc.want)
			}
		})
	}
	if s.Attr("nonesuch") != nil {
		t.Fatal("unknown attribute found")
	}
	cn := s.Attr("cn")
	if cn.Equality == nil || cn.Equality.Name != "caseIgnoreMatch" || cn.Substr == nil {
		t.Fatalf("cn rules not inherited from name: %+v", cn)
	}
	if !s.Attr("entryCSN").NoUserMod || !s.Attr("entryCSN").SingleValue {
		t.Fatal("entryCSN flags")
	}
	inet := s.Class("inetOrgPerson")
	if inet == nil || !inet.IsSubclassOf(s.Class("person")) || inet.Kind != Structural {
		t.Fatal("inetOrgPerson chain")
	}
	if c := s.Class(P + ".2.3"); c == nil || c.Name() != "posternMember" {
		t.Fatal("posternMember by OID")
	}
	found := false
	for _, st := range s.Attr("name").Subtypes() {
		found = found || st.Name() == "cn"
	}
	if !found {
		t.Fatal("cn is not a subtype of name")
	}
}

func TestNormalize(t *testing.T) {
	s := Default()
	for _, tc := range []struct {
		attr, in, want string
		bad            bool
	}{
		{attr: "cn", in: "  John   SMITH ", want: "john smith"},
		{attr: "labeledURI", in: "http://X", want: "http://X"},
		{attr: "mail", in: "Bob@Example.COM", want: "bob@example.com"},
		{attr: "mail", in: "bøb@example.com", bad: true},
		{attr: "posternClusterNo", in: "42", want: "42"},
		{attr: "posternClusterNo", in: "042", bad: true},
		{attr: "posternClusterNo", in: "x", bad: true},
		{attr: "posternProtect", in: "TRUE", want: "TRUE"},
		{attr: "posternProtect", in: "yes", bad: true},
		{attr: "entryUUID", in: "6BA7B810-9DAD-11D1-80B4-00C04FD430C8", want: "6ba7b810-9dad-11d1-80b4-00c04fd430c8"},
		{attr: "entryCSN", in: "20261122003245.123456Z#000000#001#000000", want: "20261122003245.123456Z#000000#001#000000"},
		{attr: "createTimestamp", in: "20240102030405Z", want: "20240102030405.000000000Z"},
		{attr: "createTimestamp", in: "202401020304+0100", want: "20240102020400.000000000Z"},
		{attr: "createTimestamp", in: "20240230000000Z", bad: true},
		{attr: "member", in: "CN=Bob , OU=People,DC=x", want: "cn=bob,ou=people,dc=x"},
		{attr: "objectClass", in: "InetOrgPerson", want: "2.16.840.1.113730.3.2.2"},
		{attr: "telephoneNumber", in: "+1 555-1234", want: "+15551234"},
	} {
		t.Run(tc.attr+"/"+tc.in, func(t *testing.T) {
			a := s.Attr(tc.attr)
			got, err := a.Equality.Normalize(tc.in)
			if err == nil && !tc.bad {
				err = a.Syntax.Validate(tc.in)
			}
			if tc.bad {
				if err == nil && a.Syntax.Validate(tc.in) == nil {
					t.Fatalf("accepted %q as %q", tc.in, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestNormalizeDN(t *testing.T) {
	s := Default()
	got, err := s.NormalizeDN("commonName=A B+UID=X , ou = People,DC=Postern,dc=local")
	if err != nil || got != "cn=a b+uid=x,ou=people,dc=postern,dc=local" {
		t.Fatalf("got %q %v", got, err)
	}
	if _, err := s.NormalizeDN("foo=bar,dc=x"); err == nil {
		t.Fatal("unknown type accepted")
	}
}

func TestIntegerOrdering(t *testing.T) {
	r := Default().Attr("posternClusterNo").Ordering
	if r.CompareNormalized("9", "10") >= 0 || r.CompareNormalized("-5", "3") >= 0 {
		t.Fatal("integer ordering is not numeric")
	}
}

func TestSubschemaAttributes(t *testing.T) {
	m := Default().SubschemaAttributes()
	for _, k := range []string{"attributeTypes", "objectClasses", "ldapSyntaxes", "matchingRules"} {
		if len(m[k]) == 0 {
			t.Fatalf("%s empty", k)
		}
		for _, v := range m[k] {
			if !strings.HasPrefix(v, "( ") || !strings.HasSuffix(v, " )") {
				t.Fatalf("%s value %q not in RFC 4512 form", k, v)
			}
			if _, err := parseDescription(v); err != nil {
				t.Fatalf("%s value %q does not parse: %v", k, v, err)
			}
		}
	}
	found := false
	for _, v := range m["objectClasses"] {
		found = found || strings.Contains(v, "NAME 'posternDomain'")
	}
	if !found {
		t.Fatal("posternDomain missing from objectClasses")
	}
}
