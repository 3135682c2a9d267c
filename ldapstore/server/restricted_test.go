package server

import (
	"net"
	"slices"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// TestRestrictedSessionStaysRestricted: a session served by
// ServeConnRestricted (a cluster frontend's tunnel) never shows
// userPassword nor the Config.RestrictedHide types, never matches a
// filter on them, never compares them and never writes, whoever is bound
// on it: the frontend itself, a user who bound through it (even to its own
// entry), or anonymous after a bind; the root DN cannot bind on it.
func TestRestrictedSessionStaysRestricted(t *testing.T) {
	ts := newTestServer(t, testOption(func(c *Config) { c.RestrictedHide = []string{"employeeNumber"} }))
	frontendDN := "cn=PST-FRONTEND,ou=members,ou=cluster," + testSuffix
	for _, who := range []string{"frontend", "alice", "anonymous after a bind"} {
		t.Run(who, func(t *testing.T) {
			server, client := net.Pipe()
			done := make(chan error, 1)
			go func() { done <- ts.srv.ServeConnRestricted(server, frontendDN) }()
			l := ldap.NewConn(client, false)
			l.Start()
			l.SetTimeout(10 * time.Second)
			defer func() {
				l.Close()
				<-done
			}()
			switch who {
			case "alice":
				if err := l.Bind(testUserDN, testUserPW); err != nil {
					t.Fatalf("alice's bind through the session: %v", err)
				}
			case "anonymous after a bind":
				if err := l.Bind(testUserDN, testUserPW); err != nil {
					t.Fatal(err)
				}
				if err := l.UnauthenticatedBind(""); err != nil {
					t.Fatal(err)
				}
			}
			if who != "anonymous after a bind" {
				es := search(t, l, testUserDN, ldap.ScopeBaseObject, "(objectClass=*)", "*", "+", "userPassword", "employeeNumber")
				if len(es) != 1 || es[0].GetAttributeValue("mail") != "alice@example.com" {
					t.Fatalf("alice's entry: %v", es)
				}
				if names := attrNames(es[0]); slices.Contains(names, "userPassword") || slices.Contains(names, "employeeNumber") {
					t.Fatalf("hidden types shown: %v", names)
				}
				for _, f := range []string{"(userPassword=" + testUserPW + ")", "(userPassword=*)", "(employeeNumber=10)", "(employeeNumber>=0)", "(|(uid=nobody)(userPassword=*))"} {
					if es := search(t, l, "ou=people,"+testSuffix, ldap.ScopeWholeSubtree, f, "1.1"); len(es) != 0 {
						t.Errorf("filter %s matched %v", f, dns(es))
					}
				}
			}
			for _, attr := range []string{"userPassword", "employeeNumber"} {
				val := testUserPW
				if attr == "employeeNumber" {
					val = "10"
				}
				if ok, err := l.Compare(testUserDN, attr, val); ok || err == nil {
					t.Errorf("compare %s: %v, %v", attr, ok, err)
				}
			}
			m := ldap.NewModifyRequest(testUserDN, nil)
			m.Replace("description", []string{"through a frontend"})
			wantCode(t, l.Modify(m), ldap.LDAPResultUnwillingToPerform)
			if _, err := l.PasswordModify(ldap.NewPasswordModifyRequest(testUserDN, testUserPW, "changed through a frontend")); err == nil {
				t.Error("a password changed through the session")
			}
			wantCode(t, l.Bind(testRootDN, testRootPW), ldap.LDAPResultUnwillingToPerform)
		})
	}
	ts.bind(testUserDN, testUserPW) // alice's password is still hers
}
