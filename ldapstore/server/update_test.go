package server

import (
	"testing"

	"github.com/go-ldap/ldap/v3"
)

func TestAdd(t *testing.T) {
	ts := newTestServer(t)
	l := ts.root()
	dn := "cn=example.com,ou=domains," + testSuffix
	wantCode(t, l.Add(addReq(dn, "objectClass", "posternDomain", "cn", "example.com", "posternDeliverTo", "mx.example.com:25")), 0)
	e := search(t, l, dn, ldap.ScopeBaseObject, "(objectClass=*)", "*", "creatorsName")[0]
	if e.GetAttributeValue("posternDeliverTo") != "mx.example.com:25" {
		t.Fatalf("added entry: %v", attrNames(e))
	}
	if got := e.GetAttributeValue("creatorsName"); got != testRootDN {
		t.Fatalf("creatorsName %q, want the root DN", got)
	}
	wantCode(t, l.Add(addReq(dn, "objectClass", "posternDomain", "cn", "example.com")), ldap.LDAPResultEntryAlreadyExists)
	wantCode(t, l.Add(addReq("cn=x,ou=nowhere,"+testSuffix, "objectClass", "posternDomain", "cn", "x")), ldap.LDAPResultNoSuchObject)
	wantCode(t, l.Add(addReq("cn=y.example,ou=domains,"+testSuffix, "objectClass", "posternDomain", "cn", "y.example", "uid", "y")), ldap.LDAPResultObjectClassViolation)

	// Writes are the root DN's.
	user := ts.bind(testUserDN, testUserPW)
	wantCode(t, user.Add(addReq("cn=z.example,ou=domains,"+testSuffix, "objectClass", "posternDomain", "cn", "z.example")), ldap.LDAPResultInsufficientAccessRights)
	anon := ts.dial()
	wantCode(t, anon.Add(addReq("cn=z.example,ou=domains,"+testSuffix, "objectClass", "posternDomain", "cn", "z.example")), ldap.LDAPResultInsufficientAccessRights)
}

func TestModify(t *testing.T) {
	ts := newTestServer(t)
	l := ts.root()
	m := ldap.NewModifyRequest(testUserDN, nil)
	m.Add("description", []string{"one", "two"})
	m.Replace("mail", []string{"alice@new.example"})
	m.Delete("employeeNumber", []string{"10"})
	wantCode(t, l.Modify(m), 0)
	e := search(t, l, testUserDN, ldap.ScopeBaseObject, "(objectClass=*)", "description", "mail", "employeeNumber")[0]
	if len(e.GetAttributeValues("description")) != 2 || e.GetAttributeValue("mail") != "alice@new.example" || len(e.GetAttributeValues("employeeNumber")) != 0 {
		t.Fatalf("after modify: %v", e.Attributes)
	}

	// RFC 4525 increment.
	addMember(t, l, 7)
	inc := ldap.NewModifyRequest(memberDN(7), nil)
	inc.Increment("posternClusterNo", "5")
	wantCode(t, l.Modify(inc), 0)
	if got := search(t, l, memberDN(7), ldap.ScopeBaseObject, "(objectClass=*)", "posternClusterNo")[0].GetAttributeValue("posternClusterNo"); got != "12" {
		t.Fatalf("posternClusterNo after increment = %q, want 12", got)
	}

	bad := ldap.NewModifyRequest(testUserDN, nil)
	bad.Delete("description", []string{"three"})
	wantCode(t, l.Modify(bad), ldap.LDAPResultNoSuchAttribute)
	dup := ldap.NewModifyRequest(testUserDN, nil)
	dup.Add("description", []string{"one"})
	wantCode(t, l.Modify(dup), ldap.LDAPResultAttributeOrValueExists)
	missing := ldap.NewModifyRequest("uid=nobody,ou=people,"+testSuffix, nil)
	missing.Replace("mail", []string{"x@example.com"})
	wantCode(t, l.Modify(missing), ldap.LDAPResultNoSuchObject)

	user := ts.bind(testUserDN, testUserPW)
	self := ldap.NewModifyRequest(testUserDN, nil)
	self.Replace("mail", []string{"alice@evil.example"})
	wantCode(t, user.Modify(self), ldap.LDAPResultInsufficientAccessRights)
}

func TestDelete(t *testing.T) {
	ts := newTestServer(t)
	l := ts.root()
	wantCode(t, l.Del(ldap.NewDelRequest("ou=people,"+testSuffix, nil)), ldap.LDAPResultNotAllowedOnNonLeaf)
	user := ts.bind(testUserDN, testUserPW)
	wantCode(t, user.Del(ldap.NewDelRequest(testOtherDN, nil)), ldap.LDAPResultInsufficientAccessRights)
	wantCode(t, l.Del(ldap.NewDelRequest(testOtherDN, nil)), 0)
	wantCode(t, l.Del(ldap.NewDelRequest(testOtherDN, nil)), ldap.LDAPResultNoSuchObject)
	if es := search(t, l, "ou=people,"+testSuffix, ldap.ScopeSingleLevel, "(objectClass=*)"); len(es) != 1 {
		t.Fatalf("after delete: %v", dns(es))
	}
}

func TestModifyDN(t *testing.T) {
	ts := newTestServer(t)
	l := ts.root()
	// Rename.
	wantCode(t, l.ModifyDN(ldap.NewModifyDNRequest(testOtherDN, "uid=robert", true, "")), 0)
	renamed := "uid=robert,ou=people," + testSuffix
	e := search(t, l, renamed, ldap.ScopeBaseObject, "(objectClass=*)", "uid")[0]
	if got := e.GetAttributeValues("uid"); len(got) != 1 || got[0] != "robert" {
		t.Fatalf("uid after rename with deleteoldrdn: %v", got)
	}
	// Move.
	wantCode(t, l.ModifyDN(ldap.NewModifyDNRequest(renamed, "uid=robert", false, "ou=domains,"+testSuffix)), 0)
	if es := search(t, l, "ou=domains,"+testSuffix, ldap.ScopeSingleLevel, "(uid=robert)"); len(es) != 1 {
		t.Fatalf("moved entry not found: %v", dns(es))
	}
	wantCode(t, l.ModifyDN(ldap.NewModifyDNRequest(testUserDN, "uid=robert", false, "ou=domains,"+testSuffix)), ldap.LDAPResultEntryAlreadyExists)
	wantCode(t, l.ModifyDN(ldap.NewModifyDNRequest("uid=nobody,ou=people,"+testSuffix, "uid=x", true, "")), ldap.LDAPResultNoSuchObject)
	user := ts.bind(testUserDN, testUserPW)
	wantCode(t, user.ModifyDN(ldap.NewModifyDNRequest(testUserDN, "uid=alicia", true, "")), ldap.LDAPResultInsufficientAccessRights)
}

func TestCompare(t *testing.T) {
	ts := newTestServer(t)
	l := ts.bind(testUserDN, testUserPW)
	ok, err := l.Compare(testOtherDN, "mail", "BOB@example.com")
	if err != nil || !ok {
		t.Fatalf("compare true: %v %v", ok, err)
	}
	ok, err = l.Compare(testOtherDN, "mail", "alice@example.com")
	if err != nil || ok {
		t.Fatalf("compare false: %v %v", ok, err)
	}
	_, err = l.Compare("uid=nobody,ou=people,"+testSuffix, "mail", "x")
	wantCode(t, err, ldap.LDAPResultNoSuchObject)
}
