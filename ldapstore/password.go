package ldapstore

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
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

// hashIfPlain hashes v unless it already carries a {SCHEME} prefix.
func hashIfPlain(v string) (string, error) {
	if _, _, ok := SplitPasswordScheme(v); ok {
		return v, nil
	}
	return HashPassword(v)
}

// argon2Hash is a parsed PHC string "$argon2id$v=19$m=..,t=..,p=..$salt$hash"
// (OpenLDAP pw-argon2's format).
type argon2Hash struct {
	id      bool // argon2id; else argon2i
	m, t, p uint64
	salt    []byte
	want    []byte
}

func parseArgon2(phc string) (*argon2Hash, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" {
		return nil, errors.New("not a $argon2id$ or $argon2i$ PHC string")
	}
	h := &argon2Hash{}
	switch parts[1] {
	case "argon2id":
		h.id = true
	case "argon2i":
	default:
		return nil, fmt.Errorf("variant %q is not supported", parts[1])
	}
	if parts[2] != "v=19" {
		return nil, errors.New("version is not v=19")
	}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil {
			return nil, errors.New("malformed parameters")
		}
		switch k {
		case "m":
			h.m = n
		case "t":
			h.t = n
		case "p":
			h.p = n
		}
	}
	// refuse absurd parameters rather than exhaust memory at bind time
	if h.m == 0 || h.m > 4<<20 || h.t == 0 || h.t > 100 || h.p == 0 || h.p > 255 {
		return nil, errors.New("parameters out of range (m 1..4194304 KiB, t 1..100, p 1..255)")
	}
	var err1, err2 error
	h.salt, err1 = b64.DecodeString(strings.TrimRight(parts[4], "="))
	h.want, err2 = b64.DecodeString(strings.TrimRight(parts[5], "="))
	if err1 != nil || err2 != nil || len(h.want) == 0 || len(h.want) > 1024 {
		return nil, errors.New("malformed salt or hash")
	}
	return h, nil
}

func checkArgon2(phc string) error { _, err := parseArgon2(phc); return err }

func verifyArgon2(phc, password string) bool {
	h, err := parseArgon2(phc)
	if err != nil {
		return false
	}
	var got []byte
	if h.id {
		got = argon2.IDKey([]byte(password), h.salt, uint32(h.t), uint32(h.m), uint8(h.p), uint32(len(h.want)))
	} else {
		got = argon2.Key([]byte(password), h.salt, uint32(h.t), uint32(h.m), uint8(h.p), uint32(len(h.want)))
	}
	return subtle.ConstantTimeCompare(got, h.want) == 1
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
