package appliance

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"postern/ldapstore"
	"postern/ldapstore/filter"
)

// Mail policy lives in the replicated tree (DESIGN: Data), so every
// cluster member applies the same: one posternDomain entry per managed
// domain below ou=domains, and the relay settings in cn=relay,ou=config.

// Domain is a managed domain.
type Domain struct {
	Name      string `json:"name"`
	DeliverTo string `json:"deliver_to"`
	TLS       string `json:"tls"`
}

// RelaySettings are the cluster-wide relay permissions.
type RelaySettings struct {
	Networks  []string `json:"networks"`
	Smarthost string   `json:"smarthost,omitempty"`
}

func (a *Appliance) domainDN(name string) string { return "cn=" + name + ",ou=domains," + a.cfg.Suffix }
func (a *Appliance) relayDN() string             { return "cn=relay,ou=config," + a.cfg.Suffix }

// normalizeDomain lower-cases and checks a domain name.
func normalizeDomain(name string) (string, error) {
	n := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
	if !strings.Contains(n, ".") || !validHostname(n) {
		return "", badRequest("invalid domain name %q", name)
	}
	return n, nil
}

// checkHostPort checks "host:port" with a port in 1..65535.
func checkHostPort(what, hp string) error {
	host, port, err := net.SplitHostPort(hp)
	if err != nil || host == "" {
		return badRequest("invalid %s %q: want HOST:PORT", what, hp)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return badRequest("invalid %s %q: port must be 1-65535", what, hp)
	}
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err != nil && !validHostname(host) {
		return badRequest("invalid %s %q: bad host", what, hp)
	}
	return nil
}

// AddDomain adds a managed domain (or updates it when it exists).
func (a *Appliance) AddDomain(ctx context.Context, d Domain) (Domain, error) {
	name, err := normalizeDomain(d.Name)
	if err != nil {
		return d, err
	}
	d.Name = name
	if err := checkHostPort("delivery server", d.DeliverTo); err != nil {
		return d, err
	}
	if d.TLS == "" {
		d.TLS = "may"
	}
	switch d.TLS {
	case "none", "may", "encrypt":
	default:
		return d, badRequest("invalid TLS policy %q: want none, may or encrypt", d.TLS)
	}
	by := a.cfg.AdminDN()
	e := &ldapstore.Entry{DN: a.domainDN(name)}
	e.Set("objectClass", "top", "posternDomain")
	e.Set("cn", name)
	e.Set("posternDeliverTo", d.DeliverTo)
	e.Set("posternTLSPolicy", d.TLS)
	err = a.store.Add(ctx, e, by)
	if ldapstore.CodeOf(err) == ldapstore.EntryAlreadyExists {
		err = a.store.Modify(ctx, e.DN, []ldapstore.Modification{
			{Op: ldapstore.ModReplace, Attr: ldapstore.Attribute{Type: "posternDeliverTo", Vals: []string{d.DeliverTo}}},
			{Op: ldapstore.ModReplace, Attr: ldapstore.Attribute{Type: "posternTLSPolicy", Vals: []string{d.TLS}}},
		}, by)
	}
	return d, err
}

// Domains lists the managed domains, sorted by name.
func (a *Appliance) Domains(ctx context.Context) ([]Domain, error) {
	f, err := filter.Parse("(objectClass=posternDomain)")
	if err != nil {
		return nil, err
	}
	var out []Domain
	err = a.store.Search(ctx, &ldapstore.SearchRequest{BaseDN: "ou=domains," + a.cfg.Suffix, Scope: ldapstore.ScopeOne, Filter: f}, func(e *ldapstore.Entry) error {
		out = append(out, Domain{Name: e.First("cn"), DeliverTo: e.First("posternDeliverTo"), TLS: e.First("posternTLSPolicy")})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// RemoveDomain removes a managed domain.
func (a *Appliance) RemoveDomain(ctx context.Context, name string) error {
	n, err := normalizeDomain(name)
	if err != nil {
		return err
	}
	err = a.store.Delete(ctx, a.domainDN(n), a.cfg.AdminDN())
	if ldapstore.CodeOf(err) == ldapstore.NoSuchObject {
		return &apiError{http.StatusNotFound, fmt.Sprintf("no managed domain %q", n)}
	}
	return err
}

// Relay returns the relay settings.
func (a *Appliance) Relay(ctx context.Context) (RelaySettings, error) {
	e, err := a.store.Get(ctx, a.relayDN())
	if ldapstore.CodeOf(err) == ldapstore.NoSuchObject {
		return RelaySettings{Networks: []string{}}, nil
	}
	if err != nil {
		return RelaySettings{}, err
	}
	rs := RelaySettings{Networks: append([]string{}, e.Get("posternRelayNetwork")...), Smarthost: e.First("posternSmarthost")}
	return rs, nil
}

// RelayUpdate changes relay settings; nil fields stay as they are. An
// empty Smarthost clears it; an empty Networks list allows no relaying.
type RelayUpdate struct {
	Networks  *[]string `json:"networks,omitempty"`
	Smarthost *string   `json:"smarthost,omitempty"`
}

// SetRelay changes the relay settings.
func (a *Appliance) SetRelay(ctx context.Context, u RelayUpdate) (RelaySettings, error) {
	var mods []ldapstore.Modification
	if u.Networks != nil {
		var nets []string
		for _, c := range *u.Networks {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				if ip, aerr := netip.ParseAddr(c); aerr == nil {
					p = netip.PrefixFrom(ip, ip.BitLen())
				} else {
					return RelaySettings{}, badRequest("invalid network %q: want CIDR like 192.0.2.0/24", c)
				}
			}
			nets = append(nets, p.Masked().String())
		}
		mods = append(mods, ldapstore.Modification{Op: ldapstore.ModReplace, Attr: ldapstore.Attribute{Type: "posternRelayNetwork", Vals: nets}})
	}
	if u.Smarthost != nil {
		var vals []string
		if *u.Smarthost != "" {
			if err := checkHostPort("smarthost", *u.Smarthost); err != nil {
				return RelaySettings{}, err
			}
			vals = []string{*u.Smarthost}
		}
		mods = append(mods, ldapstore.Modification{Op: ldapstore.ModReplace, Attr: ldapstore.Attribute{Type: "posternSmarthost", Vals: vals}})
	}
	by := a.cfg.AdminDN()
	err := a.store.Modify(ctx, a.relayDN(), mods, by)
	if ldapstore.CodeOf(err) == ldapstore.NoSuchObject {
		e := &ldapstore.Entry{DN: a.relayDN()}
		e.Set("objectClass", "top", "posternRelayPolicy")
		e.Set("cn", "relay")
		for _, m := range mods {
			e.Set(m.Attr.Type, m.Attr.Vals...)
		}
		err = a.store.Add(ctx, e, by)
	}
	if err != nil {
		return RelaySettings{}, err
	}
	return a.Relay(ctx)
}

func (a *Appliance) policyRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/domains", a.jsonHandler(func(r *http.Request) (any, error) { return a.Domains(r.Context()) }))
	mux.HandleFunc("POST /v1/domains", a.jsonHandler(func(r *http.Request) (any, error) {
		var d Domain
		if err := decodeJSON(r, &d); err != nil {
			return nil, err
		}
		return a.AddDomain(r.Context(), d)
	}))
	mux.HandleFunc("DELETE /v1/domains/{name}", a.jsonHandler(func(r *http.Request) (any, error) {
		return map[string]string{"removed": r.PathValue("name")}, a.RemoveDomain(r.Context(), r.PathValue("name"))
	}))
	mux.HandleFunc("GET /v1/relay", a.jsonHandler(func(r *http.Request) (any, error) { return a.Relay(r.Context()) }))
	mux.HandleFunc("POST /v1/relay", a.jsonHandler(func(r *http.Request) (any, error) {
		var u RelayUpdate
		if err := decodeJSON(r, &u); err != nil {
			return nil, err
		}
		return a.SetRelay(r.Context(), u)
	}))
}
