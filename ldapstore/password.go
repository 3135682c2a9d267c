package ldapstore

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Argon2id parameters of HashPassword: OpenLDAP pw-argon2's defaults and
// the OWASP minimum (19 MiB, 2 passes, 1 lane).
const (
	argonMemory  = 19456
	argonTime    = 2
	argonThreads = 1
	argonSaltLen = 16
	argonKeyLen  = 32
)

var b64 = base64.RawStdEncoding

// HashPassword hashes password with argon2id in OpenLDAP pw-argon2's format:
// "{ARGON2}$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>" (unpadded base64).
func HashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("ldapstore: password salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("{ARGON2}$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// hasScheme reports whether v starts with "{SCHEME}" (RFC 3112 §3 style).
func hasScheme(v string) bool {
	if len(v) < 3 || v[0] != '{' {
		return false
	}
	end := strings.IndexByte(v, '}')
	if end < 2 {
		return false
	}
	for _, c := range v[1:end] {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// hashIfPlain hashes v unless it already carries a {SCHEME} prefix.
func hashIfPlain(v string) (string, error) {
	if hasScheme(v) {
		return v, nil
	}
	return HashPassword(v)
}

// VerifyPassword reports whether password matches the stored value hash:
// {ARGON2} (argon2id and argon2i), {SSHA}, {SHA}, {SSHA256}, {SHA256},
// {SSHA512}, {SHA512}, {BCRYPT}/{CRYPT} with a bcrypt hash, {CLEARTEXT}, or a
// value without scheme compared as cleartext.
func VerifyPassword(hashed, password string) bool {
	if !hasScheme(hashed) {
		return subtle.ConstantTimeCompare([]byte(hashed), []byte(password)) == 1
	}
	end := strings.IndexByte(hashed, '}')
	scheme, rest := strings.ToUpper(hashed[1:end]), hashed[end+1:]
	switch scheme {
	case "ARGON2":
		return verifyArgon2(rest, password)
	case "SSHA":
		return verifySalted(sha1.New, rest, password, true)
	case "SHA":
		return verifySalted(sha1.New, rest, password, false)
	case "SSHA256":
		return verifySalted(sha256.New, rest, password, true)
	case "SHA256":
		return verifySalted(sha256.New, rest, password, false)
	case "SSHA512":
		return verifySalted(sha512.New, rest, password, true)
	case "SHA512":
		return verifySalted(sha512.New, rest, password, false)
	case "BCRYPT", "CRYPT":
		if strings.HasPrefix(rest, "$2") {
			return bcrypt.CompareHashAndPassword([]byte(rest), []byte(password)) == nil
		}
	case "CLEARTEXT":
		return subtle.ConstantTimeCompare([]byte(rest), []byte(password)) == 1
	}
	return false
}

// verifySalted checks base64(H(password + salt) + salt) ({SSHA} family) or
// base64(H(password)) ({SHA} family).
func verifySalted(newHash func() hash.Hash, enc, password string, salted bool) bool {
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return false
	}
	h := newHash()
	size := h.Size()
	if len(raw) < size || !salted && len(raw) != size {
		return false
	}
	h.Write([]byte(password))
	h.Write(raw[size:])
	return subtle.ConstantTimeCompare(h.Sum(nil), raw[:size]) == 1
}

// verifyArgon2 checks a PHC string "$argon2id$v=19$m=..,t=..,p=..$salt$hash".
func verifyArgon2(phc, password string) bool {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" {
		return false
	}
	variant := parts[1]
	if variant != "argon2id" && variant != "argon2i" {
		return false
	}
	if parts[2] != "v=19" {
		return false
	}
	var m, t uint64
	var p uint64
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil {
			return false
		}
		switch k {
		case "m":
			m = n
		case "t":
			t = n
		case "p":
			p = n
		}
	}
	// refuse absurd parameters from a stored value rather than exhaust memory
	if m == 0 || m > 4<<20 || t == 0 || t > 100 || p == 0 || p > 255 {
		return false
	}
	salt, err1 := b64.DecodeString(strings.TrimRight(parts[4], "="))
	want, err2 := b64.DecodeString(strings.TrimRight(parts[5], "="))
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 1024 {
		return false
	}
	var got []byte
	if variant == "argon2id" {
		got = argon2.IDKey([]byte(password), salt, uint32(t), uint32(m), uint8(p), uint32(len(want)))
	} else {
		got = argon2.Key([]byte(password), salt, uint32(t), uint32(m), uint8(p), uint32(len(want)))
	}
	return subtle.ConstantTimeCompare(got, want) == 1
}

// CheckPassword verifies password against the userPassword values of dn.
// Any failure, a missing entry included, is invalidCredentials (RFC 4511
// §4.2.2) so that a client cannot probe for entries.
func (s *Store) CheckPassword(ctx context.Context, dn, password string) error {
	invalid := &Error{Code: InvalidCredentials, Message: "invalid credentials"}
	if password == "" {
		return invalid
	}
	e, err := s.Get(ctx, dn)
	if err != nil {
		if c := CodeOf(err); c == NoSuchObject || c == InvalidDNSyntax {
			return invalid
		}
		return err
	}
	for _, h := range e.Get("userPassword") {
		if VerifyPassword(h, password) {
			return nil
		}
	}
	return invalid
}

// SetPassword replaces the userPassword of dn with a hash of newPassword
// (the store side of RFC 3062's password modify).
func (s *Store) SetPassword(ctx context.Context, dn, newPassword, by string) error {
	if newPassword == "" {
		return Errorf(UnwillingToPerform, "empty password")
	}
	h, err := HashPassword(newPassword)
	if err != nil {
		return err
	}
	return s.Modify(ctx, dn, []Modification{{Op: ModReplace, Attr: Attribute{Type: "userPassword", Vals: []string{h}}}}, by)
}
