package appliance

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strconv"
	"strings"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"postern/ldapstore"
	"postern/smtp/secure"
)

// KeyImport is `postern keys import FILE`.
type KeyImport struct {
	Owner    string `json:"owner,omitempty"` // default: the certificate's or key's address
	Data     []byte `json:"data"`
	Password string `json:"password,omitempty"` // PKCS #12, or a protected OpenPGP secret key
	CA       bool   `json:"ca,omitempty"`       // trust the certificates as S/MIME roots
}

// maxKeyFile bounds a certificate or key file (`keys import`), as the
// data directory's scan for key material (keymaterial.go) reads files.
const maxKeyFile = 16 << 20

// ImportKeys stores the certificates and keys of a file: PEM (certificates,
// PKCS #8/PKCS #1/SEC 1 keys), DER, PKCS #12 or armoured OpenPGP. A
// certificate or key is stored only for an address or domain it names
// (secure.CertNames, the user IDs of an OpenPGP key); with CA set, the
// certificates become trust anchors and must be CA certificates.
func (a *Appliance) ImportKeys(ctx context.Context, req KeyImport) ([]KeyInfo, error) {
	data := req.Data
	if len(data) > maxKeyFile {
		return nil, badRequest("the file has %d bytes, more than the %d MiB a certificate or key file may have", len(data), maxKeyFile>>20)
	}
	if req.Owner != "" {
		if req.CA {
			return nil, badRequest("--ca makes trust anchors, which belong to no address: leave out --owner")
		}
		if err := checkOwnerName(req.Owner); err != nil {
			return nil, badRequest("--owner: %v", err)
		}
	}
	if bytes.Contains(data, []byte("-----BEGIN PGP")) {
		return a.importPGP(ctx, req)
	}
	var certs []*x509.Certificate
	var key any
	switch {
	case bytes.Contains(data, []byte("-----BEGIN ")):
		for rest := data; ; {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			switch b.Type {
			case "CERTIFICATE":
				c, err := x509.ParseCertificate(b.Bytes)
				if err != nil {
					return nil, badRequest("a certificate in the file: %v", err)
				}
				certs = append(certs, c)
			case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
				k, err := parsePrivateKey(b.Bytes)
				if err != nil {
					return nil, badRequest("the private key in the file: %v", err)
				}
				key = k
			case "ENCRYPTED PRIVATE KEY":
				return nil, badRequest("encrypted PEM keys are not read: convert to PKCS #12 (openssl pkcs12 -export)")
			}
		}
	default:
		if c, err := x509.ParseCertificate(data); err == nil {
			certs = append(certs, c)
		} else {
			k, c, cas, err := pkcs12.DecodeChain(data, req.Password)
			if err != nil {
				return nil, badRequest("not a PEM, DER, PKCS #12 or OpenPGP file (or a wrong PKCS #12 password): %v", err)
			}
			key, certs = k, append([]*x509.Certificate{c}, cas...)
		}
	}
	if len(certs) == 0 {
		return nil, badRequest("no certificate in the file")
	}
	if req.CA {
		// Only a CA certificate is an issuer: a partner's certificate
		// imported without --ca vouches for its own signatures only.
		for _, c := range certs {
			if !c.BasicConstraintsValid || !c.IsCA {
				return nil, badRequest("certificate %s (%s) is not a CA certificate (no basicConstraints CA:TRUE): import it without --ca, for the address it names",
					secure.Fingerprint(c.Raw), c.Subject)
			}
		}
		o := &owner{name: trustOwner}
		home, err := a.home(ctx, o)
		if err != nil {
			return nil, err
		}
		for _, c := range certs {
			if err := a.addValues(ctx, home, attrCACert, string(c.Raw)); err != nil {
				return nil, err
			}
		}
		return a.ListKeys(ctx, trustOwner)
	}
	leaf := certs[0]
	if key != nil {
		for _, c := range certs {
			if sameKey(c, key) {
				leaf = c
			}
		}
	}
	name := req.Owner
	if name == "" {
		if addrs := secure.CertAddresses(leaf); len(addrs) > 0 {
			name = addrs[0]
		} else {
			name = leaf.Subject.CommonName
		}
		if err := checkOwnerName(name); err != nil {
			return nil, badRequest("whose certificate? it names %s: give --owner ADDRESS|DOMAIN that it names (%v)", certNames(leaf), err)
		}
	}
	o, err := a.findOwner(ctx, name)
	if err != nil {
		return nil, badRequest("whose certificate? give --owner ADDRESS|DOMAIN (%v)", err)
	}
	if !secure.CertNames(leaf, o.name) {
		return nil, badRequest("the certificate names %s, not %s: a certificate is kept only for an address (or domain) it names", certNames(leaf), o.name)
	}
	var pk []byte
	if key != nil {
		if !o.managed {
			return nil, badRequest("%s is not internal: the gateway keeps private keys of internal addresses and domains only", o.name)
		}
		if !sameKey(leaf, key) {
			return nil, badRequest("the private key does not belong to the certificate")
		}
		if pk, err = x509.MarshalPKCS8PrivateKey(key); err != nil {
			return nil, err
		}
	}
	if err := a.storeSMIME(ctx, o, leaf.Raw, pk, "imported"); err != nil {
		return nil, err
	}
	return a.ListKeys(ctx, o.name)
}

func parsePrivateKey(der []byte) (any, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	return x509.ParseECPrivateKey(der)
}

func sameKey(c *x509.Certificate, key any) bool {
	s, ok := key.(crypto.Signer)
	if !ok {
		return false
	}
	pub, ok := s.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(c.PublicKey)
}

// certNames lists whom a certificate names, for messages.
func certNames(c *x509.Certificate) string {
	names := append(secure.CertAddresses(c), c.DNSNames...)
	if c.Subject.CommonName != "" {
		names = append(names, "CN="+c.Subject.CommonName)
	}
	if len(names) == 0 {
		return "no address"
	}
	return strconv.Quote(strings.Join(names, ", "))
}

func (a *Appliance) importPGP(ctx context.Context, req KeyImport) ([]KeyInfo, error) {
	pub, sec, owners, fprs, err := secure.SplitPGP(req.Data, req.Password)
	if err != nil {
		return nil, badRequest("%s", strings.TrimPrefix(err.Error(), "secure: "))
	}
	// every key is checked before any is stored
	found := make([]*owner, len(pub))
	for i := range pub {
		addrs, err := secure.PGPAddresses(pub[i], time.Now())
		if err != nil || len(addrs) != 1 {
			return nil, badRequest("OpenPGP key %s: unreadable user IDs (%v)", fprs[i], err)
		}
		name := req.Owner
		if name == "" {
			name = owners[i]
			if name == "" && len(addrs[0]) > 0 {
				name = addrs[0][0]
			}
			if err := checkOwnerName(name); err != nil {
				return nil, badRequest("whose key %s? its user IDs name %s: give --owner ADDRESS|DOMAIN that they name (%v)", fprs[i], pgpNames(addrs[0]), err)
			}
		}
		o, err := a.findOwner(ctx, name)
		if err != nil {
			return nil, badRequest("whose key %s? give --owner ADDRESS|DOMAIN (%v)", fprs[i], err)
		}
		if !secure.AddressesName(addrs[0], o.name) {
			return nil, badRequest("OpenPGP key %s: its user IDs name %s, not %s: a key is kept only for an address (or domain) it names", fprs[i], pgpNames(addrs[0]), o.name)
		}
		if sec[i] != nil && !o.managed {
			return nil, badRequest("%s is not internal: the gateway keeps private keys of internal addresses and domains only", o.name)
		}
		found[i] = o
	}
	for i, o := range found {
		if err := a.storePGP(ctx, o, pub[i], sec[i], fprs[i], "imported"); err != nil {
			return nil, err
		}
	}
	return a.ListKeys(ctx, found[len(found)-1].name)
}

func pgpNames(addrs []string) string {
	if len(addrs) == 0 {
		return "no address"
	}
	return strconv.Quote(strings.Join(addrs, ", "))
}

// KeyExport is `postern keys export`.
type KeyExport struct {
	Owner    string `json:"owner"`
	Kind     string `json:"kind,omitempty"`     // smime, pgp, dkim or "" (every public one)
	Private  bool   `json:"private,omitempty"`  // with the private key: PKCS #12 or a protected OpenPGP key
	Password string `json:"password,omitempty"` // required with Private
}

// ExportKeys returns the public certificates and keys of an owner (PEM,
// armoured OpenPGP, DKIM TXT record), or one private key protected by a
// password.
func (a *Appliance) ExportKeys(ctx context.Context, req KeyExport) ([]byte, error) {
	var o *owner
	var err error
	if req.Owner == caOwner || req.Owner == trustOwner {
		o = &owner{name: req.Owner}
		if e, gerr := a.store.Get(ctx, a.keyEntryDN(req.Owner)); gerr == nil {
			o.entries = []*ldapstore.Entry{e}
		}
	} else if o, err = a.ownerArg(ctx, req.Owner, true); err != nil {
		return nil, err
	}
	k := collectKeys(o)
	if req.Private {
		if req.Password == "" {
			return nil, badRequest("a private key is exported only protected: give --password-file")
		}
		kind := req.Kind
		if kind == "" {
			kind = secure.KindSMIME
		}
		pks, err := a.privateKeys(ctx, o, kind)
		if err != nil {
			return nil, err
		}
		if len(pks) == 0 {
			return nil, notFound("the gateway holds no %s private key of %s", kind, o.name)
		}
		a.log.Warn("secure: private key exported", "owner", o.name, "kind", kind, "fingerprint", pks[0].Fingerprint)
		return secure.ExportPrivate(pks[0], req.Password)
	}
	var out bytes.Buffer
	if req.Kind == "" || req.Kind == secure.KindSMIME {
		for _, c := range k.certs {
			pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: c})
		}
		for _, c := range k.cas {
			pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: c})
		}
	}
	if req.Kind == "" || req.Kind == secure.KindPGP {
		for _, p := range k.pgp {
			out.Write(p)
		}
	}
	if req.Kind == "" || req.Kind == secure.KindDKIM {
		for _, d := range k.dkim {
			sel, b64, _ := strings.Cut(d, " ")
			spki, _ := base64.StdEncoding.DecodeString(b64)
			if n, v, err := secure.DKIMRecord(o.name, sel, spki); err == nil {
				fmt.Fprintf(&out, "%s. IN TXT \"%s\"\n", n, v)
			}
		}
	}
	if out.Len() == 0 {
		return nil, notFound("no public key of %s", o.name)
	}
	return out.Bytes(), nil
}
