package server

import (
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

func TestBind(t *testing.T) {
	ts := newTestServer(t)
	tests := []struct {
		name, dn, pw string
		code         uint16
	}{
		{"root", testRootDN, testRootPW, 0},
		{"root other spelling", "CN=Admin, DC=Postern, DC=Local", testRootPW, 0},
		{"root wrong password", testRootDN, "nope", ldap.LDAPResultInvalidCredentials},
		{"user", testUserDN, testUserPW, 0},
		{"user wrong password", testUserDN, "nope", ldap.LDAPResultInvalidCredentials},
		{"user other's password", testUserDN, testOtherPW, ldap.LDAPResultInvalidCredentials},
		{"no such user", "uid=nobody,ou=people," + testSuffix, "x", ldap.LDAPResultInvalidCredentials},
		{"entry without password", "ou=people," + testSuffix, "x", ldap.LDAPResultInvalidCredentials},
		{"anonymous", "", "", 0},
		{"password without name", "", "x", ldap.LDAPResultInvalidCredentials},
		{"bad DN", "not a dn", "x", ldap.LDAPResultInvalidDNSyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := ts.dial()
			_, err := l.SimpleBind(&ldap.SimpleBindRequest{Username: tc.dn, Password: tc.pw, AllowEmptyPassword: true})
			wantCode(t, err, tc.code)
		})
	}
}

func TestUnauthenticatedBindRefused(t *testing.T) {
	ts := newTestServer(t)
	l := ts.dial()
	// RFC 4513 §5.1.2: a DN with an empty password is refused.
	wantCode(t, l.UnauthenticatedBind(testUserDN), ldap.LDAPResultUnwillingToPerform)
}

func TestSASLBindNotSupported(t *testing.T) {
	ts := newTestServer(t)
	l := ts.dial()
	wantCode(t, l.ExternalBind(), ldap.LDAPResultAuthMethodNotSupported)
}

func TestBindVersion2Refused(t *testing.T) {
	ts := newTestServer(t)
	c := ts.raw()
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, appBindRequest, nil, "bind")
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 2, "version"))
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "name"))
	op.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, "", "simple"))
	c.Write(msg(1, op))
	id, resp := readMessage(t, c)
	if id != 1 || resp.Tag != appBindResponse || resultCode(t, resp) != int64(ldap.LDAPResultProtocolError) {
		t.Fatalf("got id %d tag %d code %d, want bind protocolError", id, resp.Tag, resultCode(t, resp))
	}
}

func TestFailedBindLeavesAnonymous(t *testing.T) {
	ts := newTestServer(t)
	l := ts.root()
	wantCode(t, l.Bind(testRootDN, "wrong"), ldap.LDAPResultInvalidCredentials)
	// RFC 4511 §4.2.1: after a failed bind the connection is anonymous.
	res, err := l.WhoAmI(nil)
	if err != nil || res.AuthzID != "" {
		t.Fatalf("WhoAmI after failed bind: %+v %v", res, err)
	}
	_, err = l.Search(ldap.NewSearchRequest(testSuffix, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", nil, nil))
	wantCode(t, err, ldap.LDAPResultInsufficientAccessRights)
}

func TestWhoAmI(t *testing.T) {
	ts := newTestServer(t)
	tests := []struct{ name, dn, pw, want string }{
		{"anonymous", "", "", ""},
		{"root", testRootDN, testRootPW, "dn:" + testRootDN},
		{"user", testUserDN, testUserPW, "dn:" + testUserDN},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := ts.dial()
			if tc.dn != "" {
				if err := l.Bind(tc.dn, tc.pw); err != nil {
					t.Fatal(err)
				}
			}
			res, err := l.WhoAmI(nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.AuthzID != tc.want {
				t.Fatalf("WhoAmI = %q, want %q", res.AuthzID, tc.want)
			}
		})
	}
}

func TestUnbind(t *testing.T) {
	ts := newTestServer(t)
	c := ts.raw()
	c.Write(msg(1, bindOp(testRootDN, testRootPW)))
	readMessage(t, c)
	// RFC 4511 §4.3: the server ends the session without a response.
	c.Write(msg(2, ber.Encode(ber.ClassApplication, ber.TypePrimitive, appUnbindRequest, nil, "unbind")))
	if p, err := ber.ReadPacket(c); err == nil {
		t.Fatalf("response to unbind: %v", p)
	}
}
