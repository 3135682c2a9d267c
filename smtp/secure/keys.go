package secure

import "context"

// Key kinds.
const (
	KindSMIME = "smime" // an X.509 certificate (DER) and its key (PKCS #8 DER)
	KindPGP   = "pgp"   // an OpenPGP key, ASCII armoured
	KindDKIM  = "dkim"  // a DKIM signing key (PKCS #8 DER) and its selector
	KindCA    = "ca"    // a CA certificate trusted for S/MIME chains
)

// PublicKey is a certificate or public key the directory holds for an
// address or a domain.
type PublicKey struct {
	Owner  string `json:"owner"`  // the address or domain it was found under
	Domain bool   `json:"domain"` // a domain key (domain encryption)
	Kind   string `json:"kind"`   // KindSMIME, KindPGP or KindCA
	Data   []byte `json:"data"`   // DER certificate or armoured OpenPGP key
}

// PrivateKey is a private key of an internal address or domain, decrypted
// for one use. It lives in memory only: whoever holds one drops it after
// the message.
type PrivateKey struct {
	Owner       string `json:"owner"`
	Domain      bool   `json:"domain"`
	Kind        string `json:"kind"`
	Fingerprint string `json:"fingerprint"`
	Cert        []byte `json:"cert,omitempty"`     // S/MIME: the DER certificate
	Key         []byte `json:"key"`                // PKCS #8 DER, or the armoured OpenPGP secret key
	Selector    string `json:"selector,omitempty"` // DKIM
}

// Keys is what the secure step needs from the directory. The appliance
// implements it on its store (a backend) or by asking a backend per
// message (a frontend). Addresses and domains are passed lower-cased.
type Keys interface {
	// Managed reports whether a domain is one the gateway manages:
	// addresses in it are internal.
	Managed(ctx context.Context, domain string) (bool, error)
	// Policy returns the effective policy of an internal address: the
	// user's settings over its domain's over the global ones.
	Policy(ctx context.Context, address string) (Policy, error)
	// Public returns the certificates and public keys known for an
	// address, then those of its domain (Domain set). An address's own
	// S/MIME certificates vouch for signatures made with exactly them
	// (pinned), never for certificates issued with their keys.
	Public(ctx context.Context, address string) ([]PublicKey, error)
	// Private returns the private keys of an internal address, then those
	// of its domain (Domain set), decrypted.
	Private(ctx context.Context, address string) ([]PrivateKey, error)
	// DKIM returns the DKIM key of a managed domain; ok false when it has
	// none.
	DKIM(ctx context.Context, domain string) (k PrivateKey, ok bool, err error)
	// Roots returns the CA certificates (DER) that S/MIME chains may end
	// in, besides the system's: the internal CA and imported ones. One
	// without basicConstraints CA:TRUE is not used.
	Roots(ctx context.Context) ([][]byte, error)
	// Collect keeps the certificate of a valid signature of incoming mail
	// for its sender's address, for mail back to them.
	Collect(ctx context.Context, address string, cert []byte) error
}
