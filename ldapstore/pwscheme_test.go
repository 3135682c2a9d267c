package ldapstore

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// hashTool runs a password hashing program and returns its one line of
// output.
func hashTool(t *testing.T, prog string, args ...string) string {
	t.Helper()
	out, err := exec.Command(prog, args...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v (make test installs it: .ci/deps.sh)", prog, args, err)
	}
	return strings.TrimSpace(string(out))
}

// realHashes returns userPassword values for password "secret" made by the
// tools admins migrate from: OpenSSL, slappasswd (with slapd's pw-sha2
// and argon2 modules) and libxcrypt's mkpasswd.
func realHashes(t *testing.T) map[string]string {
	const pw = "secret"
	crypt := func(args ...string) string {
		return "{CRYPT}" + hashTool(t, "openssl", append(append([]string{"passwd"}, args...), pw)...)
	}
	mk := func(method string) string { return "{CRYPT}" + hashTool(t, "mkpasswd", "-m", method, pw) }
	slap := func(args ...string) string { return hashTool(t, "slappasswd", append(args, "-s", pw)...) }
	bcrypt := mk("bcrypt")
	return map[string]string{
		"openssl -1 (md5crypt)":          crypt("-1"),
		"openssl -5 (sha256crypt)":       crypt("-5"),
		"openssl -6 (sha512crypt)":       crypt("-6"),
		"mkpasswd sha512crypt rounds":    "{CRYPT}" + hashTool(t, "mkpasswd", "-m", "sha512crypt", "-R", "10000", pw),
		"mkpasswd yescrypt":              mk("yescrypt"),
		"mkpasswd bcrypt ($2b$)":         bcrypt,
		"mkpasswd bcrypt-a ($2a$)":       mk("bcrypt-a"),
		"bcrypt as $2y$ (htpasswd form)": strings.Replace(bcrypt, "$2b$", "$2y$", 1),
		"mkpasswd sha512crypt":           mk("sha512crypt"),
		"slappasswd {SSHA}":              slap("-h", "{SSHA}"),
		"slappasswd {SHA}":               slap("-h", "{SHA}"),
		"slappasswd {SMD5}":              slap("-h", "{SMD5}"),
		"slappasswd {MD5}":               slap("-h", "{MD5}"),
		"slappasswd {CRYPT} $6$":         slap("-h", "{CRYPT}", "-c", "$6$%.16s"),
		"slappasswd {SSHA256}":           slap("-o", "module-load=pw-sha2", "-h", "{SSHA256}"),
		"slappasswd {SSHA512}":           slap("-o", "module-load=pw-sha2", "-h", "{SSHA512}"),
		"slappasswd {SHA256}":            slap("-o", "module-load=pw-sha2", "-h", "{SHA256}"),
		"slappasswd {SHA512}":            slap("-o", "module-load=pw-sha2", "-h", "{SHA512}"),
		"slappasswd {ARGON2} (argon2i)":  slap("-o", "module-load=argon2", "-h", "{ARGON2}"),
		"Postern {ARGON2} (argon2id)":    mustHash(t, pw),
		"lower-case scheme {crypt}":      "{crypt}" + strings.TrimPrefix(crypt("-6"), "{CRYPT}"),
	}
}

func mustHash(t *testing.T, pw string) string {
	h, err := HashPassword(pw)
	must(t, err)
	return h
}

// TestPasswordSchemesFromRealTools: every value made by a real tool is
// accepted by CheckPasswordValue and verifies the right password only.
func TestPasswordSchemesFromRealTools(t *testing.T) {
	for name, h := range realHashes(t) {
		t.Run(name, func(t *testing.T) {
			if err := CheckPasswordValue(h); err != nil {
				t.Fatalf("CheckPasswordValue(%q): %v", h, err)
			}
			if !VerifyPassword(h, "secret") {
				t.Errorf("VerifyPassword(%q, secret) = false", h)
			}
			if VerifyPassword(h, "Secret") || VerifyPassword(h, "") {
				t.Errorf("VerifyPassword(%q) accepts a wrong password", h)
			}
		})
	}
}

// TestUnusablePasswordValues: values no password could verify are refused
// by CheckPasswordValue with a message that says why, and at Add and
// Modify with constraintViolation; nothing is stored.
func TestUnusablePasswordValues(t *testing.T) {
	for _, tc := range []struct{ value, msg string }{
		{"{SASL}alice@EXAMPLE.COM", "{SASL} is not supported"},
		{"{PBKDF2-SHA512}10000$c2FsdA$aGFzaA", "{PBKDF2-SHA512} is not supported"},
		{"{CRYPT}abJnggxhB/yWI", "traditional DES crypt is not supported"},
		{"{CRYPT}$md5$rounds=904$abc$def", "$md5$ is not supported"},
		{"{CRYPT}$7$CU..../....abc$def", "$7$ is not supported"},
		{"{CRYPT}$6$salt", "malformed $6$"},
		{"{CRYPT}$6$rounds=999999999$salt$" + strings.Repeat("a", 86), "rounds above"},
		{"{CRYPT}$2b$31$" + strings.Repeat("a", 53), "bcrypt cost above"},
		{"{SSHA}x", "not base64"},
		{"{SSHA}c2VjcmV0c2FsdA==", "want a 20-octet hash and a salt"},
		{"{SHA}c2VjcmV0", "want 20"},
		{"{ARGON2}$argon2d$v=19$m=4096,t=3,p=1$c2FsdA$aGFzaA", "variant"},
		{"{ARGON2}$argon2id$v=19$m=999999999,t=2,p=1$c2FsdHNhbHQ$aGFzaA", "out of range"},
		{"{BCRYPT}$6$abc$def", "not a $2a$"},
	} {
		t.Run(tc.value, func(t *testing.T) {
			err := CheckPasswordValue(tc.value)
			if !errors.Is(err, ErrPasswordScheme) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("CheckPasswordValue(%q) = %v, want %q", tc.value, err, tc.msg)
			}
			if VerifyPassword(tc.value, "secret") {
				t.Fatal("verified")
			}
		})
	}
	s := openTest(t, Options{})
	seed(t, s)
	ctx := context.Background()
	p := person("carol")
	p.Set("userPassword", "{SASL}carol@EXAMPLE.COM")
	err := s.Add(ctx, p, admin)
	wantCode(t, err, ConstraintViolation)
	if !strings.Contains(err.Error(), "userPassword: value #0: password scheme {SASL} is not supported") {
		t.Errorf("message: %v", err)
	}
	_, err = s.Get(ctx, p.DN)
	wantCode(t, err, NoSuchObject)
	p.Set("userPassword", "secret")
	must(t, s.Add(ctx, p, admin))
	for _, op := range []ModOp{ModAdd, ModReplace} {
		err = s.Modify(ctx, p.DN, []Modification{{Op: op, Attr: Attribute{Type: "userPassword", Vals: []string{"{CRYPT}abJnggxhB/yWI"}}}}, admin)
		wantCode(t, err, ConstraintViolation)
	}
	must(t, s.CheckPassword(ctx, p.DN, "secret"))
}

// TestBindMigratedHashes: entries added with hashes from real tools bind
// with the right password through the store.
func TestBindMigratedHashes(t *testing.T) {
	s := openTest(t, Options{})
	seed(t, s)
	ctx := context.Background()
	i := 0
	for name, h := range realHashes(t) {
		i++
		p := person("m" + strings.Repeat("x", i))
		p.Set("userPassword", h)
		if err := s.Add(ctx, p, admin); err != nil {
			t.Fatalf("%s: add %q: %v", name, h, err)
		}
		if err := s.CheckPassword(ctx, p.DN, "secret"); err != nil {
			t.Errorf("%s: bind: %v", name, err)
		}
		wantCode(t, s.CheckPassword(ctx, p.DN, "wrong"), InvalidCredentials)
	}
}

// FuzzPasswordValue: parsing a userPassword value never panics, a value
// CheckPasswordValue refuses verifies nothing, and the scheme split is
// consistent. Verification is fuzzed for the cheap schemes only (the
// others would spend the fuzzer's time on key stretching).
func FuzzPasswordValue(f *testing.F) {
	for _, s := range []string{"{SSHA}1G904nLkTkGWjKNnQuB/hpWXC/hzYWx0c2FsdA==", "{CRYPT}$6$abc$def", "{CRYPT}$y$j9T$a$b",
		"{CRYPT}$2b$05$1XCsXNue4tDe2ioratpzT..AV.ByixhRyI5I1Ec7AlqpY7YU7dU.e", "{ARGON2}$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA",
		"{cleartext}x", "{}", "{x", "plain", "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "{CRYPT}$1$salt$hash"} {
		f.Add(s, "secret")
	}
	f.Fuzz(func(t *testing.T, v, pw string) {
		scheme, payload, ok := SplitPasswordScheme(v)
		if ok && "{"+scheme+"}"+payload != "{"+strings.ToUpper(v[1:len(scheme)+1])+"}"+v[len(scheme)+2:] {
			t.Fatalf("split %q into %q %q", v, scheme, payload)
		}
		if !ok && payload != v {
			t.Fatalf("no scheme but payload %q of %q", payload, v)
		}
		err := CheckPasswordValue(v)
		if ok && err != nil && VerifyPassword(v, pw) {
			t.Fatalf("refused value %q verified %q", v, pw)
		}
		switch scheme {
		case "SSHA", "SHA", "SSHA256", "SHA256", "SSHA512", "SHA512", "SMD5", "MD5", "CLEARTEXT":
			VerifyPassword(v, pw)
		}
	})
}
