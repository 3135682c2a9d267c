package server

import (
	"net"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// TestServeConn serves pre-authenticated connections (the cluster agent's
// SSH channels): the root identity writes, a user identity reads, an empty
// one is anonymous, and Close ends ServeConn.
func TestServeConn(t *testing.T) {
	ts := newTestServer(t)
	serve := func(bound string) (*ldap.Conn, chan error) {
		cli, srvSide := net.Pipe()
		done := make(chan error, 1)
		go func() { done <- ts.srv.ServeConn(srvSide, bound) }()
		l := ldap.NewConn(cli, false)
		l.Start()
		t.Cleanup(func() { l.Close() })
		return l, done
	}
	root, rootDone := serve(testRootDN)
	if err := root.Add(&ldap.AddRequest{DN: "ou=tunnel," + testSuffix, Attributes: []ldap.Attribute{
		{Type: "objectClass", Vals: []string{"organizationalUnit"}}, {Type: "ou", Vals: []string{"tunnel"}}}}); err != nil {
		t.Fatalf("root add over ServeConn: %v", err)
	}
	user, _ := serve(testUserDN)
	if got := search(t, user, "ou=tunnel,"+testSuffix, ldap.ScopeBaseObject, "(objectClass=*)"); len(got) != 1 {
		t.Fatalf("user search found %d entries", len(got))
	}
	err := user.Del(&ldap.DelRequest{DN: "ou=tunnel," + testSuffix})
	wantCode(t, err, ldap.LDAPResultInsufficientAccessRights)
	anon, _ := serve("")
	_, err = anon.Search(ldap.NewSearchRequest(testSuffix, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", nil, nil))
	wantCode(t, err, ldap.LDAPResultInsufficientAccessRights)
	bad, _ := net.Pipe()
	if err := ts.srv.ServeConn(bad, "not a dn"); err == nil {
		t.Fatal("ServeConn accepted an invalid DN")
	}
	root.Close()
	if err := <-rootDone; err != nil {
		t.Fatalf("ServeConn returned %v", err)
	}
}
