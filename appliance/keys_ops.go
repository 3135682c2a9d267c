package appliance

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"postern/ldapstore"
	"postern/ldapstore/filter"
	"postern/smtp/secure"
)

// The actions of `postern keys` and `postern ca`, one function each, used
// by the control socket (and the web menu). Private keys are sealed under
// the KEK before they reach the store and are never logged.

// KeyInfo is one certificate or key of an owner (`postern keys list`).
type KeyInfo struct {
	Owner   string `json:"owner"`
	Domain  bool   `json:"domain,omitempty"`
	Managed bool   `json:"internal"`
	Private bool   `json:"private"` // the gateway holds the private key (sealed)
	Source  string `json:"source,omitempty"`
	Record  string `json:"dns_record,omitempty"` // DKIM: the TXT record to publish
	secure.Info
}

// KeyGenerate is `postern keys generate`.
type KeyGenerate struct {
	Owner      string `json:"owner"`
	Kind       string `json:"kind"`                  // smime, pgp or dkim
	Algo       string `json:"algo,omitempty"`        // rsa3072 (default), ecdsa, ed25519
	SelfSigned bool   `json:"self_signed,omitempty"` // S/MIME without the internal CA
	Selector   string `json:"selector,omitempty"`    // DKIM; default "postern"
}

// GenerateKey makes a key for an internal address or managed domain.
func (a *Appliance) GenerateKey(ctx context.Context, req KeyGenerate) ([]KeyInfo, error) {
	o, err := a.findOwner(ctx, req.Owner)
	if err != nil {
		return nil, err
	}
	if !o.managed {
		return nil, badRequest("%s is not in a managed domain: keys are generated for internal addresses and domains only (import a partner's)", o.name)
	}
	now := time.Now()
	switch req.Kind {
	case secure.KindSMIME:
		var ca *secure.Issuer
		if !req.SelfSigned {
			if ca, err = a.internalCA(ctx); err != nil {
				return nil, err
			}
		}
		cert, key, err := secure.NewSMIME(o.name, req.Algo, ca, now)
		if err != nil {
			return nil, badRequest("%s", err.Error())
		}
		if err := a.storeSMIME(ctx, o, cert, key, "generated"); err != nil {
			return nil, err
		}
	case secure.KindPGP:
		sec, pub, fpr, err := secure.NewPGP(o.name, req.Algo, now)
		if err != nil {
			return nil, badRequest("%s", err.Error())
		}
		if err := a.storePGP(ctx, o, pub, sec, fpr, "generated"); err != nil {
			return nil, err
		}
	case secure.KindDKIM:
		if !o.domain {
			return nil, badRequest("DKIM keys belong to a domain, not to %s", o.name)
		}
		sel := req.Selector
		if sel == "" {
			sel = "postern"
		}
		if !validHostname(sel) || strings.Contains(sel, ".") {
			return nil, badRequest("invalid DKIM selector %q", sel)
		}
		key, spki, err := secure.NewDKIM(req.Algo)
		if err != nil {
			return nil, badRequest("%s", err.Error())
		}
		home, err := a.home(ctx, o)
		if err != nil {
			return nil, err
		}
		fpr := secure.Fingerprint(spki)
		v, err := a.seal(ctx, o.name, secure.KindDKIM, fpr, key)
		if err != nil {
			return nil, err
		}
		// one DKIM key per domain: a new one replaces the old
		e, err := a.store.Get(ctx, home)
		if err != nil {
			return nil, err
		}
		priv := slices.DeleteFunc(slices.Clone(e.Get(attrPrivate)), func(x string) bool { return strings.HasPrefix(x, secure.KindDKIM+" ") })
		err = a.store.Modify(ctx, home, []ldapstore.Modification{
			{Op: ldapstore.ModReplace, Attr: ldapstore.Attribute{Type: attrDKIM, Vals: []string{sel + " " + base64.StdEncoding.EncodeToString(spki)}}},
			{Op: ldapstore.ModReplace, Attr: ldapstore.Attribute{Type: attrPrivate, Vals: append(priv, v)}},
		}, a.cfg.AdminDN())
		if err != nil {
			return nil, err
		}
		a.log.Info("secure: DKIM key generated", "domain", o.name, "selector", sel, "fingerprint", fpr)
	default:
		return nil, badRequest("unknown key kind %q: want smime, pgp or dkim", req.Kind)
	}
	return a.ListKeys(ctx, o.name)
}

func (a *Appliance) storeSMIME(ctx context.Context, o *owner, cert, key []byte, source string) error {
	home, err := a.home(ctx, o)
	if err != nil {
		return err
	}
	fpr := secure.Fingerprint(cert)
	if key != nil {
		v, err := a.seal(ctx, o.name, secure.KindSMIME, fpr, key)
		if err != nil {
			return err
		}
		if err := a.addValues(ctx, home, attrPrivate, v); err != nil {
			return err
		}
	}
	if err := a.addValues(ctx, home, attrSource, source); err != nil {
		return err
	}
	a.log.Info("secure: S/MIME certificate stored", "owner", o.name, "fingerprint", fpr, "private", key != nil, "source", source)
	return a.addValues(ctx, home, attrCert, string(cert))
}

func (a *Appliance) storePGP(ctx context.Context, o *owner, pub, sec []byte, fpr, source string) error {
	home, err := a.home(ctx, o)
	if err != nil {
		return err
	}
	if sec != nil {
		v, err := a.seal(ctx, o.name, secure.KindPGP, fpr, sec)
		if err != nil {
			return err
		}
		if err := a.addValues(ctx, home, attrPrivate, v); err != nil {
			return err
		}
	}
	if err := a.addValues(ctx, home, attrSource, source); err != nil {
		return err
	}
	a.log.Info("secure: OpenPGP key stored", "owner", o.name, "fingerprint", fpr, "private", sec != nil, "source", source)
	return a.addValues(ctx, home, attrPGP, string(pub))
}

// CAInit is `postern ca init`.
type CAInit struct {
	Name string `json:"name,omitempty"` // subject CN; default "Postern internal CA"
	Algo string `json:"algo,omitempty"` // ecdsa (default) or rsa3072
}

// InitCA makes the internal CA that issues S/MIME certificates, once.
func (a *Appliance) InitCA(ctx context.Context, req CAInit) ([]KeyInfo, error) {
	if _, err := a.internalCA(ctx); err == nil {
		return nil, &apiError{409, "the internal CA exists already (postern keys list " + caOwner + ")"}
	}
	if req.Name == "" {
		req.Name = "Postern internal CA"
	}
	cert, key, err := secure.NewCA(req.Name, req.Algo, time.Now())
	if err != nil {
		return nil, badRequest("%s", err.Error())
	}
	o := &owner{name: caOwner}
	home, err := a.home(ctx, o)
	if err != nil {
		return nil, err
	}
	v, err := a.seal(ctx, caOwner, secure.KindCA, secure.Fingerprint(cert), key)
	if err != nil {
		return nil, err
	}
	if err := a.addValues(ctx, home, attrPrivate, v); err != nil {
		return nil, err
	}
	if err := a.addValues(ctx, home, attrCACert, string(cert)); err != nil {
		return nil, err
	}
	a.log.Info("secure: internal CA made", "fingerprint", secure.Fingerprint(cert))
	return a.ListKeys(ctx, caOwner)
}

// internalCA returns the internal CA; an error when there is none.
func (a *Appliance) internalCA(ctx context.Context) (*secure.Issuer, error) {
	e, err := a.store.Get(ctx, a.keyEntryDN(caOwner))
	if ldapstore.CodeOf(err) == ldapstore.NoSuchObject {
		return nil, badRequest("no internal CA: run `postern ca init` first, or give --self-signed")
	}
	if err != nil {
		return nil, err
	}
	for _, v := range e.Get(attrPrivate) {
		s, err := parseSealed(v)
		if err != nil || s.kind != secure.KindCA {
			continue
		}
		for _, c := range e.Get(attrCACert) {
			if secure.Fingerprint([]byte(c)) != s.fpr {
				continue
			}
			plain, err := a.open(ctx, caOwner, s)
			if err != nil {
				return nil, err
			}
			k, err := x509.ParsePKCS8PrivateKey(plain)
			if err != nil {
				return nil, err
			}
			cert, err := x509.ParseCertificate([]byte(c))
			if err != nil {
				return nil, err
			}
			return &secure.Issuer{Cert: cert, Key: k.(crypto.Signer)}, nil
		}
	}
	return nil, errors.New("appliance: the internal CA entry has no usable key")
}

// ListKeys lists the keys of an owner, or of every owner for "".
func (a *Appliance) ListKeys(ctx context.Context, name string) ([]KeyInfo, error) {
	var owners []*owner
	if name == caOwner || name == trustOwner {
		o := &owner{name: name}
		if e, err := a.store.Get(ctx, a.keyEntryDN(name)); err == nil {
			o.entries = []*ldapstore.Entry{e}
		}
		owners = append(owners, o)
	} else if name != "" {
		o, err := a.findOwner(ctx, name)
		if err != nil {
			return nil, err
		}
		owners = append(owners, o)
	} else {
		names, err := a.keyOwners(ctx)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			o, err := a.findOwner(ctx, n)
			if err != nil {
				if n == caOwner || n == trustOwner {
					o = &owner{name: n}
					if e, err := a.store.Get(ctx, a.keyEntryDN(n)); err == nil {
						o.entries = []*ldapstore.Entry{e}
					}
				} else {
					continue
				}
			}
			owners = append(owners, o)
		}
	}
	out := []KeyInfo{}
	now := time.Now()
	for _, o := range owners {
		k := collectKeys(o)
		priv := map[string]bool{}
		for _, s := range k.private {
			priv[s.kind+" "+s.fpr] = true
		}
		src := strings.Join(k.source, ",")
		base := KeyInfo{Owner: o.name, Domain: o.domain, Managed: o.managed, Source: src}
		for _, c := range k.certs {
			if in, err := secure.DescribeCert(secure.KindSMIME, c); err == nil {
				ki := base
				ki.Info, ki.Private = in, priv[secure.KindSMIME+" "+in.Fingerprint]
				out = append(out, ki)
			}
		}
		for _, c := range k.cas {
			if in, err := secure.DescribeCert(secure.KindCA, c); err == nil {
				ki := base
				ki.Info, ki.Private = in, priv[secure.KindCA+" "+in.Fingerprint]
				out = append(out, ki)
			}
		}
		for _, p := range k.pgp {
			ins, _ := secure.DescribePGP(p, now)
			for _, in := range ins {
				ki := base
				ki.Info, ki.Private = in, priv[secure.KindPGP+" "+in.Fingerprint]
				out = append(out, ki)
			}
		}
		for _, d := range k.dkim {
			sel, b64, _ := strings.Cut(d, " ")
			spki, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				continue
			}
			ki := base
			ki.Info = secure.Info{Kind: secure.KindDKIM, Fingerprint: secure.Fingerprint(spki), Subject: "selector " + sel, Usage: []string{"dkim"}}
			ki.Private = priv[secure.KindDKIM+" "+ki.Fingerprint]
			if n, v, err := secure.DKIMRecord(o.name, sel, spki); err == nil {
				ki.Record = n + ". IN TXT \"" + v + "\""
				ki.Algorithm = strings.TrimSuffix(strings.TrimPrefix(strings.Fields(v)[1], "k="), ";")
			}
			out = append(out, ki)
		}
	}
	return out, nil
}

// keyOwners names every address and domain with keys.
func (a *Appliance) keyOwners(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	var names []string
	add := func(n string) {
		if n = strings.ToLower(n); n != "" && !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	err := a.searchAll(ctx, "(objectClass=posternSecure)", func(e *ldapstore.Entry) {
		switch {
		case hasValueFold(e.Get("objectClass"), "inetOrgPerson"):
			add(e.First("mail"))
		case hasValueFold(e.Get("objectClass"), "posternDomain") || hasValueFold(e.Get("objectClass"), "posternKeyEntry"):
			if e.DN != a.secureDN() {
				add(e.First("cn"))
			}
		}
	})
	slices.Sort(names)
	return names, err
}

func (a *Appliance) searchAll(ctx context.Context, f string, each func(*ldapstore.Entry)) error {
	flt, err := filter.Parse(f)
	if err != nil {
		return err
	}
	return a.store.Search(ctx, &ldapstore.SearchRequest{BaseDN: a.cfg.Suffix, Scope: ldapstore.ScopeSub, Filter: flt}, func(e *ldapstore.Entry) error {
		each(e)
		return nil
	})
}

// KeyDelete is `postern keys delete`.
type KeyDelete struct {
	Owner       string `json:"owner"`
	Fingerprint string `json:"fingerprint,omitempty"` // "" deletes every key of the owner
}

// DeleteKeys removes keys (and their sealed private keys) of an owner.
func (a *Appliance) DeleteKeys(ctx context.Context, req KeyDelete) (int, error) {
	var o *owner
	var err error
	if req.Owner == caOwner || req.Owner == trustOwner {
		o = &owner{name: req.Owner}
		if e, err := a.store.Get(ctx, a.keyEntryDN(req.Owner)); err == nil {
			o.entries = []*ldapstore.Entry{e}
		}
	} else if o, err = a.findOwner(ctx, req.Owner); err != nil {
		return 0, err
	}
	want := strings.ToUpper(strings.ReplaceAll(req.Fingerprint, " ", ""))
	match := func(fpr string) bool {
		return want == "" || strings.ReplaceAll(fpr, ":", "") == strings.ReplaceAll(want, ":", "")
	}
	n := 0
	for _, e := range o.entries {
		var mods []ldapstore.Modification
		drop := func(attr string, gone func(v string) bool) {
			var del []string
			for _, v := range e.Get(attr) {
				if gone(v) {
					del = append(del, v)
				}
			}
			if len(del) > 0 {
				mods = append(mods, ldapstore.Modification{Op: ldapstore.ModDelete, Attr: ldapstore.Attribute{Type: attr, Vals: del}})
				if attr != attrPrivate {
					n += len(del)
				}
			}
		}
		drop(attrCert, func(v string) bool { return match(secure.Fingerprint([]byte(v))) })
		drop(attrCACert, func(v string) bool { return match(secure.Fingerprint([]byte(v))) })
		drop(attrPGP, func(v string) bool {
			fprs, _ := secure.PGPFingerprints([]byte(v))
			return slices.ContainsFunc(fprs, match)
		})
		drop(attrDKIM, func(v string) bool {
			_, b64, _ := strings.Cut(v, " ")
			spki, _ := base64.StdEncoding.DecodeString(b64)
			return match(secure.Fingerprint(spki))
		})
		drop(attrPrivate, func(v string) bool {
			s, err := parseSealed(v)
			return err != nil || match(s.fpr)
		})
		if len(mods) == 0 {
			continue
		}
		if err := a.store.Modify(ctx, e.DN, mods, a.cfg.AdminDN()); err != nil {
			return n, err
		}
	}
	if n == 0 {
		return 0, notFound("no key of %s matches %q", o.name, req.Fingerprint)
	}
	a.log.Info("secure: keys deleted", "owner", o.name, "fingerprint", req.Fingerprint, "count", n)
	return n, nil
}

// KeyImport is `postern keys import FILE`.
type KeyImport struct {
	Owner    string `json:"owner,omitempty"` // default: the certificate's or key's address
	Data     []byte `json:"data"`
	Password string `json:"password,omitempty"` // PKCS #12, or a protected OpenPGP secret key
	CA       bool   `json:"ca,omitempty"`       // trust the certificates as S/MIME roots
}

// ImportKeys stores the certificates and keys of a file: PEM (certificates,
// PKCS #8/PKCS #1/SEC 1 keys), DER, PKCS #12 or armoured OpenPGP.
func (a *Appliance) ImportKeys(ctx context.Context, req KeyImport) ([]KeyInfo, error) {
	data := req.Data
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
		switch {
		case len(leaf.EmailAddresses) > 0:
			name = leaf.EmailAddresses[0]
		default:
			name = leaf.Subject.CommonName
		}
	}
	o, err := a.findOwner(ctx, name)
	if err != nil {
		return nil, badRequest("whose certificate? give --owner ADDRESS|DOMAIN (%v)", err)
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

func (a *Appliance) importPGP(ctx context.Context, req KeyImport) ([]KeyInfo, error) {
	pub, sec, owners, fprs, err := secure.SplitPGP(req.Data, req.Password)
	if err != nil {
		return nil, badRequest("%s", strings.TrimPrefix(err.Error(), "secure: "))
	}
	var last string
	for i := range pub {
		name := req.Owner
		if name == "" {
			name = owners[i]
		}
		o, err := a.findOwner(ctx, name)
		if err != nil {
			return nil, badRequest("whose key %s? give --owner ADDRESS|DOMAIN (%v)", fprs[i], err)
		}
		if sec[i] != nil && !o.managed {
			return nil, badRequest("%s is not internal: the gateway keeps private keys of internal addresses and domains only", o.name)
		}
		if err := a.storePGP(ctx, o, pub[i], sec[i], fprs[i], "imported"); err != nil {
			return nil, err
		}
		last = o.name
	}
	return a.ListKeys(ctx, last)
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
	o, err := a.findOwner(ctx, req.Owner)
	if req.Owner == caOwner || req.Owner == trustOwner {
		o, err = &owner{name: req.Owner}, nil
		if e, gerr := a.store.Get(ctx, a.keyEntryDN(req.Owner)); gerr == nil {
			o.entries = []*ldapstore.Entry{e}
		}
	}
	if err != nil {
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
