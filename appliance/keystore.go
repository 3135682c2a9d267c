package appliance

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"postern/ldapstore"
	"postern/ldapstore/dn"
	"postern/ldapstore/filter"
	"postern/smtp/secure"
)

// Where secure mail keeps keys and policy in the replicated tree:
//
//   - a user's (inetOrgPerson with mail): on the user's entry, with the
//     auxiliary class posternSecure: userCertificate;binary (S/MIME, what
//     mail clients read from an address book), posternPGPKey (armoured),
//     posternPrivateKey (sealed under the KEK, kek.go), policy attributes;
//   - a managed domain's: on its posternDomain entry, alike, plus
//     posternDKIMKey (selector and public key);
//   - everything else below ou=keys, one posternKeyEntry per address or
//     domain (cn): external partners' certificates and keys (imported or
//     collected), internal addresses without a user entry, the internal CA
//     (cn=internal-ca) and imported trust anchors (cn=trusted), whose
//     certificates are cACertificate;binary;
//   - the global policy in cn=secure,ou=config.

const (
	attrCert = "userCertificate;binary"
	// userSMIMECertificate (RFC 2798 §2.8): a PKCS#7 SignedData of the
	// certificates a mail client published; read as S/MIME certificates
	// (secure.SMIMECertificates), never written by Postern. Its syntax is
	// Binary, which takes no ;binary option (as in slapd: "option "binary"
	// not supported with type").
	attrSMIMECap = "userSMIMECertificate"
	attrCACert   = "cACertificate;binary"
	attrPGP      = "posternPGPKey"
	attrPrivate  = "posternPrivateKey"
	attrDKIM     = "posternDKIMKey"
	attrSource   = "posternKeySource"
	caOwner      = "internal-ca"
	trustOwner   = "trusted"
)

func (a *Appliance) keysOU() string             { return "ou=keys," + a.cfg.Suffix }
func (a *Appliance) keyEntryDN(n string) string { return "cn=" + dn.EscapeValue(n) + "," + a.keysOU() }
func (a *Appliance) secureDN() string           { return "cn=secure,ou=config," + a.cfg.Suffix }

// owner is an address or domain and the entries that hold its keys.
type owner struct {
	name    string // lower case
	domain  bool
	managed bool               // a domain (or an address in one) the gateway manages
	entries []*ldapstore.Entry // user or domain entry first, then the ou=keys entry
}

// normalizeOwner checks an address or domain name.
func normalizeOwner(s string) (string, bool, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		if i == 0 || strings.ContainsAny(s, " \t\r\n<>,;") {
			return "", false, badRequest("invalid address %q", s)
		}
		if _, err := normalizeDomain(s[i+1:]); err != nil {
			return "", false, err
		}
		return s, false, nil
	}
	d, err := normalizeDomain(s)
	return d, true, err
}

// findOwner reads the entries of an address or domain.
func (a *Appliance) findOwner(ctx context.Context, name string) (*owner, error) {
	n, isDomain, err := normalizeOwner(name)
	if err != nil {
		return nil, err
	}
	o := &owner{name: n, domain: isDomain}
	dom := n
	if !isDomain {
		dom = n[strings.LastIndexByte(n, '@')+1:]
	}
	if _, err := a.store.Get(ctx, a.domainDN(dom)); err == nil {
		o.managed = true
	} else if ldapstore.CodeOf(err) != ldapstore.NoSuchObject {
		return nil, err
	}
	if isDomain {
		if o.managed {
			e, err := a.store.Get(ctx, a.domainDN(dom))
			if err != nil {
				return nil, err
			}
			o.entries = append(o.entries, e)
		}
	} else {
		f, err := filter.Parse("(&(objectClass=inetOrgPerson)(mail=" + filter.Escape(n) + "))")
		if err != nil {
			return nil, err
		}
		err = a.store.Search(ctx, &ldapstore.SearchRequest{BaseDN: a.cfg.Suffix, Scope: ldapstore.ScopeSub, Filter: f, SizeLimit: 10}, func(e *ldapstore.Entry) error {
			o.entries = append(o.entries, e)
			return nil
		})
		if err != nil && ldapstore.CodeOf(err) != ldapstore.SizeLimitExceeded && ldapstore.CodeOf(err) != ldapstore.NoSuchObject {
			return nil, err
		}
	}
	e, err := a.store.Get(ctx, a.keyEntryDN(n))
	switch {
	case err == nil:
		o.entries = append(o.entries, e)
	case ldapstore.CodeOf(err) != ldapstore.NoSuchObject:
		return nil, err
	}
	return o, nil
}

// ownerArg reads the owner an administrator names in `postern keys`: a
// valid address or domain (checkOwnerName), or, when known is set (list,
// export, delete), also a name that fails the check but has entries (one
// stored before the check), so that it can still be seen and removed.
func (a *Appliance) ownerArg(ctx context.Context, name string, known bool) (*owner, error) {
	if err := checkOwnerName(name); err != nil {
		if known {
			if o, ferr := a.findOwner(ctx, name); ferr == nil && len(o.entries) > 0 {
				return o, nil
			}
		}
		return nil, badRequest("%v", err)
	}
	return a.findOwner(ctx, name)
}

// home returns the DN new keys of o go to, creating the ou=keys entry
// (and ou=keys) when o has no user or domain entry.
func (a *Appliance) home(ctx context.Context, o *owner) (string, error) {
	by := a.cfg.AdminDN()
	if len(o.entries) > 0 {
		e := o.entries[0]
		if !hasValueFold(e.Get("objectClass"), "posternSecure") {
			err := a.store.Modify(ctx, e.DN, []ldapstore.Modification{{Op: ldapstore.ModAdd, Attr: ldapstore.Attribute{Type: "objectClass", Vals: []string{"posternSecure"}}}}, by)
			if err != nil && ldapstore.CodeOf(err) != ldapstore.AttributeOrValueExists {
				return "", err
			}
		}
		return e.DN, nil
	}
	if _, err := a.store.Get(ctx, a.keysOU()); ldapstore.CodeOf(err) == ldapstore.NoSuchObject {
		ou := &ldapstore.Entry{DN: a.keysOU()}
		ou.Set("objectClass", "top", "organizationalUnit")
		ou.Set("ou", "keys")
		if err := a.store.Add(ctx, ou, by); err != nil && ldapstore.CodeOf(err) != ldapstore.EntryAlreadyExists {
			return "", err
		}
	} else if err != nil {
		return "", err
	}
	e := &ldapstore.Entry{DN: a.keyEntryDN(o.name)}
	e.Set("objectClass", "top", "posternKeyEntry", "posternSecure")
	e.Set("cn", o.name)
	if !o.domain && strings.Contains(o.name, "@") {
		e.Set("mail", o.name)
	}
	if err := a.store.Add(ctx, e, by); err != nil && ldapstore.CodeOf(err) != ldapstore.EntryAlreadyExists {
		return "", err
	}
	o.entries = append(o.entries, e)
	return e.DN, nil
}

func hasValueFold(vals []string, v string) bool {
	return slices.ContainsFunc(vals, func(x string) bool { return strings.EqualFold(x, v) })
}

// addValues adds values to an attribute of dn, skipping those it has.
func (a *Appliance) addValues(ctx context.Context, dnStr, attr string, vals ...string) error {
	e, err := a.store.Get(ctx, dnStr)
	if err != nil {
		return err
	}
	have := e.Get(attr)
	var add []string
	for _, v := range vals {
		if !slices.Contains(have, v) && !slices.Contains(add, v) {
			add = append(add, v)
		}
	}
	if len(add) == 0 {
		return nil
	}
	return a.store.Modify(ctx, dnStr, []ldapstore.Modification{{Op: ldapstore.ModAdd, Attr: ldapstore.Attribute{Type: attr, Vals: add}}}, a.cfg.AdminDN())
}

// ownerKeys is what the entries of an owner hold.
type ownerKeys struct {
	certs   [][]byte // DER
	pgp     [][]byte // armoured
	cas     [][]byte
	private []sealedOn
	dkim    []string // "selector base64"
	source  []string
}

type sealedOn struct {
	sealed
	dn  string
	raw string
}

func collectKeys(o *owner) ownerKeys {
	var k ownerKeys
	for _, e := range o.entries {
		for _, v := range e.Get(attrCert) {
			k.certs = append(k.certs, []byte(v))
		}
		for _, v := range e.Get(attrSMIMECap) {
			if certs, err := secure.SMIMECertificates([]byte(v)); err == nil {
				k.certs = append(k.certs, certs...)
			}
		}
		for _, v := range e.Get(attrPGP) {
			k.pgp = append(k.pgp, []byte(v))
		}
		for _, v := range e.Get(attrCACert) {
			k.cas = append(k.cas, []byte(v))
		}
		for _, v := range e.Get(attrPrivate) {
			if s, err := parseSealed(v); err == nil {
				k.private = append(k.private, sealedOn{sealed: s, dn: e.DN, raw: v})
			}
		}
		k.dkim = append(k.dkim, e.Get(attrDKIM)...)
		k.source = append(k.source, e.Get(attrSource)...)
	}
	return k
}

// privateKeys opens the sealed keys of o (kinds given, or all).
func (a *Appliance) privateKeys(ctx context.Context, o *owner, kinds ...string) ([]secure.PrivateKey, error) {
	k := collectKeys(o)
	var out []secure.PrivateKey
	for _, s := range k.private {
		if len(kinds) > 0 && !slices.Contains(kinds, s.kind) {
			continue
		}
		plain, err := a.open(ctx, o.name, s.sealed)
		if err != nil {
			return nil, err
		}
		pk := secure.PrivateKey{Owner: o.name, Domain: o.domain, Kind: s.kind, Fingerprint: s.fpr, Key: plain}
		switch s.kind {
		case secure.KindSMIME:
			for _, c := range k.certs {
				if secure.Fingerprint(c) == s.fpr {
					pk.Cert = c
				}
			}
			if pk.Cert == nil {
				continue // its certificate was deleted
			}
		case secure.KindDKIM:
			for _, d := range k.dkim {
				sel, _, _ := strings.Cut(d, " ")
				pk.Selector = sel
			}
		}
		out = append(out, pk)
	}
	return out, nil
}

func notFound(format string, args ...any) error {
	return &apiError{http.StatusNotFound, fmt.Sprintf(format, args...)}
}
