// Command replbench measures replication side by side: two Postern members
// (each a process of this binary in -member mode with a store, an LDAP
// server, the provider and a consumer of the other over plain loopback
// LDAP, as slapd's syncrepl runs; the appliance carries the same engine
// over SSH tunnels) against two stock slapd multi-provider nodes (back_mdb
// + syncprov, serverID, syncrepl to each other), started here. Both get the
// same data and the same LDAP client (go-ldap, root DN, loopback):
//
//   - full refresh: B starts empty while A holds N entries; time until B
//     holds them all;
//   - latency: a modify on A until a search on B sees it, W times (p50,
//     p99), the two systems' writes taken in turn with both pairs up, so
//     that a busy moment of the machine falls on both alike; R rounds,
//     the median round reported;
//   - catch-up: B down, N modifies on A, B restarted; time until B has them.
//
// The write's acknowledgement by A is printed beside write-to-visible
// (measure=write_ack). REPLBENCH_SAMPLES=<prefix> writes every sample to
// <prefix>.<system>.<round>.
// REPLBENCH_CPUPROFILE=<prefix> has each Postern member write a CPU profile
// of its life to <prefix>.<sid>.<pid>.pprof.
//
// It prints one line per system and measure (key=value); bench/replication.sh
// runs it and computes the ratios. Everything listens on 127.0.0.1 and every
// process it starts is stopped before it exits.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ldap/ldap/v3"
)

const (
	suffix = "dc=postern,dc=local"
	rootDN = "cn=admin,dc=postern,dc=local"
	rootPW = "replbench-secret"
)

// pair is two replicating members A and B.
type pair interface {
	name() string
	startA() error
	startB() error
	stopB() error
	addrA() string
	addrB() string
	close()
	phase() // a measure starts or ends (profiles, REPLBENCH_CPUPROFILE)
}

func main() {
	entries := flag.Int("entries", 10000, "entries for the full refresh and modifies for the catch-up")
	writes := flag.Int("writes", 500, "writes measured for write-to-visible latency, per round")
	rounds := flag.Int("rounds", 3, "rounds of latency writes (the median round is reported)")
	clients := flag.Int("clients", 16, "parallel LDAP clients for loading and the catch-up modifies")
	only := flag.String("only", "", "postern or slapd: measure one system")
	refreshOnly := flag.Bool("refresh-only", false, "measure the load and the full refresh only")
	slapdBin := flag.String("slapd", "/usr/sbin/slapd", "slapd binary")
	work := flag.String("dir", "", "work directory (default a new temporary one)")
	memberDir := flag.String("member", "", "internal: run one Postern member with its data in this directory")
	sid := flag.Int("sid", 1, "internal: the member's server ID")
	listen := flag.String("listen", "", "internal: the member's LDAP address")
	peer := flag.String("peer", "", "internal: the member's peer (provider) address")
	flag.Parse()
	if *memberDir != "" {
		if err := runMember(*memberDir, *sid, *listen, *peer); err != nil {
			fatal(err)
		}
		return
	}
	dir := *work
	if dir == "" {
		d, err := os.MkdirTemp("", "replbench")
		if err != nil {
			fatal(err)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	var pairs []pair
	if *only == "" || *only == "postern" {
		pairs = append(pairs, newPosternPair(filepath.Join(dir, "postern")))
	}
	if *only == "" || *only == "slapd" {
		pairs = append(pairs, newSlapdPair(filepath.Join(dir, "slapd"), *slapdBin))
	}
	// Loading and the full refresh, then the catch-up, run one system at
	// a time (they measure throughput); the latency samples of the two
	// systems are taken in turn, write by write, with both pairs up.
	defer func() {
		for _, p := range pairs {
			p.close()
		}
	}()
	for _, p := range pairs {
		if err := setup(p, *entries, *clients); err != nil {
			fail(pairs, fmt.Errorf("%s: %w", p.name(), err))
		}
	}
	if *refreshOnly {
		return
	}
	// steady state: let the last refresh's after-work (cookies, counts, the
	// consumers' own sessions the other way) finish on both systems
	time.Sleep(3 * time.Second)
	if err := measureLatency(pairs, *writes, *entries, max(1, *rounds)); err != nil {
		fail(pairs, err)
	}
	for _, p := range pairs {
		if err := catchUp(p, *entries, *clients); err != nil {
			fail(pairs, fmt.Errorf("%s: %w", p.name(), err))
		}
	}
}

// fail stops every pair and exits.
func fail(pairs []pair, err error) {
	for _, p := range pairs {
		p.close()
	}
	fatal(err)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "replbench:", err)
	os.Exit(1)
}

func dial(addr string) (*ldap.Conn, error) {
	l, err := ldap.DialURL("ldap://" + addr)
	if err != nil {
		return nil, err
	}
	if err := l.Bind(rootDN, rootPW); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// setup loads A and times B's full refresh.
func setup(p pair, n, clients int) error {
	sys := p.name()
	if err := p.startA(); err != nil {
		return err
	}
	// same data on both systems: the base, then n users over LDAP
	t0 := time.Now()
	if err := load(p.addrA(), n, clients); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	fmt.Printf("system=%s measure=load entries=%d seconds=%.3f\n", sys, n+2, time.Since(t0).Seconds())
	p.phase()

	t0 = time.Now()
	if err := p.startB(); err != nil {
		return err
	}
	if err := waitCount(p.addrB(), "(objectClass=*)", userDN(n-1), n+2, 10*time.Minute); err != nil {
		return fmt.Errorf("full refresh: %w", err)
	}
	fmt.Printf("system=%s measure=full_refresh entries=%d seconds=%.3f\n", sys, n+2, time.Since(t0).Seconds())
	p.phase()
	return nil
}

// measureLatency takes rounds × w write-to-visible samples on every pair,
// interleaved write by write (the order alternating), so that whatever
// else the machine does meanwhile falls on both systems alike. Each round's
// p50 and p99 (over its w writes) are printed; the reported figures are
// the median round's, which a single busy moment of a shared machine does
// not decide.
func measureLatency(pairs []pair, w, n, rounds int) error {
	probes := make([]*probe, len(pairs))
	for i, p := range pairs {
		pr, err := newProbe(p.addrA(), p.addrB())
		if err != nil {
			return fmt.Errorf("%s: latency: %w", p.name(), err)
		}
		defer pr.close()
		probes[i] = pr
	}
	type figures struct{ p50, p99, ack50, ack99 []float64 }
	res := make([]figures, len(pairs))
	for r := range rounds {
		for _, pr := range probes {
			pr.lat, pr.ack = pr.lat[:0], pr.ack[:0]
		}
		for i := range w {
			for k := range probes {
				if i%2 == 1 {
					k = len(probes) - 1 - k
				}
				if err := probes[k].sample(r*w+i, n); err != nil {
					return fmt.Errorf("%s: latency: %w", pairs[k].name(), err)
				}
			}
		}
		for k, p := range pairs {
			sys, pr, f := p.name(), probes[k], &res[k]
			if out := os.Getenv("REPLBENCH_SAMPLES"); out != "" {
				dumpSamples(fmt.Sprintf("%s.%s.%d", out, sys, r+1), pr.lat, pr.ack)
			}
			f.p50, f.p99 = append(f.p50, pct(pr.lat, 0.5)), append(f.p99, pct(pr.lat, 0.99))
			f.ack50, f.ack99 = append(f.ack50, pct(pr.ack, 0.5)), append(f.ack99, pct(pr.ack, 0.99))
			fmt.Printf("system=%s measure=latency_round round=%d writes=%d p50_ms=%.3f p99_ms=%.3f ack_p50_ms=%.3f ack_p99_ms=%.3f\n",
				sys, r+1, w, f.p50[r], f.p99[r], f.ack50[r], f.ack99[r])
		}
	}
	for k, p := range pairs {
		f := res[k]
		fmt.Printf("system=%s measure=latency writes=%d rounds=%d p50_ms=%.3f p99_ms=%.3f\n", p.name(), w, rounds, median(f.p50), median(f.p99))
		fmt.Printf("system=%s measure=write_ack writes=%d rounds=%d p50_ms=%.3f p99_ms=%.3f\n", p.name(), w, rounds, median(f.ack50), median(f.ack99))
	}
	return nil
}

func median(x []float64) float64 {
	s := slices.Clone(x)
	slices.Sort(s)
	return s[len(s)/2]
}

// catchUp stops B, modifies every entry on A and times B's catch-up.
func catchUp(p pair, n, clients int) error {
	sys := p.name()
	if err := p.stopB(); err != nil {
		return err
	}
	t0 := time.Now()
	if err := modifyAll(p.addrA(), n, clients, "catchup"); err != nil {
		return fmt.Errorf("modifies: %w", err)
	}
	fmt.Printf("system=%s measure=modifies_while_down modifies=%d seconds=%.3f\n", sys, n, time.Since(t0).Seconds())
	p.phase()
	t0 = time.Now()
	if err := p.startB(); err != nil {
		return err
	}
	if err := waitCount(p.addrB(), "(description=catchup)", "", n, 10*time.Minute); err != nil {
		return fmt.Errorf("catch-up: %w", err)
	}
	fmt.Printf("system=%s measure=catch_up modifies=%d seconds=%.3f\n", sys, n, time.Since(t0).Seconds())
	return nil
}

func userDN(i int) string { return fmt.Sprintf("uid=b%06d,ou=people,%s", i, suffix) }

// parallel runs fn(conn, i) for i in [0,n) on clients connections.
func parallel(addr string, n, clients int, fn func(l *ldap.Conn, i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := dial(addr)
			if err != nil {
				errs <- err
				return
			}
			defer l.Close()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(l, i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func load(addr string, n, clients int) error {
	l, err := dial(addr)
	if err != nil {
		return err
	}
	base := ldap.NewAddRequest(suffix, nil)
	base.Attribute("objectClass", []string{"top", "dcObject", "organization"})
	base.Attribute("dc", []string{"postern"})
	base.Attribute("o", []string{"Postern"})
	people := ldap.NewAddRequest("ou=people,"+suffix, nil)
	people.Attribute("objectClass", []string{"organizationalUnit"})
	people.Attribute("ou", []string{"people"})
	for _, r := range []*ldap.AddRequest{base, people} {
		if err := l.Add(r); err != nil {
			l.Close()
			return err
		}
	}
	l.Close()
	return parallel(addr, n, clients, func(l *ldap.Conn, i int) error {
		uid := fmt.Sprintf("b%06d", i)
		r := ldap.NewAddRequest(userDN(i), nil)
		r.Attribute("objectClass", []string{"inetOrgPerson"})
		r.Attribute("uid", []string{uid})
		r.Attribute("cn", []string{"Bench " + uid})
		r.Attribute("sn", []string{uid})
		r.Attribute("mail", []string{uid + "@example.com"})
		r.Attribute("description", []string{"initial"})
		return l.Add(r)
	})
}

func modifyAll(addr string, n, clients int, val string) error {
	return parallel(addr, n, clients, func(l *ldap.Conn, i int) error {
		m := ldap.NewModifyRequest(userDN(i), nil)
		m.Replace("description", []string{val})
		return l.Modify(m)
	})
}

// waitCount polls addr until filter matches want entries below the suffix.
// A count reads every entry on the server being measured, so it would
// cost that server time in proportion to its size at every poll (at
// 100,000 entries a poll every 100 ms took a third of the consumer's CPU,
// and the refresh's cost grew with the square of its size). So a base
// search first waits, cheaply, until probe (the last entry in DN order,
// among the last written) matches
// filter; then the counts follow, each after a pause of at least twice
// the last count's duration. Both systems are polled alike.
func waitCount(addr, filter, probe string, want int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var l *ldap.Conn
	defer func() {
		if l != nil {
			l.Close()
		}
	}()
	last, probed := -1, probe == ""
	for time.Now().Before(deadline) {
		if l == nil {
			var err error
			if l, err = dial(addr); err != nil {
				l = nil
				time.Sleep(20 * time.Millisecond)
				continue
			}
		}
		if !probed {
			res, err := l.Search(ldap.NewSearchRequest(probe, ldap.ScopeBaseObject, 0, 0, 0, false, filter, []string{"1.1"}, nil))
			switch {
			case err == nil && len(res.Entries) == 1:
				probed = true
				continue
			case err == nil, ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
			default:
				l.Close()
				l = nil
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		t0 := time.Now()
		res, err := l.Search(ldap.NewSearchRequest(suffix, ldap.ScopeWholeSubtree, 0, 0, 0, false, filter, []string{"1.1"}, nil))
		took := time.Since(t0)
		switch {
		case err == nil:
			last = len(res.Entries)
			if last == want {
				return nil
			}
		case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		default:
			l.Close()
			l = nil
		}
		time.Sleep(max(100*time.Millisecond, 2*took))
	}
	return fmt.Errorf("%s: %d entries after %v, want %d", filter, last, limit, want)
}

// pct returns the q quantile of d in milliseconds (d is sorted in place).
func pct(d []time.Duration, q float64) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[int(q*float64(len(s)-1))].Microseconds()) / 1000
}

// dumpSamples writes one line per write: write-to-visible and write
// acknowledgement in microseconds, in the order measured.
func dumpSamples(path string, lat, ack []time.Duration) {
	var b strings.Builder
	for i := range lat {
		fmt.Fprintf(&b, "%d %d %d\n", i, lat[i].Microseconds(), ack[i].Microseconds())
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "replbench:", err)
	}
}

// probe writes on a pair's A and polls its B until the write shows.
type probe struct {
	la, lb   *ldap.Conn
	lat, ack []time.Duration // per write: until visible on B, until A acknowledged
}

func newProbe(a, b string) (*probe, error) {
	la, err := dial(a)
	if err != nil {
		return nil, err
	}
	lb, err := dial(b)
	if err != nil {
		la.Close()
		return nil, err
	}
	return &probe{la: la, lb: lb}, nil
}

func (p *probe) close() {
	p.la.Close()
	p.lb.Close()
}

// sample modifies entry i%n on A and polls B until it has the new value.
func (p *probe) sample(i, n int) error {
	d := userDN(i % n)
	val := fmt.Sprintf("latency-%d", i)
	m := ldap.NewModifyRequest(d, nil)
	m.Replace("description", []string{val})
	t0 := time.Now()
	if err := p.la.Modify(m); err != nil {
		return err
	}
	ack := time.Since(t0)
	for {
		res, err := p.lb.Search(ldap.NewSearchRequest(d, ldap.ScopeBaseObject, 0, 0, 0, false,
			"(description="+val+")", []string{"1.1"}, nil))
		if err != nil {
			return err
		}
		if len(res.Entries) == 1 {
			break
		}
		if time.Since(t0) > 30*time.Second {
			return fmt.Errorf("write %d not visible on B after 30s", i)
		}
	}
	lat := time.Since(t0)
	p.lat, p.ack = append(p.lat, lat), append(p.ack, ack)
	if os.Getenv("REPLBENCH_TRACE") != "" && lat > 5*time.Millisecond {
		fmt.Fprintf(os.Stderr, "write %d: %v at %s\n", i, lat, t0.Format("15:04:05.000"))
	}
	return nil
}
