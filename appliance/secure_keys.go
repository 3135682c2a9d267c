package appliance

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"

	"postern/ldapstore"
	"postern/smtp/secure"
)

// ldapKeys is secure mail's view of the directory on a backend
// (secure.Keys): keys, certificates and policy read from the local store on
// every message, private keys opened with the KEK in memory only.
type ldapKeys struct{ a *Appliance }

var _ secure.Keys = (*ldapKeys)(nil)

func (k *ldapKeys) Managed(ctx context.Context, domain string) (bool, error) {
	_, err := k.a.store.Get(ctx, k.a.domainDN(domain))
	if ldapstore.CodeOf(err) == ldapstore.NoSuchObject {
		return false, nil
	}
	return err == nil, err
}

func (k *ldapKeys) Policy(ctx context.Context, address string) (secure.Policy, error) {
	p, _, err := k.a.effectivePolicy(ctx, address)
	return p, err
}

// both returns the owners of an address: itself, then its domain.
func (k *ldapKeys) both(ctx context.Context, address string) ([]*owner, error) {
	o, err := k.a.findOwner(ctx, address)
	if err != nil {
		return nil, err
	}
	out := []*owner{o}
	if i := strings.LastIndexByte(address, '@'); i >= 0 {
		d, err := k.a.findOwner(ctx, address[i+1:])
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func (k *ldapKeys) Public(ctx context.Context, address string) ([]secure.PublicKey, error) {
	owners, err := k.both(ctx, address)
	if err != nil {
		return nil, err
	}
	var out []secure.PublicKey
	for _, o := range owners {
		ks := collectKeys(o)
		for _, c := range ks.certs {
			out = append(out, secure.PublicKey{Owner: o.name, Domain: o.domain, Kind: secure.KindSMIME, Data: c})
		}
		for _, p := range ks.pgp {
			out = append(out, secure.PublicKey{Owner: o.name, Domain: o.domain, Kind: secure.KindPGP, Data: p})
		}
	}
	return out, nil
}

func (k *ldapKeys) Private(ctx context.Context, address string) ([]secure.PrivateKey, error) {
	owners, err := k.both(ctx, address)
	if err != nil {
		return nil, err
	}
	var out []secure.PrivateKey
	for _, o := range owners {
		if !o.managed {
			continue // private keys are internal addresses' and domains' only
		}
		pks, err := k.a.privateKeys(ctx, o, secure.KindSMIME, secure.KindPGP)
		if err != nil {
			return nil, err
		}
		out = append(out, pks...)
	}
	return out, nil
}

func (k *ldapKeys) DKIM(ctx context.Context, domain string) (secure.PrivateKey, bool, error) {
	o, err := k.a.findOwner(ctx, domain)
	if err != nil || !o.managed {
		return secure.PrivateKey{}, false, err
	}
	pks, err := k.a.privateKeys(ctx, o, secure.KindDKIM)
	if err != nil || len(pks) == 0 {
		return secure.PrivateKey{}, false, err
	}
	return pks[0], true, nil
}

// Roots are the CA certificates of the internal CA's entry and of the
// trust anchors imported with `keys import --ca`, and no other entry's:
// a cACertificate written on a partner's entry by other means does not
// make it an issuer.
func (k *ldapKeys) Roots(ctx context.Context) ([][]byte, error) {
	var out [][]byte
	for _, n := range []string{caOwner, trustOwner} {
		e, err := k.a.store.Get(ctx, k.a.keyEntryDN(n))
		if ldapstore.CodeOf(err) == ldapstore.NoSuchObject {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, v := range e.Get(attrCACert) {
			out = append(out, []byte(v))
		}
	}
	return out, nil
}

// Collect keeps a partner's certificate from a valid, trusted signature:
// only one that names the external address it is kept for (a frontend's
// call is checked as the backend's own).
func (k *ldapKeys) Collect(ctx context.Context, address string, cert []byte) error {
	c, err := x509.ParseCertificate(cert)
	if err != nil {
		return fmt.Errorf("appliance: collect: %w", err)
	}
	o, err := k.a.findOwner(ctx, address)
	if err != nil {
		return err
	}
	if o.managed || o.domain || !secure.CertNames(c, o.name) {
		return fmt.Errorf("appliance: collect: certificate %s is not one of an external address it names (%s)", secure.Fingerprint(cert), o.name)
	}
	for _, c := range collectKeys(o).certs {
		if string(c) == string(cert) {
			return nil
		}
	}
	home, err := k.a.home(ctx, o)
	if err != nil {
		return err
	}
	if err := k.a.addValues(ctx, home, attrSource, "collected"); err != nil {
		return err
	}
	k.a.log.Info("secure: certificate collected from a valid signature", "address", address, "fingerprint", secure.Fingerprint(cert))
	return k.a.addValues(ctx, home, attrCert, string(cert))
}
