package secure

import (
	"bytes"
	"crypto/x509"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// Building the protected message: the outer fields stay, the entity (the
// Content-* fields and the body) is signed and/or encrypted into a new
// entity (RFC 8551 §3, RFC 3156 §4-6).

// message writes outer fields, MIME-Version and the new entity.
func message(outer []field, entity []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(entity) + 2048)
	b.Write(join(outer))
	b.WriteString("MIME-Version: 1.0\r\n")
	b.Write(entity)
	return b.Bytes()
}

// smimeEnvelopedEntity is application/pkcs7-mime enveloped-data (RFC 8551 §3.3).
func smimeEnvelopedEntity(der []byte) []byte {
	var b bytes.Buffer
	b.WriteString("Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=\"smime.p7m\"\r\n")
	b.WriteString("Content-Transfer-Encoding: base64\r\n")
	b.WriteString("Content-Disposition: attachment; filename=\"smime.p7m\"\r\n")
	b.WriteString("Content-Description: S/MIME Encrypted Message\r\n\r\n")
	b.Write(base64Lines(der))
	return b.Bytes()
}

// smimeSignedEntity is multipart/signed with a detached signature (RFC
// 8551 §3.5.3) over the exact octets of entity.
func smimeSignedEntity(entity []byte, sig []byte) []byte {
	bd := newBoundary()
	var b bytes.Buffer
	b.WriteString("Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256;\r\n boundary=\"" + bd + "\"\r\n\r\n")
	b.WriteString("This is an S/MIME signed message.\r\n\r\n--" + bd + "\r\n")
	b.Write(entity)
	b.WriteString("\r\n--" + bd + "\r\n")
	b.WriteString("Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n")
	b.WriteString("Content-Transfer-Encoding: base64\r\n")
	b.WriteString("Content-Disposition: attachment; filename=\"smime.p7s\"\r\n")
	b.WriteString("Content-Description: S/MIME Cryptographic Signature\r\n\r\n")
	b.Write(base64Lines(sig))
	b.WriteString("\r\n--" + bd + "--\r\n")
	return b.Bytes()
}

// pgpEncryptedEntity is multipart/encrypted (RFC 3156 §4).
func pgpEncryptedEntity(armoured []byte) []byte {
	bd := newBoundary()
	var b bytes.Buffer
	b.WriteString("Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\";\r\n boundary=\"" + bd + "\"\r\n\r\n")
	b.WriteString("This is an OpenPGP/MIME encrypted message (RFC 3156).\r\n\r\n--" + bd + "\r\n")
	b.WriteString("Content-Type: application/pgp-encrypted\r\nContent-Description: PGP/MIME version identification\r\n\r\nVersion: 1\r\n\r\n--" + bd + "\r\n")
	b.WriteString("Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n")
	b.WriteString("Content-Description: OpenPGP encrypted message\r\n")
	b.WriteString("Content-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n")
	b.Write(crlf(armoured))
	b.WriteString("\r\n--" + bd + "--\r\n")
	return b.Bytes()
}

// pgpSignedEntity is multipart/signed with an OpenPGP signature (RFC 3156 §5).
func pgpSignedEntity(entity, sig []byte) []byte {
	bd := newBoundary()
	var b bytes.Buffer
	b.WriteString("Content-Type: multipart/signed; micalg=pgp-sha256; protocol=\"application/pgp-signature\";\r\n boundary=\"" + bd + "\"\r\n\r\n")
	b.WriteString("This is an OpenPGP/MIME signed message (RFC 3156).\r\n\r\n--" + bd + "\r\n")
	b.Write(entity)
	b.WriteString("\r\n--" + bd + "\r\n")
	b.WriteString("Content-Type: application/pgp-signature; name=\"signature.asc\"\r\n")
	b.WriteString("Content-Description: OpenPGP digital signature\r\n")
	b.WriteString("Content-Disposition: attachment; filename=\"signature.asc\"\r\n\r\n")
	b.Write(crlf(sig))
	b.WriteString("\r\n--" + bd + "--\r\n")
	return b.Bytes()
}

// signer is a signing key ready to use.
type signer struct {
	kind  string
	fpr   string
	cert  *x509.Certificate
	chain []*x509.Certificate
	key   any
	pgp   *openpgp.Entity
}

// recipientKey is an encryption key chosen for a recipient.
type recipientKey struct {
	kind  string
	fpr   string
	owner string
	cert  *x509.Certificate
	pgp   *openpgp.Entity
}

// protect signs (s non-nil) and encrypts (rk non-nil) entity. sevenBit
// converts an entity to 7 bit before it is signed (RFC 8551 §3.1.1).
func protect(entity []byte, s *signer, rk *recipientKey, kt KeyTransport, now time.Time, sevenBit func([]byte) ([]byte, error)) ([]byte, error) {
	// RFC 3156 §6.2: OpenPGP signs inside its encryption; every other
	// combination signs first (multipart/signed), then encrypts that.
	if s != nil && !(rk != nil && rk.kind == KindPGP && s.kind == KindPGP) {
		e7, err := sevenBit(entity)
		if err != nil {
			return nil, err
		}
		var sig []byte
		if s.kind == KindSMIME {
			if sig, err = smimeSign(e7, s.cert, s.key, s.chain); err != nil {
				return nil, err
			}
			entity = smimeSignedEntity(e7, sig)
		} else {
			if sig, err = pgpSign(e7, s.pgp, now); err != nil {
				return nil, err
			}
			entity = pgpSignedEntity(e7, sig)
		}
		s = nil
	}
	if rk == nil {
		return entity, nil
	}
	switch rk.kind {
	case KindSMIME:
		der, err := smimeEncrypt(entity, []*x509.Certificate{rk.cert}, kt)
		if err != nil {
			return nil, err
		}
		return smimeEnvelopedEntity(der), nil
	default:
		var se *openpgp.Entity
		if s != nil {
			se = s.pgp
		}
		arm, err := pgpEncrypt(entity, openpgp.EntityList{rk.pgp}, se, now)
		if err != nil {
			return nil, err
		}
		return pgpEncryptedEntity(arm), nil
	}
}
