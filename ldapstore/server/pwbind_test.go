package server

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// hashTool runs a password hashing program and returns its output line.
func hashTool(t *testing.T, prog string, args ...string) string {
	t.Helper()
	out, err := exec.Command(prog, args...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v (make test installs it: .ci/deps.sh)", prog, args, err)
	}
	return strings.TrimSpace(string(out))
}

// TestBindMigratedHashesLikeSlapd (issue 9, item 13): users whose
// userPassword was made by openssl passwd, mkpasswd (libxcrypt) or
// slappasswd bind with their password on Postern as on slapd, and fail with
// invalidCredentials (49) with a wrong one.
func TestBindMigratedHashesLikeSlapd(t *testing.T) {
	p := newRefPair(t)
	const pw = "migrated secret"
	hashes := []struct{ name, value string }{
		{"openssl passwd -1", "{CRYPT}" + hashTool(t, "openssl", "passwd", "-1", pw)},
		{"openssl passwd -5", "{CRYPT}" + hashTool(t, "openssl", "passwd", "-5", pw)},
		{"openssl passwd -6", "{CRYPT}" + hashTool(t, "openssl", "passwd", "-6", pw)},
		{"mkpasswd yescrypt", "{CRYPT}" + hashTool(t, "mkpasswd", "-m", "yescrypt", pw)},
		{"mkpasswd bcrypt", "{CRYPT}" + hashTool(t, "mkpasswd", "-m", "bcrypt", pw)},
		{"slappasswd SSHA", hashTool(t, "slappasswd", "-h", "{SSHA}", "-s", pw)},
		{"slappasswd SHA", hashTool(t, "slappasswd", "-h", "{SHA}", "-s", pw)},
		{"slappasswd SSHA256", hashTool(t, "slappasswd", "-o", "module-load=pw-sha2", "-h", "{SSHA256}", "-s", pw)},
		{"slappasswd SSHA512", hashTool(t, "slappasswd", "-o", "module-load=pw-sha2", "-h", "{SSHA512}", "-s", pw)},
		{"slappasswd ARGON2", hashTool(t, "slappasswd", "-o", "module-load=argon2", "-h", "{ARGON2}", "-s", pw)},
	}
	for i, h := range hashes {
		dn := "uid=m" + string(rune('a'+i)) + ",ou=people," + testSuffix
		p.addBoth(t, entry(dn, "objectClass", "inetOrgPerson", "uid", "m"+string(rune('a'+i)), "cn", "M", "sn", "M", "userPassword", h.value))
		p.each(func(name string, d directory) {
			if err := d.dial().Bind(dn, pw); err != nil {
				t.Errorf("%s: %s: bind with the right password: %v", name, h.name, err)
			}
			if err := d.dial().Bind(dn, pw+"x"); code(err) != ldap.LDAPResultInvalidCredentials {
				t.Errorf("%s: %s: bind with a wrong password: %v, want 49", name, h.name, err)
			}
		})
	}
}

// TestUnverifiableHashRefused: a userPassword value Postern cannot verify
// is refused at add and modify with constraintViolation and a message that
// names the scheme, instead of being stored for every bind to fail (slapd
// stores such values: this is where Postern deliberately differs).
func TestUnverifiableHashRefused(t *testing.T) {
	ts := newTestServer(t)
	l := ts.root()
	err := l.Add(addReq("uid=dora,ou=people,"+testSuffix, "objectClass", "inetOrgPerson", "uid", "dora", "cn", "D", "sn", "D",
		"userPassword", "{CRYPT}abJnggxhB/yWI"))
	if code(err) != ldap.LDAPResultConstraintViolation || !strings.Contains(err.Error(), "traditional DES crypt is not supported") {
		t.Fatalf("add with a DES crypt value: %v", err)
	}
	m := ldap.NewModifyRequest(testUserDN, nil)
	m.Replace("userPassword", []string{"{PBKDF2}1000$c2FsdA$aGFzaA"})
	if err := l.Modify(m); code(err) != ldap.LDAPResultConstraintViolation || !strings.Contains(err.Error(), "{PBKDF2} is not supported") {
		t.Fatalf("modify with a {PBKDF2} value: %v", err)
	}
	// the old password still binds
	ts.bind(testUserDN, testUserPW)
}
