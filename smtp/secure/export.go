package secure

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"software.sslmate.com/src/go-pkcs12"
)

// SplitPGP reads the keys of armoured OpenPGP blocks (a public or secret
// key export) and returns, per key, its armoured public key, its armoured
// secret key (unprotected, nil for a public key; a protected one is opened
// with password), the e-mail address of its primary identity and its
// fingerprint.
func SplitPGP(data []byte, password string) (pub, sec [][]byte, owners, fprs []string, err error) {
	rest := data
	for n := 0; n < 100; n++ {
		i := bytes.Index(rest, []byte("-----BEGIN PGP"))
		if i < 0 {
			break
		}
		rest = rest[i:]
		block, err := armor.Decode(bytes.NewReader(rest))
		if err != nil {
			return nil, nil, nil, nil, fmt.Errorf("secure: OpenPGP armour: %w", err)
		}
		end := bytes.Index(rest, []byte("-----END PGP"))
		if end < 0 {
			break
		}
		stop := len(rest)
		if nl := bytes.IndexByte(rest[end:], '\n'); nl >= 0 {
			stop = end + nl + 1
		}
		chunk := rest[:stop]
		rest = rest[stop:]
		if block.Type != openpgp.PublicKeyType && block.Type != openpgp.PrivateKeyType {
			continue
		}
		es, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(chunk))
		if err != nil {
			return nil, nil, nil, nil, fmt.Errorf("secure: OpenPGP key: %w", err)
		}
		for _, e := range es {
			if e.PrivateKey != nil && e.PrivateKey.Encrypted {
				if password == "" {
					return nil, nil, nil, nil, errors.New("secure: the OpenPGP secret key is protected: give --password-file")
				}
				if err := e.DecryptPrivateKeys([]byte(password)); err != nil {
					return nil, nil, nil, nil, fmt.Errorf("secure: the OpenPGP secret key does not open with the password: %w", err)
				}
			}
			p, err := armorEntity(e, false)
			if err != nil {
				return nil, nil, nil, nil, err
			}
			var s []byte
			if e.PrivateKey != nil {
				if s, err = armorEntity(e, true); err != nil {
					return nil, nil, nil, nil, err
				}
			}
			addr := ""
			if id := e.PrimaryIdentity(); id != nil && id.UserId != nil {
				addr = id.UserId.Email
			}
			pub, sec, owners, fprs = append(pub, p), append(sec, s), append(owners, addr), append(fprs, pgpFingerprint(e))
		}
	}
	if len(pub) == 0 {
		return nil, nil, nil, nil, errors.New("secure: no OpenPGP key in the file")
	}
	return pub, sec, owners, fprs, nil
}

// ExportPrivate returns a private key protected by password: S/MIME as
// PKCS #12 (AES-256, PBKDF2: go-pkcs12's Modern2023), OpenPGP as an
// armoured secret key encrypted with the password.
func ExportPrivate(pk PrivateKey, password string) ([]byte, error) {
	switch pk.Kind {
	case KindSMIME:
		cert, key, err := parseSMIMEKey(&pk)
		if err != nil {
			return nil, err
		}
		return pkcs12.Modern2023.WithRand(rand.Reader).Encode(key, cert, []*x509.Certificate{}, password)
	case KindPGP:
		es, err := readEntities(pk.Key)
		if err != nil || len(es) == 0 {
			return nil, fmt.Errorf("secure: OpenPGP key: %v", err)
		}
		if err := es[0].EncryptPrivateKeys([]byte(password), nil); err != nil {
			return nil, err
		}
		return armorEntity(es[0], true)
	}
	return nil, fmt.Errorf("secure: %s keys are not exported", pk.Kind)
}
