package server

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"strconv"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// ssha is slappasswd's {SSHA}: base64(SHA-1(password || salt) || salt).
func ssha(password, salt string) string {
	h := sha1.Sum([]byte(password + salt))
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(h[:], salt...))
}

// TestFilterAccessLikeSlapd (issue 9, item 8): a user may not read other
// users' userPassword, so every filter form that touches it evaluates as
// Undefined for them: presence, equality, approx, ordering, substrings,
// extensible match with and without a type or rule, and the DN's values
// (dnAttributes). Each filter F is sent as (&(uid=carol)F) and as
// (&(uid=carol)(!F)) — Undefined matches neither, False would match the
// second — by alice (a user) and by the root DN, to Postern and slapd
// (with ACLs granting the same), and the entries found must be the same.
func TestFilterAccessLikeSlapd(t *testing.T) {
	p := newRefPair(t)
	pw := ssha("carol pw", "0123")
	p.addBoth(t, entry("uid=carol,ou=people,"+testSuffix, "objectClass", "inetOrgPerson", "uid", "carol", "cn", "Carol", "sn", "C", "userPassword", pw))
	// an entry named by a userPassword value, for dnAttributes
	p.addBoth(t, entry("cn=dave+userPassword=dn-secret,ou=people,"+testSuffix, "objectClass", "person", "sn", "D"))
	hi := pw + "~" // above pw in octet order
	filters := []string{
		"(userPassword=*)",
		"(userPassword=" + pw + ")",
		"(userPassword=" + pw + "x)",
		"(userPassword~=" + pw + ")",
		"(userPassword>=" + pw + ")",
		"(userPassword<=" + hi + ")",
		"(userPassword=*SSHA*)",
		"(userPassword=\\7bSSHA*)",
		"(:2.5.13.18:=" + hi + ")",        // octetStringOrderingMatch without a type: the less-than oracle
		"(:octetStringMatch:=" + pw + ")", // equality rule without a type
		"(:2.5.13.17:=" + pw + ")",
		"(userPassword:2.5.13.17:=" + pw + ")",
		"(userPassword:=" + pw + ")",
		"(2.5.4.35=" + pw + ")",
	}
	dnFilters := []string{
		"(:dn:2.5.13.17:=dn-secret)",
		"(userPassword:dn:2.5.13.17:=dn-secret)",
		"(:dn:caseIgnoreMatch:=dave)", // a readable DN value: matches for everyone
	}
	run := func(who string, bind func(d directory) *ldap.Conn) {
		for _, tc := range []struct {
			base    string
			filters []string
		}{{"uid=carol", filters}, {"sn=D", dnFilters}} {
			for _, f := range tc.filters {
				for _, q := range []string{"(&(" + tc.base + ")" + f + ")", "(&(" + tc.base + ")(!" + f + "))"} {
					got := map[string]string{}
					p.each(func(name string, d directory) {
						res, err := bind(d).Search(ldap.NewSearchRequest(testSuffix, ldap.ScopeWholeSubtree, 0, 0, 0, false, q, []string{"1.1"}, nil))
						r := "code " + strconv.Itoa(int(code(err)))
						if err == nil {
							r += fmt.Sprintf(" %d entries %s", len(res.Entries), sortedDNs(res.Entries))
						}
						got[name] = r
					})
					t.Logf("%s %s: %s", who, q, got["postern"])
					if got["postern"] != got["slapd"] {
						t.Errorf("%s %s: postern %q, slapd %q", who, q, got["postern"], got["slapd"])
					}
				}
			}
		}
	}
	run("alice", func(d directory) *ldap.Conn { return d.bind(testUserDN, testUserPW) })
	run("root", func(d directory) *ldap.Conn { return d.root() })
	// carol filters on her own userPassword like the root DN does
	run("carol", func(d directory) *ldap.Conn { return d.bind("uid=carol,ou=people,"+testSuffix, "carol pw") })

	// Compare follows the same access: another user's value is
	// insufficientAccessRights, one's own is compared.
	for _, tc := range []struct {
		who, dn, pw, target, attr string
		want                      uint16
	}{
		{"alice", testUserDN, testUserPW, "uid=carol,ou=people," + testSuffix, "userPassword", ldap.LDAPResultInsufficientAccessRights},
		{"alice", testUserDN, testUserPW, "uid=carol,ou=people," + testSuffix, "2.5.4.35", ldap.LDAPResultInsufficientAccessRights},
		{"carol", "uid=carol,ou=people," + testSuffix, "carol pw", "uid=carol,ou=people," + testSuffix, "userPassword", ldap.LDAPResultCompareTrue},
	} {
		p.each(func(name string, d directory) {
			_, err := d.bind(tc.dn, tc.pw).Compare(tc.target, tc.attr, pw)
			got := code(err)
			if err == nil {
				got = ldap.LDAPResultCompareTrue
			}
			if got != tc.want {
				t.Errorf("%s: %s compares %s %s: %v, want %d", name, tc.who, tc.target, tc.attr, err, tc.want)
			}
		})
	}
}
