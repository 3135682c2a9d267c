package server

import (
	"net"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

func TestServeConn(t *testing.T) {
	ts := newTestServer(t)
	tests := []struct {
		name, bound, want string
		write             bool
	}{
		{"root", testRootDN, "dn:" + testRootDN, true},
		{"user", testUserDN, "dn:" + testUserDN, false},
		{"anonymous", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			server, client := net.Pipe()
			done := make(chan error, 1)
			go func() { done <- ts.srv.ServeConn(server, tc.bound) }()
			l := ldap.NewConn(client, false)
			l.Start()
			l.SetTimeout(10 * time.Second)
			res, err := l.WhoAmI(nil)
			if err != nil || res.AuthzID != tc.want {
				t.Fatalf("WhoAmI = %+v, %v; want %q", res, err, tc.want)
			}
			m := ldap.NewModifyRequest(testUserDN, nil)
			m.Replace("description", []string{"via " + tc.name})
			err = l.Modify(m)
			if tc.write {
				wantCode(t, err, 0)
			} else {
				wantCode(t, err, ldap.LDAPResultInsufficientAccessRights)
			}
			l.Close()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("ServeConn: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("ServeConn did not return after the client closed")
			}
		})
	}
}
