package secure

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Key material formats for the appliance's `postern keys` and `postern ca`:
// generation, fingerprints and descriptions. Nothing here stores or logs a
// key; the caller keeps private keys encrypted at rest.

// Fingerprint is the SHA-256 fingerprint of a DER certificate as OpenSSL
// prints it (`openssl x509 -fingerprint -sha256`): upper-case hex pairs
// joined by colons.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// Algorithms of generated keys.
const (
	AlgoRSA3072 = "rsa3072"
	AlgoECDSA   = "ecdsa"   // P-256: S/MIME signing only, DKIM no
	AlgoEd25519 = "ed25519" // OpenPGP (EdDSA and X25519) and DKIM
)

func newSigner(algo string) (crypto.Signer, error) {
	switch algo {
	case "", AlgoRSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case AlgoECDSA:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgoEd25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("secure: unknown algorithm %q (want rsa3072, ecdsa or ed25519)", algo)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	return n.Add(n, big.NewInt(1))
}

// Issuer is a CA that signs S/MIME certificates.
type Issuer struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA makes the internal CA: a self-signed certificate (ECDSA P-256 or
// RSA 3072) valid for ten years. It returns the DER certificate and the
// PKCS #8 key.
func NewCA(name, algo string, now time.Time) (cert, key []byte, err error) {
	if algo == "" {
		algo = AlgoECDSA
	}
	if algo == AlgoEd25519 {
		return nil, nil, errors.New("secure: an S/MIME CA needs rsa3072 or ecdsa")
	}
	k, err := newSigner(algo)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: name, Organization: []string{"Postern"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	cert, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		return nil, nil, err
	}
	key, err = x509.MarshalPKCS8PrivateKey(k)
	return cert, key, err
}

// NewSMIME makes an S/MIME certificate for an address (or a domain: its
// name as subject, for domain encryption), issued by ca or, when ca is
// nil, self-signed; valid for two years. RSA keys may sign and encrypt,
// ECDSA keys only sign.
func NewSMIME(owner, algo string, ca *Issuer, now time.Time) (cert, key []byte, err error) {
	if algo == AlgoEd25519 {
		return nil, nil, errors.New("secure: S/MIME keys here are rsa3072 or ecdsa")
	}
	k, err := newSigner(algo)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: owner},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(2, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
	}
	if _, ok := k.(*rsa.PrivateKey); ok {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	if strings.Contains(owner, "@") {
		tmpl.EmailAddresses = []string{owner}
	}
	parent, signKey := tmpl, crypto.Signer(k)
	if ca != nil {
		parent, signKey = ca.Cert, ca.Key
	}
	cert, err = x509.CreateCertificate(rand.Reader, tmpl, parent, k.Public(), signKey)
	if err != nil {
		return nil, nil, err
	}
	key, err = x509.MarshalPKCS8PrivateKey(k)
	return cert, key, err
}

// NewPGP makes an OpenPGP key (version 4: RSA 3072, or Ed25519 with an
// X25519 encryption subkey) for an address or a domain. It returns the
// armoured secret key, the armoured public key and the fingerprint.
func NewPGP(owner, algo string, now time.Time) (secret, public []byte, fpr string, err error) {
	cfg := pgpConfig(now)
	switch algo {
	case "", AlgoRSA3072:
		cfg.Algorithm, cfg.RSABits = packet.PubKeyAlgoRSA, 3072
	case AlgoEd25519:
		cfg.Algorithm = packet.PubKeyAlgoEdDSA
	default:
		return nil, nil, "", fmt.Errorf("secure: OpenPGP keys here are rsa3072 or ed25519")
	}
	email := owner
	if !strings.Contains(owner, "@") {
		email = "postmaster@" + owner
	}
	e, err := openpgp.NewEntity(owner, "Postern", email, cfg)
	if err != nil {
		return nil, nil, "", err
	}
	secret, err = armorEntity(e, true)
	if err != nil {
		return nil, nil, "", err
	}
	public, err = armorEntity(e, false)
	return secret, public, pgpFingerprint(e), err
}

// armorEntity serialises an entity, armoured.
func armorEntity(e *openpgp.Entity, private bool) ([]byte, error) {
	var b bytes.Buffer
	typ := openpgp.PublicKeyType
	if private {
		typ = openpgp.PrivateKeyType
	}
	w, err := armor.Encode(&b, typ, nil)
	if err != nil {
		return nil, err
	}
	if private {
		err = e.SerializePrivateWithoutSigning(w, nil) // the self-signatures are there; a protected key cannot sign again
	} else {
		err = e.Serialize(w)
	}
	if err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	b.WriteString("\n")
	return b.Bytes(), nil
}

// NewDKIM makes a DKIM key (RSA 2048, the size DNS TXT records and every
// verifier take, or Ed25519, RFC 8463): PKCS #8 and the public key's
// SubjectPublicKeyInfo, both DER.
func NewDKIM(algo string) (key, spki []byte, err error) {
	var k crypto.Signer
	switch algo {
	case "", "rsa", AlgoRSA3072:
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case AlgoEd25519:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, nil, fmt.Errorf("secure: DKIM keys are rsa (2048) or ed25519")
	}
	if err != nil {
		return nil, nil, err
	}
	if key, err = x509.MarshalPKCS8PrivateKey(k); err != nil {
		return nil, nil, err
	}
	spki, err = x509.MarshalPKIXPublicKey(k.Public())
	return key, spki, err
}

// DKIMRecord returns the DNS TXT record that publishes a DKIM public key
// (RFC 6376 §3.6.1; RFC 8463 §4.2 for Ed25519, whose p= is the raw key).
func DKIMRecord(domain, selector string, spki []byte) (name, value string, err error) {
	pub, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return "", "", err
	}
	k, p := "rsa", base64.StdEncoding.EncodeToString(spki)
	if ek, ok := pub.(ed25519.PublicKey); ok {
		k, p = "ed25519", base64.StdEncoding.EncodeToString(ek)
	}
	return selector + "._domainkey." + domain, "v=DKIM1; k=" + k + "; p=" + p, nil
}

// Info describes a certificate or key for `postern keys list`.
type Info struct {
	Kind        string    `json:"kind"`
	Fingerprint string    `json:"fingerprint"`
	Subject     string    `json:"subject"`
	Algorithm   string    `json:"algorithm"`
	NotBefore   time.Time `json:"not_before,omitzero"`
	NotAfter    time.Time `json:"not_after,omitzero"`
	Usage       []string  `json:"usage"`
	Issuer      string    `json:"issuer,omitempty"`
}

// DescribeCert describes a DER certificate.
func DescribeCert(kind string, der []byte) (Info, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return Info{}, err
	}
	in := Info{Kind: kind, Fingerprint: Fingerprint(der), Subject: c.Subject.String(), Algorithm: c.PublicKeyAlgorithm.String(),
		NotBefore: c.NotBefore, NotAfter: c.NotAfter, Issuer: c.Issuer.String()}
	if c.KeyUsage&x509.KeyUsageDigitalSignature != 0 {
		in.Usage = append(in.Usage, "sign")
	}
	if c.KeyUsage&x509.KeyUsageKeyEncipherment != 0 || (c.KeyUsage == 0 && c.PublicKeyAlgorithm == x509.RSA) {
		in.Usage = append(in.Usage, "encrypt")
	}
	if c.IsCA {
		in.Usage = append(in.Usage, "ca")
	}
	return in, nil
}

// DescribePGP describes the keys of an armoured OpenPGP block.
func DescribePGP(armoured []byte, now time.Time) ([]Info, error) {
	es, err := readEntities(armoured)
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, e := range es {
		in := Info{Kind: KindPGP, Fingerprint: pgpFingerprint(e), Algorithm: pgpAlgo(e.PrimaryKey.PubKeyAlgo), NotBefore: e.PrimaryKey.CreationTime}
		if id := e.PrimaryIdentity(); id != nil {
			in.Subject = id.Name
			if id.SelfSignature != nil && id.SelfSignature.KeyLifetimeSecs != nil && *id.SelfSignature.KeyLifetimeSecs > 0 {
				in.NotAfter = e.PrimaryKey.CreationTime.Add(time.Duration(*id.SelfSignature.KeyLifetimeSecs) * time.Second)
			}
		}
		if _, ok := e.SigningKey(now); ok {
			in.Usage = append(in.Usage, "sign")
		}
		if _, ok := e.EncryptionKey(now); ok {
			in.Usage = append(in.Usage, "encrypt")
		}
		out = append(out, in)
	}
	return out, nil
}

func pgpAlgo(a packet.PublicKeyAlgorithm) string {
	switch a {
	case packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSASignOnly, packet.PubKeyAlgoRSAEncryptOnly:
		return "RSA"
	case packet.PubKeyAlgoEdDSA, packet.PubKeyAlgoEd25519:
		return "Ed25519"
	case packet.PubKeyAlgoECDSA:
		return "ECDSA"
	}
	return fmt.Sprintf("algorithm %d", a)
}

// PGPFingerprints returns the fingerprints of the keys of an armoured block.
func PGPFingerprints(armoured []byte) ([]string, error) {
	es, err := readEntities(armoured)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range es {
		out = append(out, pgpFingerprint(e))
	}
	return out, nil
}
