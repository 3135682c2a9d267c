package appliance

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"time"

	"postern/ldapstore"
	"postern/ldapstore/filter"
	"postern/smtp/secure"
)

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
		o, err := a.ownerArg(ctx, name, true)
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
	} else if o, err = a.ownerArg(ctx, req.Owner, true); err != nil {
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
		drop(attrSMIMECap, func(v string) bool {
			certs, err := secure.SMIMECertificates([]byte(v))
			return err == nil && slices.ContainsFunc(certs, func(c []byte) bool { return match(secure.Fingerprint(c)) })
		})
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
	switch {
	case n > 0:
	case req.Fingerprint != "":
		return 0, notFound("%s has no key with the fingerprint %s (postern keys list %s shows its keys)", o.name, req.Fingerprint, o.name)
	default:
		return 0, notFound("no key of %s to delete: the gateway holds none", o.name)
	}
	a.log.Info("secure: keys deleted", "owner", o.name, "fingerprint", req.Fingerprint, "count", n)
	return n, nil
}
