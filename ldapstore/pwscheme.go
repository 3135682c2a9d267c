package ldapstore

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	gocrypt "github.com/go-crypt/crypt"
	"github.com/go-crypt/crypt/algorithm"
	cbcrypt "github.com/go-crypt/crypt/algorithm/bcrypt"
	"github.com/go-crypt/crypt/algorithm/md5crypt"
	"github.com/go-crypt/crypt/algorithm/scrypt"
	"github.com/go-crypt/crypt/algorithm/shacrypt"
	"github.com/go-crypt/x/yescrypt"
)

// A userPassword value is "{SCHEME}payload" (the RFC 2307 / RFC 3112 §3
// convention slapd follows) or, without a scheme, cleartext that the store
// hashes before it stores it. The schemes Postern verifies are listed in
// passwordSchemes; a value in any other scheme, or whose payload its scheme
// cannot read, could never verify a password: the store refuses it on Add
// and Modify instead of storing a value every bind would then fail on
// (issue 9, item 13).

// ErrPasswordScheme is wrapped by CheckPasswordValue's errors.
var ErrPasswordScheme = errors.New("ldapstore: unusable password value")

// passwordScheme checks and verifies the payloads of one scheme.
type passwordScheme struct {
	// check returns why payload can never verify a password, or nil.
	check func(payload string) error
	// verify reports whether password matches payload (already checked).
	verify func(payload, password string) bool
}

// passwordSchemes are the schemes Postern verifies, by upper-case name.
// slapd verifies the same with its built-in schemes and the pw-sha2 and
// argon2 modules; {CRYPT} takes the crypt(3) formats people migrate from
// (cryptFormats).
var passwordSchemes = map[string]passwordScheme{
	"ARGON2":    {check: checkArgon2, verify: verifyArgon2},
	"SSHA":      salted(sha1.New, true),
	"SHA":       salted(sha1.New, false),
	"SSHA256":   salted(sha256.New, true),
	"SHA256":    salted(sha256.New, false),
	"SSHA512":   salted(sha512.New, true),
	"SHA512":    salted(sha512.New, false),
	"SMD5":      salted(md5.New, true),
	"MD5":       salted(md5.New, false),
	"CRYPT":     {check: checkCrypt, verify: verifyCrypt},
	"BCRYPT":    {check: checkBcrypt, verify: verifyCrypt},
	"CLEARTEXT": {check: func(string) error { return nil }, verify: verifyCleartext},
}

// SupportedPasswordSchemes names what CheckPasswordValue accepts, for
// messages.
const SupportedPasswordSchemes = "{ARGON2}, {CRYPT} ($1$, $5$, $6$, $2a$/$2b$/$2y$, $y$), {BCRYPT}, {SSHA}, {SHA}, {SSHA256}, {SHA256}, {SSHA512}, {SHA512}, {SMD5}, {MD5}, {CLEARTEXT}"

// SplitPasswordScheme splits a userPassword value into its scheme (upper
// case, without braces) and payload. ok is false when v has no scheme:
// "{" then one or more of A-Z a-z 0-9 - . then "}" at its start.
func SplitPasswordScheme(v string) (scheme, payload string, ok bool) {
	if len(v) < 3 || v[0] != '{' {
		return "", v, false
	}
	end := strings.IndexByte(v, '}')
	if end < 2 {
		return "", v, false
	}
	for i := 1; i < end; i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return "", v, false
		}
	}
	return strings.ToUpper(v[1:end]), v[end+1:], true
}

// CheckPasswordValue returns nil when v is a userPassword value Postern can
// verify passwords against (or cleartext, which the store hashes), and
// otherwise an error wrapping ErrPasswordScheme that says why: the scheme is
// not supported, or the payload is malformed for it.
func CheckPasswordValue(v string) error {
	scheme, payload, ok := SplitPasswordScheme(v)
	if !ok {
		return nil
	}
	ps, known := passwordSchemes[scheme]
	if !known {
		return fmt.Errorf("%w: password scheme {%s} is not supported (Postern verifies %s)", ErrPasswordScheme, scheme, SupportedPasswordSchemes)
	}
	if err := ps.check(payload); err != nil {
		return fmt.Errorf("%w: {%s} value: %v", ErrPasswordScheme, scheme, err)
	}
	return nil
}

// VerifyPassword reports whether password matches the stored userPassword
// value hashed (a scheme of passwordSchemes, or cleartext when it has
// none). A value CheckPasswordValue refuses matches nothing.
func VerifyPassword(hashed, password string) bool {
	scheme, payload, ok := SplitPasswordScheme(hashed)
	if !ok {
		return subtle.ConstantTimeCompare([]byte(hashed), []byte(password)) == 1
	}
	ps, known := passwordSchemes[scheme]
	if !known || ps.check(payload) != nil {
		return false
	}
	return ps.verify(payload, password)
}

func verifyCleartext(payload, password string) bool {
	return subtle.ConstantTimeCompare([]byte(payload), []byte(password)) == 1
}

// salted is the {SSHA} family, base64(H(password + salt) + salt), and with
// salted false the {SHA} family, base64(H(password)) (RFC 2307 practice, as
// slapd's passwd.c and pw-sha2 compute them).
func salted(newHash func() hash.Hash, salted bool) passwordScheme {
	size := newHash().Size()
	decode := func(payload string) ([]byte, error) {
		raw, err := base64.StdEncoding.DecodeString(payload)
		if err != nil {
			return nil, errors.New("payload is not base64")
		}
		switch {
		case salted && len(raw) <= size:
			return nil, fmt.Errorf("%d octets, want a %d-octet hash and a salt", len(raw), size)
		case !salted && len(raw) != size:
			return nil, fmt.Errorf("%d octets, want %d", len(raw), size)
		}
		return raw, nil
	}
	return passwordScheme{
		check: func(payload string) error { _, err := decode(payload); return err },
		verify: func(payload, password string) bool {
			raw, err := decode(payload)
			if err != nil {
				return false
			}
			h := newHash()
			h.Write([]byte(password))
			h.Write(raw[size:])
			return subtle.ConstantTimeCompare(h.Sum(nil), raw[:size]) == 1
		},
	}
}

// Cost bounds of stored hashes: a value above them would let anyone who
// knows a DN spend seconds of CPU or gigabytes per bind attempt.
const (
	maxSHACryptRounds = 10_000_000
	maxBcryptCost     = 18
	maxYescryptBytes  = 256 << 20
)

// cryptDecoder reads the crypt(3) formats of cryptFormats with
// github.com/go-crypt/crypt, registered explicitly (its authors advise
// against the catch-all decoders).
var cryptDecoder = func() *gocrypt.Decoder {
	d := gocrypt.NewDecoder()
	for _, reg := range []func(algorithm.DecoderRegister) error{
		md5crypt.RegisterDecoderCommon, shacrypt.RegisterDecoder, cbcrypt.RegisterDecoderStandard, scrypt.RegisterDecoderYescrypt,
	} {
		if err := reg(d); err != nil {
			panic(fmt.Sprintf("ldapstore: crypt decoders: %v", err))
		}
	}
	return d
}()

// cryptFormats are the crypt(3) identifiers {CRYPT} accepts: md5crypt,
// SHA-crypt (Drepper), bcrypt and yescrypt (libxcrypt's default).
var cryptFormats = map[string]string{
	"1": "md5crypt", "5": "sha256crypt", "6": "sha512crypt",
	"2a": "bcrypt", "2b": "bcrypt", "2y": "bcrypt", "y": "yescrypt",
}

// cryptID returns the identifier of a "$id$..." crypt(3) string.
func cryptID(payload string) (string, bool) {
	if len(payload) < 3 || payload[0] != '$' {
		return "", false
	}
	end := strings.IndexByte(payload[1:], '$')
	if end < 1 {
		return "", false
	}
	return payload[1 : 1+end], true
}

func checkCrypt(payload string) error {
	id, ok := cryptID(payload)
	if !ok {
		return errors.New("not a $id$ crypt(3) string (traditional DES crypt is not supported)")
	}
	if _, known := cryptFormats[id]; !known {
		return fmt.Errorf("crypt(3) scheme $%s$ is not supported", id)
	}
	if err := cryptCost(id, payload); err != nil {
		return err
	}
	if _, err := cryptDecoder.Decode(payload); err != nil {
		return fmt.Errorf("malformed $%s$ string", id)
	}
	return nil
}

// checkBcrypt accepts {BCRYPT}, a bcrypt string without the {CRYPT} name.
func checkBcrypt(payload string) error {
	if id, _ := cryptID(payload); cryptFormats[id] != "bcrypt" {
		return errors.New("not a $2a$, $2b$ or $2y$ bcrypt string")
	}
	return checkCrypt(payload)
}

// cryptCost refuses cost parameters above the bounds.
func cryptCost(id, payload string) error {
	parts := strings.Split(payload, "$")
	switch cryptFormats[id] {
	case "sha256crypt", "sha512crypt":
		if len(parts) > 2 && strings.HasPrefix(parts[2], "rounds=") {
			n, err := strconv.ParseUint(strings.TrimPrefix(parts[2], "rounds="), 10, 64)
			if err != nil || n > maxSHACryptRounds {
				return fmt.Errorf("rounds above %d", maxSHACryptRounds)
			}
		}
	case "bcrypt":
		if len(parts) > 2 {
			n, err := strconv.Atoi(parts[2])
			if err != nil || n > maxBcryptCost {
				return fmt.Errorf("bcrypt cost above %d", maxBcryptCost)
			}
		}
	case "yescrypt":
		if len(parts) < 3 {
			return errors.New("malformed $y$ string")
		}
		_, ln, r, err := yescrypt.DecodeSetting([]byte(parts[2]))
		if err != nil {
			return errors.New("unsupported yescrypt parameters")
		}
		if ln < 1 || ln > 30 || r < 1 || 128*int64(r)<<ln > maxYescryptBytes {
			return fmt.Errorf("yescrypt memory above %d MiB", maxYescryptBytes>>20)
		}
	}
	return nil
}

func verifyCrypt(payload, password string) bool {
	d, err := cryptDecoder.Decode(payload)
	if err != nil {
		return false
	}
	ok, err := d.MatchAdvanced(password)
	return err == nil && ok
}
