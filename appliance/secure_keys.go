package appliance

import (
	"context"
	"strings"

	"postern/ldapstore"
	"postern/ldapstore/filter"
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

func (k *ldapKeys) Roots(ctx context.Context) ([][]byte, error) {
	f, err := filter.Parse("(cACertificate=*)")
	if err != nil {
		return nil, err
	}
	var out [][]byte
	err = k.a.store.Search(ctx, &ldapstore.SearchRequest{BaseDN: k.a.keysOU(), Scope: ldapstore.ScopeOne, Filter: f}, func(e *ldapstore.Entry) error {
		for _, v := range e.Get(attrCACert) {
			out = append(out, []byte(v))
		}
		return nil
	})
	if ldapstore.CodeOf(err) == ldapstore.NoSuchObject {
		err = nil
	}
	return out, err
}

func (k *ldapKeys) Collect(ctx context.Context, address string, cert []byte) error {
	o, err := k.a.findOwner(ctx, address)
	if err != nil {
		return err
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
