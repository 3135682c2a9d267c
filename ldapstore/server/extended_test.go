package server

import (
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

func TestPasswordModify(t *testing.T) {
	ts := newTestServer(t)

	// A user changes its own password, proving the old one.
	user := ts.bind(testUserDN, testUserPW)
	_, err := user.PasswordModify(ldap.NewPasswordModifyRequest("", "wrong", "new alice"))
	wantCode(t, err, ldap.LDAPResultInvalidCredentials)
	_, err = user.PasswordModify(ldap.NewPasswordModifyRequest("", "", "new alice"))
	wantCode(t, err, ldap.LDAPResultUnwillingToPerform)
	_, err = user.PasswordModify(ldap.NewPasswordModifyRequest(testOtherDN, testOtherPW, "hijack"))
	wantCode(t, err, ldap.LDAPResultInsufficientAccessRights)
	if _, err := user.PasswordModify(ldap.NewPasswordModifyRequest("", testUserPW, "new alice")); err != nil {
		t.Fatalf("own password change: %v", err)
	}
	wantCode(t, ts.dial().Bind(testUserDN, testUserPW), ldap.LDAPResultInvalidCredentials)
	ts.bind(testUserDN, "new alice")

	// The root DN sets anyone's password without the old one.
	root := ts.root()
	if _, err := root.PasswordModify(ldap.NewPasswordModifyRequest(testOtherDN, "", "new bob")); err != nil {
		t.Fatalf("root sets password: %v", err)
	}
	ts.bind(testOtherDN, "new bob")

	// Without newPasswd the server generates one and returns it.
	res, err := root.PasswordModify(ldap.NewPasswordModifyRequest(testOtherDN, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GeneratedPassword) < 16 {
		t.Fatalf("generated password %q", res.GeneratedPassword)
	}
	ts.bind(testOtherDN, res.GeneratedPassword)
	// A user may ask for a generated password too.
	user = ts.bind(testUserDN, "new alice")
	res, err = user.PasswordModify(ldap.NewPasswordModifyRequest(testUserDN, "new alice", ""))
	if err != nil || res.GeneratedPassword == "" {
		t.Fatalf("user generated password: %+v %v", res, err)
	}
	ts.bind(testUserDN, res.GeneratedPassword)

	// Anonymous changes nothing.
	_, err = ts.dial().PasswordModify(ldap.NewPasswordModifyRequest(testUserDN, "x", "y"))
	wantCode(t, err, ldap.LDAPResultInsufficientAccessRights)
	// The root DN's own password lives outside the directory.
	_, err = root.PasswordModify(ldap.NewPasswordModifyRequest("", "", "x"))
	wantCode(t, err, ldap.LDAPResultUnwillingToPerform)
}

func TestUnknownExtendedOperation(t *testing.T) {
	ts := newTestServer(t)
	l := ts.dial()
	_, err := l.Extended(ldap.NewExtendedRequest("1.2.3.4.5", nil))
	wantCode(t, err, ldap.LDAPResultProtocolError)
	if e, ok := err.(*ldap.Error); !ok || e.Err == nil || !strings.Contains(e.Err.Error(), "1.2.3.4.5") {
		t.Fatalf("diagnostic does not name the OID: %v", err)
	}
	// The connection is still usable.
	if _, err := l.WhoAmI(nil); err != nil {
		t.Fatal(err)
	}
}
