package appliance

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"postern/ldapstore"
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

// check reports a request `postern keys generate` refuses before it asks
// the appliance (a usage error there, 400 from the API): the owner's
// syntax, the kind, an algorithm the kind has, the DKIM selector.
func (req KeyGenerate) check() error {
	if err := checkOwnerName(req.Owner); err != nil {
		return err
	}
	algos := map[string][]string{
		secure.KindSMIME: {secure.AlgoRSA3072, secure.AlgoECDSA},
		secure.KindPGP:   {secure.AlgoRSA3072, secure.AlgoEd25519},
		secure.KindDKIM:  {secure.AlgoRSA3072, "rsa", secure.AlgoEd25519},
	}
	want, ok := algos[req.Kind]
	if !ok {
		return fmt.Errorf("unknown key kind %q: want smime, pgp or dkim", req.Kind)
	}
	if req.Algo != "" && !slices.Contains(want, req.Algo) {
		return fmt.Errorf("--algo %q: %s keys are %s", req.Algo, req.Kind, strings.Join(want, " or "))
	}
	if req.Kind == secure.KindDKIM && req.Selector != "" && (!validHostname(req.Selector) || strings.Contains(req.Selector, ".")) {
		return fmt.Errorf("--selector %q: want one DNS label (letters, digits, hyphens)", req.Selector)
	}
	return nil
}

// GenerateKey makes a key for an internal address or managed domain.
func (a *Appliance) GenerateKey(ctx context.Context, req KeyGenerate) ([]KeyInfo, error) {
	if err := req.check(); err != nil {
		return nil, badRequest("%v", err)
	}
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

// check reports a request `postern ca init` refuses before it asks the
// appliance: an algorithm a CA has, a name a certificate carries.
func (req CAInit) check() error {
	switch req.Algo {
	case "", secure.AlgoECDSA, secure.AlgoRSA3072:
	default:
		return fmt.Errorf("--algo %q: the CA's key is ecdsa or rsa3072", req.Algo)
	}
	if len(req.Name) > 64 || strings.ContainsFunc(req.Name, unicode.IsControl) {
		return fmt.Errorf("--name %q: want at most 64 characters, no control characters (RFC 5280 ub-common-name)", req.Name)
	}
	return nil
}

// InitCA makes the internal CA that issues S/MIME certificates, once.
func (a *Appliance) InitCA(ctx context.Context, req CAInit) ([]KeyInfo, error) {
	if err := req.check(); err != nil {
		return nil, badRequest("%v", err)
	}
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
