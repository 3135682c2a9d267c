package secure

import (
	"fmt"
	"strings"
	"unicode"
)

// Encrypt is when outgoing mail is encrypted.
type Encrypt string

// Encryption settings.
const (
	EncryptNever  Encrypt = "never"
	EncryptIfKey  Encrypt = "if-key" // when a certificate or key of the recipient (or its domain) is known
	EncryptAlways Encrypt = "always" // no key: refused (NoKey)
)

// Sign is whether outgoing mail is signed.
type Sign string

// Signing settings.
const (
	SignNever  Sign = "never"
	SignAlways Sign = "always" // with the sender's key, else the domain's
)

// Method is the preferred format.
type Method string

// Methods.
const (
	MethodSMIME Method = "smime"
	MethodPGP   Method = "pgp"
)

// NoKey is what happens to mail that must be encrypted for a recipient
// whose key is unknown.
type NoKey string

// NoKey actions.
const (
	NoKeyReject NoKey = "reject" // 554 5.7.1 to the client, before the message is queued
	NoKeyBounce NoKey = "bounce" // accepted, then returned to the sender with a DSN
)

// Defaults of the factory layer (issue 15): encrypt if a key is known,
// never sign, S/MIME, subject trigger "[secure]", refuse when no key.
const (
	DefaultEncrypt = EncryptIfKey
	DefaultSign    = SignNever
	DefaultMethod  = MethodSMIME
	DefaultTrigger = "[secure]"
	DefaultNoKey   = NoKeyReject
)

// Policy is the effective policy of one sender.
type Policy struct {
	Encrypt Encrypt `json:"encrypt"`
	Sign    Sign    `json:"sign"`
	Method  Method  `json:"method"`
	Trigger string  `json:"trigger"` // subject prefix forcing encryption; "" for none
	NoKey   NoKey   `json:"no_key"`
}

// Layer is one level's settings: empty fields inherit.
type Layer struct {
	Encrypt Encrypt `json:"encrypt,omitempty"`
	Sign    Sign    `json:"sign,omitempty"`
	Method  Method  `json:"method,omitempty"`
	Trigger *string `json:"trigger,omitempty"` // global only; "" turns the trigger off
	NoKey   NoKey   `json:"no_key,omitempty"`  // global only
}

// Sources names where each effective value comes from: "default",
// "global", "domain D" or "user A".
type Sources struct {
	Encrypt string `json:"encrypt"`
	Sign    string `json:"sign"`
	Method  string `json:"method"`
	Trigger string `json:"trigger"`
	NoKey   string `json:"no_key"`
}

// Named is a layer and the name of its level.
type Named struct {
	Name  string
	Layer Layer
}

// Resolve applies layers in order (global, domain, user) over the
// defaults: a later layer's setting wins.
func Resolve(layers ...Named) (Policy, Sources) {
	p := Policy{Encrypt: DefaultEncrypt, Sign: DefaultSign, Method: DefaultMethod, Trigger: DefaultTrigger, NoKey: DefaultNoKey}
	s := Sources{"default", "default", "default", "default", "default"}
	for _, l := range layers {
		if l.Layer.Encrypt != "" {
			p.Encrypt, s.Encrypt = l.Layer.Encrypt, l.Name
		}
		if l.Layer.Sign != "" {
			p.Sign, s.Sign = l.Layer.Sign, l.Name
		}
		if l.Layer.Method != "" {
			p.Method, s.Method = l.Layer.Method, l.Name
		}
		if l.Layer.Trigger != nil {
			p.Trigger, s.Trigger = *l.Layer.Trigger, l.Name
		}
		if l.Layer.NoKey != "" {
			p.NoKey, s.NoKey = l.Layer.NoKey, l.Name
		}
	}
	return p, s
}

// Check reports a setting outside its allowed values.
func (l Layer) Check() error {
	switch l.Encrypt {
	case "", EncryptNever, EncryptIfKey, EncryptAlways:
	default:
		return fmt.Errorf("secure: encrypt %q: want never, if-key or always", l.Encrypt)
	}
	switch l.Sign {
	case "", SignNever, SignAlways:
	default:
		return fmt.Errorf("secure: sign %q: want never or always", l.Sign)
	}
	switch l.Method {
	case "", MethodSMIME, MethodPGP:
	default:
		return fmt.Errorf("secure: method %q: want smime or pgp", l.Method)
	}
	switch l.NoKey {
	case "", NoKeyReject, NoKeyBounce:
	default:
		return fmt.Errorf("secure: no-key %q: want reject or bounce", l.NoKey)
	}
	if l.Trigger != nil && strings.ContainsFunc(*l.Trigger, unicode.IsControl) {
		return fmt.Errorf("secure: the subject trigger %q must be one line without control characters", *l.Trigger)
	}
	return nil
}
