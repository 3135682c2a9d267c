package secure

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/smallstep/pkcs7"
)

// S/MIME (RFC 8551) with github.com/smallstep/pkcs7: EnvelopedData with
// AES-256-CBC content encryption (RFC 3565) and RSA key transport, and
// detached SignedData with SHA-256. DES, 3DES and RC2 are never emitted
// (they are read, as RFC 8551 §2.7 allows for old mail).
//
// The library takes its encryption algorithms from package variables. They
// are set under smimeMu for each call, so that the key transport can be
// chosen per gateway (KeyTransport) without two calls racing.
var smimeMu sync.Mutex

// KeyTransport is the RSA key transport of outgoing S/MIME.
type KeyTransport string

// Key transports. RFC 8551 §2.3: RSAES-OAEP SHOULD+ be sent, RSA PKCS #1
// v1.5 MUST be read (both are).
const (
	// TransportOAEP is RSAES-OAEP with RFC 3560's default parameters
	// (SHA-1, MGF1 with SHA-1): the library names only the hash in the
	// parameters and masks with the same hash, so SHA-1 is the choice
	// every reader (OpenSSL, NSS, Outlook) takes the same way.
	TransportOAEP KeyTransport = "oaep"
	// TransportPKCS1 is RSA PKCS #1 v1.5 (rsaEncryption), for old readers.
	TransportPKCS1 KeyTransport = "pkcs1"
)

// smimeEncrypt returns the DER EnvelopedData of entity for certs.
func smimeEncrypt(entity []byte, certs []*x509.Certificate, kt KeyTransport) ([]byte, error) {
	smimeMu.Lock()
	defer smimeMu.Unlock()
	pkcs7.ContentEncryptionAlgorithm = pkcs7.EncryptionAlgorithmAES256CBC
	if kt == TransportPKCS1 {
		pkcs7.KeyEncryptionAlgorithm = pkcs7.OIDEncryptionAlgorithmRSA
	} else {
		pkcs7.KeyEncryptionAlgorithm = pkcs7.OIDEncryptionAlgorithmRSAESOAEP
		pkcs7.KeyEncryptionHash = crypto.SHA1
	}
	return pkcs7.Encrypt(entity, certs)
}

// smimeSign returns a detached SignedData (SHA-256) over entity, with the
// signer's certificate and its chain.
func smimeSign(entity []byte, cert *x509.Certificate, key crypto.PrivateKey, chain []*x509.Certificate) ([]byte, error) {
	sd, err := pkcs7.NewSignedData(entity)
	if err != nil {
		return nil, err
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSignerChain(cert, key, chain, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, err
	}
	sd.Detach()
	return sd.Finish()
}

// errNoRecipientKey: the message is not encrypted for any key we hold.
var errNoRecipientKey = errors.New("secure: encrypted for none of the keys held")

// smimeDecrypt decrypts an EnvelopedData with the first key it was
// encrypted for; it returns the content and the key used.
func smimeDecrypt(der []byte, keys []PrivateKey) ([]byte, *PrivateKey, error) {
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, nil, fmt.Errorf("secure: S/MIME: %w", err)
	}
	for i := range keys {
		k := &keys[i]
		if k.Kind != KindSMIME {
			continue
		}
		cert, key, err := parseSMIMEKey(k)
		if err != nil {
			continue
		}
		out, err := p7.Decrypt(cert, key)
		if err == nil {
			return out, k, nil
		}
		if errors.Is(err, pkcs7.ErrNotEncryptedContent) {
			return nil, nil, fmt.Errorf("secure: S/MIME: %w", err)
		}
	}
	return nil, nil, errNoRecipientKey
}

// smimeVerdict is the outcome of an S/MIME signature check.
type smimeVerdict struct {
	signer  *x509.Certificate // the one signer's certificate; nil when there are several
	trusted bool              // the signer's chain ends in a root we trust, or the signer is a pinned certificate; valid now
	err     error             // the signature itself is bad
	chain   error             // why the chain is not trusted
}

// smimeVerify checks a SignedData: over content when detached (content
// non-nil), else over the content it carries, which it returns. roots are
// the trust anchors; pinned are certificates (DER) trusted as the signer
// itself, never as an issuer: the directory's certificates of the sender.
func smimeVerify(der, content []byte, roots *x509.CertPool, pinned [][]byte, now time.Time) (smimeVerdict, []byte) {
	var v smimeVerdict
	p7, err := pkcs7.Parse(der)
	if err != nil {
		v.err = fmt.Errorf("secure: S/MIME signature: %w", err)
		return v, nil
	}
	if content != nil {
		p7.Content = content
	}
	// The certificate of the signer, found by its issuer and serial
	// number; not any certificate the message carries. With several
	// signers no one of them speaks for the message: not trusted.
	v.signer = p7.GetOnlySigner()
	// The signature first, without the chain: a bad signature is bad
	// whoever signed; then the chain, at the time of delivery.
	if err := p7.VerifyWithChain(nil); err != nil {
		v.err = err
		return v, p7.Content
	}
	if v.signer == nil {
		v.chain = errors.New("several signers")
		return v, p7.Content
	}
	if roots != nil {
		if err := p7.VerifyWithChainAtTime(roots, now); err != nil {
			v.chain = err
		} else {
			v.trusted = true
		}
	}
	if !v.trusted && slices.ContainsFunc(pinned, func(c []byte) bool { return bytes.Equal(c, v.signer.Raw) }) {
		if now.Before(v.signer.NotBefore) || now.After(v.signer.NotAfter) {
			v.chain = fmt.Errorf("certificate %s expired or not yet valid", Fingerprint(v.signer.Raw))
		} else {
			v.trusted, v.chain = true, nil
		}
	}
	return v, p7.Content
}

// usableForEncryption reports whether an S/MIME certificate can take mail
// now: valid at now, an RSA key, and key encipherment allowed when the
// certificate says anything about key usage.
func usableForEncryption(c *x509.Certificate, now time.Time) error {
	if now.Before(c.NotBefore) || now.After(c.NotAfter) {
		return fmt.Errorf("certificate %s expired or not yet valid (%s to %s)", Fingerprint(c.Raw), c.NotBefore.Format(time.DateOnly), c.NotAfter.Format(time.DateOnly))
	}
	if c.PublicKeyAlgorithm != x509.RSA {
		return fmt.Errorf("certificate %s has a %s key: S/MIME encryption here needs RSA", Fingerprint(c.Raw), c.PublicKeyAlgorithm)
	}
	if c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageKeyEncipherment == 0 {
		return fmt.Errorf("certificate %s does not allow key encipherment", Fingerprint(c.Raw))
	}
	return nil
}

// parseSMIMEKey parses an S/MIME private key and its certificate.
func parseSMIMEKey(k *PrivateKey) (*x509.Certificate, crypto.PrivateKey, error) {
	cert, err := x509.ParseCertificate(k.Cert)
	if err != nil {
		return nil, nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(k.Key)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// SMIMECertificates returns the end-entity certificates (DER) of a
// userSMIMECertificate value: a PKCS#7 SignedData that carries certificates
// (RFC 2798 §2.8, the form mail clients publish in address books; the
// signature, if any, is not checked, as for userCertificate). CA
// certificates in it (basic constraints CA:TRUE) are left out: they are
// the chain, never a recipient's key. It fails when der is not such a
// structure.
func SMIMECertificates(der []byte) ([][]byte, error) {
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, fmt.Errorf("secure: userSMIMECertificate: %w", err)
	}
	var out [][]byte
	for _, c := range p7.Certificates {
		if !c.IsCA {
			out = append(out, c.Raw)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("secure: userSMIMECertificate: no end-entity certificate")
	}
	return out, nil
}
