package secure

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// OpenPGP (RFC 9580, RFC 4880 keys) with github.com/ProtonMail/go-crypto:
// version 4 keys that GnuPG 2.2 reads, AES-256 and SHA-256 preferred,
// messages integrity-protected (SEIPD).

// pgpConfig is the configuration of every OpenPGP operation.
func pgpConfig(now time.Time) *packet.Config {
	return &packet.Config{
		DefaultHash:            crypto.SHA256,
		DefaultCipher:          packet.CipherAES256,
		DefaultCompressionAlgo: packet.CompressionNone,
		Time:                   func() time.Time { return now },
	}
}

// maxPGPInput bounds what an armoured block may decode to.
const maxPGPInput = 32 << 20

// readEntities parses armoured keys (public or secret), ignoring blocks
// that are not keys.
func readEntities(armoured []byte) (openpgp.EntityList, error) {
	return openpgp.ReadArmoredKeyRing(bytes.NewReader(armoured))
}

// pgpEncrypt encrypts (and signs when signer is not nil) entity for to,
// armoured.
func pgpEncrypt(entity []byte, to openpgp.EntityList, signer *openpgp.Entity, now time.Time) ([]byte, error) {
	var out bytes.Buffer
	aw, err := armor.Encode(&out, "PGP MESSAGE", nil)
	if err != nil {
		return nil, err
	}
	w, err := openpgp.Encrypt(aw, to, signer, &openpgp.FileHints{IsBinary: true}, pgpConfig(now))
	if err != nil {
		return nil, fmt.Errorf("secure: OpenPGP encrypt: %w", err)
	}
	if _, err := w.Write(entity); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if err := aw.Close(); err != nil {
		return nil, err
	}
	out.WriteString("\n")
	return out.Bytes(), nil
}

// pgpSign returns an armoured detached signature over entity (RFC 3156
// §5: the canonical CRLF octets of the signed part).
func pgpSign(entity []byte, signer *openpgp.Entity, now time.Time) ([]byte, error) {
	var out bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&out, signer, bytes.NewReader(entity), pgpConfig(now)); err != nil {
		return nil, fmt.Errorf("secure: OpenPGP sign: %w", err)
	}
	out.WriteString("\n")
	return out.Bytes(), nil
}

// pgpVerdict is the outcome of an OpenPGP signature check.
type pgpVerdict struct {
	signed bool
	signer *openpgp.Entity // known when the key is in the keyring
	keyID  uint64
	err    error
}

// pgpDecrypt decrypts an armoured message with the secret keys in ring
// (which also holds the public keys a signature inside is checked with).
func pgpDecrypt(armoured []byte, ring openpgp.EntityList, now time.Time) ([]byte, pgpVerdict, *openpgp.Entity, error) {
	var v pgpVerdict
	block, err := armor.Decode(bytes.NewReader(armoured))
	if err != nil {
		return nil, v, nil, fmt.Errorf("secure: OpenPGP: %w", err)
	}
	if block.Type != "PGP MESSAGE" {
		return nil, v, nil, fmt.Errorf("secure: OpenPGP: armour %q, want PGP MESSAGE", block.Type)
	}
	md, err := openpgp.ReadMessage(block.Body, ring, nil, pgpConfig(now))
	if err != nil {
		if errors.Is(err, pgperrors.ErrKeyIncorrect) {
			return nil, v, nil, errNoRecipientKey
		}
		return nil, v, nil, fmt.Errorf("secure: OpenPGP: %w", err)
	}
	if !md.IsEncrypted {
		return nil, v, nil, errors.New("secure: OpenPGP: the message is not encrypted")
	}
	body, err := io.ReadAll(io.LimitReader(md.UnverifiedBody, maxPGPInput+1))
	if err != nil {
		return nil, v, nil, fmt.Errorf("secure: OpenPGP: %w", err)
	}
	if len(body) > maxPGPInput {
		return nil, v, nil, errors.New("secure: OpenPGP: message too large")
	}
	var used *openpgp.Entity
	if md.DecryptedWith.Entity != nil {
		used = md.DecryptedWith.Entity
	}
	if md.IsSigned {
		v.signed, v.keyID, v.signer = true, md.SignedByKeyId, nil
		if md.SignedBy != nil {
			v.signer = md.SignedBy.Entity
		}
		v.err = md.SignatureError
		if v.signer == nil && v.err == nil {
			v.err = errors.New("signer's key unknown")
		}
	}
	return body, v, used, nil
}

// pgpVerify checks an armoured detached signature over entity with ring.
func pgpVerify(entity, sig []byte, ring openpgp.EntityList, now time.Time) pgpVerdict {
	v := pgpVerdict{signed: true}
	signer, err := openpgp.CheckArmoredDetachedSignature(ring, bytes.NewReader(entity), bytes.NewReader(sig), pgpConfig(now))
	v.signer, v.err = signer, err
	return v
}

// pgpFingerprint is the upper-case hex fingerprint of an entity's primary key.
func pgpFingerprint(e *openpgp.Entity) string {
	return strings.ToUpper(fmt.Sprintf("%x", e.PrimaryKey.Fingerprint))
}

// pgpEncryptable reports whether an entity has a key that can encrypt now.
func pgpEncryptable(e *openpgp.Entity, now time.Time) bool {
	_, ok := e.EncryptionKey(now)
	return ok
}
