package smtp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sort"
	"strings"
	"time"
)

// route is a next hop: either fixed hosts (a managed domain's server, the
// smarthost, an address literal) or the MX hosts of a domain, looked up when
// connecting.
type route struct {
	key      string   // groups jobs and connections
	hosts    []string // "host:port"; nil means MX of mxDomain
	mxDomain string
	tls      TLSPolicy
}

type cachedRoute struct {
	r   route
	exp time.Time
}

// routeCacheTTL bounds how long a routing decision is reused, so that a
// policy change applies within seconds without a directory lookup per
// recipient under load.
const routeCacheTTL = 2 * time.Second

// route returns the next hop for a recipient domain.
func (s *scheduler) route(ctx context.Context, domain string) (route, error) {
	now := time.Now()
	s.mu.Lock()
	c, ok := s.routes[domain]
	s.mu.Unlock()
	if ok && now.Before(c.exp) {
		return c.r, nil
	}
	r, err := s.g.lookupRoute(ctx, domain)
	if err != nil {
		return route{}, err
	}
	s.mu.Lock()
	if len(s.routes) > 10000 {
		clear(s.routes)
	}
	s.routes[domain] = cachedRoute{r, now.Add(routeCacheTTL)}
	s.mu.Unlock()
	return r, nil
}

func (g *Gateway) lookupRoute(ctx context.Context, domain string) (route, error) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	d, managed, err := g.cfg.Directory.Domain(ctx, domain)
	if err != nil {
		return route{}, err
	}
	if managed {
		pol := d.TLS
		if pol == "" {
			pol = TLSMay
		}
		if d.DeliverTo != "" {
			return fixedRoute(d.DeliverTo, pol), nil
		}
		return mxRoute(domain, pol), nil
	}
	rp, err := g.cfg.Directory.Relay(ctx)
	if err != nil {
		return route{}, err
	}
	if rp.Smarthost != "" {
		return fixedRoute(rp.Smarthost, TLSMay), nil
	}
	return mxRoute(domain, TLSMay), nil
}

func fixedRoute(hostport string, pol TLSPolicy) route {
	return route{key: "host " + strings.ToLower(hostport) + " " + string(pol), hosts: []string{hostport}, tls: pol}
}

func mxRoute(domain string, pol TLSPolicy) route {
	// RFC 5321 §4.1.3: an address literal names the host itself.
	if strings.HasPrefix(domain, "[") && strings.HasSuffix(domain, "]") {
		lit := strings.TrimPrefix(domain[1:len(domain)-1], "IPv6:")
		if ip, err := netip.ParseAddr(lit); err == nil {
			return fixedRoute(net.JoinHostPort(ip.String(), "25"), pol)
		}
	}
	return route{key: "mx " + domain + " " + string(pol), mxDomain: domain, tls: pol}
}

// errNullMX: RFC 7505 §3.2, the domain accepts no mail.
var errNullMX = errors.New("domain publishes a null MX")

// resolve returns the hosts to try for r, best first.
func (g *Gateway) resolve(ctx context.Context, r route) ([]string, *Error) {
	if r.hosts != nil {
		return r.hosts, nil
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	mxs, err := g.cfg.Resolver.LookupMX(ctx, r.mxDomain)
	var dnsErr *net.DNSError
	switch {
	case err != nil && errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		// RFC 5321 §5.1: without MX records the domain itself is the host.
		return []string{net.JoinHostPort(r.mxDomain, "25")}, nil
	case err != nil:
		return nil, newError(451, [3]int{4, 4, 3}, "MX lookup for "+r.mxDomain+" failed", err)
	}
	if len(mxs) == 0 {
		return []string{net.JoinHostPort(r.mxDomain, "25")}, nil
	}
	if len(mxs) == 1 && (mxs[0].Host == "." || mxs[0].Host == "") {
		return nil, newError(556, [3]int{5, 1, 10}, "Domain "+r.mxDomain+" does not accept mail (null MX)", errNullMX)
	}
	sort.SliceStable(mxs, func(i, j int) bool { return mxs[i].Pref < mxs[j].Pref })
	hosts := make([]string, 0, len(mxs))
	for _, mx := range mxs {
		hosts = append(hosts, net.JoinHostPort(strings.TrimSuffix(mx.Host, "."), "25"))
	}
	return hosts, nil
}
