package server

import (
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// TestAddWithoutRDNValues (issue 9, item 11): RFC 4511 §4.7 lets a client
// leave the RDN's values out of an Add ("Clients MAY or MAY NOT include
// the RDN attribute(s) in this list"); the server adds them, as slapd does.
// Every case is compared with slapd: result code and the stored values of
// the RDN's attributes.
func TestAddWithoutRDNValues(t *testing.T) {
	p := newRefPair(t)
	people := "ou=people," + testSuffix
	for _, tc := range []struct {
		name  string
		dn    string
		attrs []string
		check []string // attributes whose values are compared
	}{
		{"uid left out", "uid=erin," + people,
			[]string{"objectClass", "inetOrgPerson", "cn", "Erin", "sn", "E"}, []string{"uid"}},
		{"uid present with another value", "uid=erin2," + people,
			[]string{"objectClass", "inetOrgPerson", "uid", "erin-other", "cn", "Erin", "sn", "E"}, []string{"uid"}},
		{"uid present with the value in another case", "uid=Erin3," + people,
			[]string{"objectClass", "inetOrgPerson", "uid", "erin3", "cn", "Erin", "sn", "E"}, []string{"uid"}},
		{"multi-valued RDN, both left out", "cn=Frank+uid=frank," + people,
			[]string{"objectClass", "inetOrgPerson", "sn", "F"}, []string{"cn", "uid"}},
		{"MUST attribute only in the RDN", "cn=Gina," + people,
			[]string{"objectClass", "person", "sn", "G"}, []string{"cn"}},
		{"escaped RDN value", `cn=Hal\, Jr.,` + people,
			[]string{"objectClass", "person", "sn", "H"}, []string{"cn"}},
		{"RDN attribute not allowed by the classes", "mail=ivy@example.com," + people,
			[]string{"objectClass", "organizationalUnit", "ou", "ivy"}, []string{"mail"}},
		{"single-valued RDN attribute with another value", "dc=sub," + testSuffix,
			[]string{"objectClass", "organization", "objectClass", "dcObject", "o", "Sub", "dc", "other"}, []string{"dc"}},
		{"single-valued MUST attribute left out", "dc=sub2," + testSuffix,
			[]string{"objectClass", "organization", "objectClass", "dcObject", "o", "Sub"}, []string{"dc"}},
		{"RDN value invalid for its syntax", `dc=s\C3\BCd,` + testSuffix,
			[]string{"objectClass", "organization", "objectClass", "dcObject", "o", "Sub"}, []string{"dc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]string{}
			p.each(func(name string, d directory) {
				l := d.root()
				err := l.Add(addReq(tc.dn, tc.attrs...))
				r := "code " + strconv.Itoa(int(code(err)))
				if err == nil {
					es := search(t, l, tc.dn, ldap.ScopeBaseObject, "(objectClass=*)", tc.check...)
					for _, a := range tc.check {
						v := append([]string(nil), es[0].GetAttributeValues(a)...)
						sort.Strings(v)
						r += " " + a + "=" + strings.Join(v, "|")
					}
				}
				got[name] = r
				t.Logf("%s: %s (%v)", name, r, err)
			})
			if got["postern"] != got["slapd"] {
				t.Errorf("postern %q, slapd %q", got["postern"], got["slapd"])
			}
		})
	}
}

// TestModifyDNRDNValues: the neighbour of Add's rule in ModifyDN (RFC 4511
// §4.9): the new RDN's values are added to the entry through the same checks
// as an Add's (syntax, single value, userPassword hashing), compared with
// slapd.
func TestModifyDNRDNValues(t *testing.T) {
	p := newRefPair(t)
	people := "ou=people," + testSuffix
	for i, tc := range []struct {
		name      string
		newRDN    string
		deleteOld bool
		check     []string
	}{
		{"new RDN value added, old kept", "uid=kim2", false, []string{"uid"}},
		{"new RDN value added, old deleted", "uid=kim2", true, []string{"uid"}},
		{"single-valued attribute with another value", "employeeNumber=11", false, []string{"employeeNumber"}},
		{"multi-valued RDN with a present value", "cn=Kim+uid=kim", true, []string{"cn", "uid"}},
		{"attribute not allowed", "dc=kim", false, []string{"dc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dn := "uid=kim,ou=people," + testSuffix
			got := map[string]string{}
			_ = i
			p.each(func(name string, d directory) {
				l := d.root()
				l.Del(ldap.NewDelRequest(tc.newRDN+","+people, nil))
				l.Del(ldap.NewDelRequest(dn, nil))
				if err := l.Add(addReq(dn, "objectClass", "inetOrgPerson", "uid", "kim", "cn", "Kim", "sn", "K", "employeeNumber", "10")); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				err := l.ModifyDN(ldap.NewModifyDNRequest(dn, tc.newRDN, tc.deleteOld, ""))
				r := "code " + strconv.Itoa(int(code(err)))
				if err == nil {
					es := search(t, l, tc.newRDN+","+people, ldap.ScopeBaseObject, "(objectClass=*)", tc.check...)
					for _, a := range tc.check {
						v := append([]string(nil), es[0].GetAttributeValues(a)...)
						sort.Strings(v)
						r += " " + a + "=" + strings.Join(v, "|")
					}
					l.Del(ldap.NewDelRequest(tc.newRDN+","+people, nil))
				}
				got[name] = r
				t.Logf("%s: %s (%v)", name, r, err)
			})
			if got["postern"] != got["slapd"] {
				t.Errorf("postern %q, slapd %q", got["postern"], got["slapd"])
			}
		})
	}
}
