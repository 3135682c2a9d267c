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

// TestRootOnlyTypes: Config.RootOnly types are the root DN's alone: a user
// sees them neither in another entry nor in its own, never matches them
// in any filter form (Undefined), cannot compare them, with or without
// attribute options; a restricted session neither; the root DN does.
func TestRootOnlyTypes(t *testing.T) {
	ts := newTestServer(t, testOption(func(c *Config) { c.RootOnly = []string{"employeeNumber"} }))
	alice := ts.bind(testUserDN, testUserPW)
	for _, base := range []string{testUserDN, testOtherDN} {
		es := search(t, alice, base, ldap.ScopeBaseObject, "(objectClass=*)", "*", "employeeNumber", "employeeNumber;lang-de", "2.16.840.1.113730.3.1.3")
		if len(es) != 1 || slices.Contains(attrNames(es[0]), "employeeNumber") {
			t.Errorf("alice reads %s: %v", base, es)
		}
	}
	for _, f := range []string{"(employeeNumber=10)", "(employeeNumber=*)", "(employeeNumber>=0)", "(employeeNumber<=99)", "(employeeNumber~=10)",
		"(employeeNumber=1*)", "(employeeNumber;lang-de=*)", "(2.16.840.1.113730.3.1.3=10)", "(:caseIgnoreMatch:=10)", "(employeeNumber:caseExactMatch:=10)"} {
		if es := search(t, alice, "ou=people,"+testSuffix, ldap.ScopeWholeSubtree, f, "1.1"); len(es) != 0 {
			t.Errorf("alice's filter %s matched %v", f, dns(es))
		}
	}
	for _, desc := range []string{"employeeNumber", "employeeNumber;lang-de", "EMPLOYEENUMBER"} {
		if ok, err := alice.Compare(testUserDN, desc, "10"); ok || err == nil {
			t.Errorf("alice compares %s: %v %v", desc, ok, err)
		}
	}
	server, client := net.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- ts.srv.ServeConnRestricted(server, "cn=PST-FRONTEND,ou=members,ou=cluster,"+testSuffix)
	}()
	l := ldap.NewConn(client, false)
	l.Start()
	if es := search(t, l, testUserDN, ldap.ScopeBaseObject, "(objectClass=*)", "employeeNumber"); len(es) != 1 || len(es[0].Attributes) != 0 {
		t.Errorf("a restricted session reads %v", es)
	}
	l.Close()
	<-done
	root := ts.root()
	if es := search(t, root, testUserDN, ldap.ScopeBaseObject, "(employeeNumber=10)", "employeeNumber"); len(es) != 1 || es[0].GetAttributeValue("employeeNumber") != "10" {
		t.Errorf("the root DN reads %v", es)
	}
	if ok, err := root.Compare(testUserDN, "employeeNumber", "10"); !ok || err != nil {
		t.Errorf("the root DN compares: %v %v", ok, err)
	}
}
