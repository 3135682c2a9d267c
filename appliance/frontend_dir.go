package appliance

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"postern/smtp"
)

// frontendDirectory is the SMTP gateway's directory on a frontend: what
// mail needs (managed domains, users' addresses, the relay policy), held
// in memory only and kept fresh by an RFC 4533 refreshAndPersist session
// with the backend in use, through the SSH tunnel, as the frontend's
// read-only identity. A change on any backend reaches it as soon as the
// backend has it (milliseconds, not the reference product's ten minutes).
// Nothing is written to disk. While no backend answers (beyond a short
// grace for a failover), every lookup fails with smtp.ErrDirectoryUnavailable
// and the gateway answers 451 4.4.3: it never accepts mail the policy
// would refuse.
type frontendDirectory struct {
	dial   func(ctx context.Context) (net.Conn, string, error)
	suffix string
	log    *slog.Logger
	grace  time.Duration

	// gen counts the changes the backend has sent since this frontend
	// started (every entry of the session's content, secure mail's key
	// and policy entries included): secure mail's answers cached on the
	// frontend (cachedKeys) are good while it has not moved
	gen atomic.Uint64

	mu       sync.RWMutex
	idx      *dirIndex // the current session's view
	ready    bool      // a refresh has completed on some session
	up       bool      // the session is in its persist stage
	lostAt   time.Time // when the last session ended
	backend  string
	lookups  *prometheus.HistogramVec
	outcomes *prometheus.CounterVec
}

// dirItem is one cached entry.
type dirItem struct {
	kind     string   // "domain", "relay", "user"
	name     string   // domain name
	mails    []string // a user's addresses, lower case
	deliver  string
	tls      string
	networks []string
	smart    string
}

// dirIndex is the cache with the indexes lookups use.
type dirIndex struct {
	items    map[uuid.UUID]dirItem
	domains  map[string]dirItem
	users    map[string]int // address → users with it
	domUsers map[string]int // domain → addresses in it
	relay    map[uuid.UUID]dirItem
}

func newDirIndex() *dirIndex {
	return &dirIndex{items: map[uuid.UUID]dirItem{}, domains: map[string]dirItem{}, users: map[string]int{},
		domUsers: map[string]int{}, relay: map[uuid.UUID]dirItem{}}
}

func (x *dirIndex) put(id uuid.UUID, it dirItem) {
	x.del(id)
	x.items[id] = it
	switch it.kind {
	case "domain":
		x.domains[it.name] = it
	case "relay":
		x.relay[id] = it
	case "user":
		for _, m := range it.mails {
			x.users[m]++
			if _, dom, ok := strings.Cut(m, "@"); ok {
				x.domUsers[dom]++
			}
		}
	}
}

func (x *dirIndex) del(id uuid.UUID) {
	old, ok := x.items[id]
	if !ok {
		return
	}
	delete(x.items, id)
	switch old.kind {
	case "domain":
		delete(x.domains, old.name)
	case "relay":
		delete(x.relay, id)
	case "user":
		for _, m := range old.mails {
			if x.users[m]--; x.users[m] <= 0 {
				delete(x.users, m)
			}
			if _, dom, ok := strings.Cut(m, "@"); ok {
				if x.domUsers[dom]--; x.domUsers[dom] <= 0 {
					delete(x.domUsers, dom)
				}
			}
		}
	}
}

// frontendFilter is what a frontend reads: domains, the relay policy and
// users' addresses.
// Secure mail's key and policy entries are in the content too: their
// changes tell the frontend when its cached answers of the backend's key
// lookups are stale (they carry no attribute the frontend reads; private
// keys are hidden from its session anyway).
const frontendFilter = "(|(objectClass=posternDomain)(objectClass=posternRelayPolicy)(&(objectClass=inetOrgPerson)(mail=*))(objectClass=posternKeyEntry)(objectClass=posternSecure))"

var frontendAttrs = []string{"objectClass", "cn", "mail", "posternDeliverTo", "posternTLSPolicy", "posternRelayNetwork", "posternSmarthost", "entryUUID"}

func newFrontendDirectory(dial func(ctx context.Context) (net.Conn, string, error), suffix string, reg *prometheus.Registry, log *slog.Logger) *frontendDirectory {
	d := &frontendDirectory{dial: dial, suffix: suffix, log: log, grace: 5 * time.Second, idx: newDirIndex(),
		lookups: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "postern_frontend_lookup_seconds",
			Help: "Time of the frontend's directory lookups (served from its in-memory cache).", Buckets: prometheus.ExponentialBuckets(1e-6, 4, 10)}, []string{"kind"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "postern_frontend_cache_lookups_total",
			Help: "Directory lookups of the frontend by result: hit (answered from the cache kept fresh by the backend) or miss (no backend session: 451)."}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(d.lookups, d.outcomes)
	}
	return d
}

// run keeps a sync session with the backend in use until ctx ends.
func (d *frontendDirectory) run(ctx context.Context) {
	for ctx.Err() == nil {
		err := d.session(ctx)
		d.mu.Lock()
		if d.up {
			d.lostAt = time.Now()
		}
		d.up = false
		d.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		d.log.Warn("frontend directory: session with the backend ended", slog.Any("err", err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// session runs one refreshAndPersist search (RFC 4533 §3.4) from an empty
// cookie: the view is small, so every session starts from a full refresh,
// built aside and taken at once when the refresh is done.
func (d *frontendDirectory) session(ctx context.Context) error {
	c, backend, err := d.dial(ctx)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l := ldap.NewConn(c, false)
	l.Start()
	defer l.Close()
	go func() { <-sctx.Done(); l.Close() }()
	req := ldap.NewSearchRequest(d.suffix, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, frontendFilter, frontendAttrs, nil)
	resp := l.Syncrepl(sctx, req, 64, ldap.SyncRequestModeRefreshAndPersist, nil, false)
	next := newDirIndex() // the refresh, built aside
	refreshing := true
	take := func() {
		d.mu.Lock()
		d.idx, d.ready, d.up, d.backend = next, true, true, backend
		d.mu.Unlock()
		d.gen.Add(1)
		d.log.Info("frontend directory: in sync with the backend", slog.String("backend", backend), slog.Int("entries", len(next.items)))
	}
	for resp.Next() {
		if e := resp.Entry(); e != nil {
			var st *ldap.ControlSyncState
			for _, ctl := range resp.Controls() {
				if s, ok := ctl.(*ldap.ControlSyncState); ok {
					st = s
				}
			}
			if st == nil {
				continue
			}
			target := next
			if !refreshing {
				d.mu.Lock()
				target = d.idx
			}
			switch st.State {
			case ldap.SyncStateAdd, ldap.SyncStateModify:
				if it, ok := itemOf(e); ok {
					target.put(st.EntryUUID, it)
				} else {
					target.del(st.EntryUUID)
				}
			case ldap.SyncStateDelete:
				target.del(st.EntryUUID)
			}
			if !refreshing {
				d.mu.Unlock()
				d.gen.Add(1)
			}
			continue
		}
		for _, ctl := range resp.Controls() {
			info, ok := ctl.(*ldap.ControlSyncInfo)
			if !ok {
				continue
			}
			switch info.Value {
			case ldap.SyncInfoSyncIdSet:
				if info.SyncIdSet.RefreshDeletes {
					for _, u := range info.SyncIdSet.SyncUUIDs {
						next.del(u)
					}
				}
			case ldap.SyncInfoRefreshPresent:
				if refreshing && info.RefreshPresent.RefreshDone {
					refreshing = false
					take()
				}
			case ldap.SyncInfoRefreshDelete:
				if refreshing && info.RefreshDelete.RefreshDone {
					refreshing = false
					take()
				}
			}
		}
	}
	if err := resp.Err(); err != nil {
		return err
	}
	return errors.New("the backend ended the sync search")
}

// itemOf makes a cache item of an entry (false: not one mail needs).
func itemOf(e *ldap.Entry) (dirItem, bool) {
	oc := map[string]bool{}
	for _, v := range e.GetAttributeValues("objectClass") {
		oc[strings.ToLower(v)] = true
	}
	switch {
	case oc["posterndomain"]:
		return dirItem{kind: "domain", name: strings.ToLower(e.GetAttributeValue("cn")), deliver: e.GetAttributeValue("posternDeliverTo"), tls: e.GetAttributeValue("posternTLSPolicy")}, true
	case oc["posternrelaypolicy"]:
		return dirItem{kind: "relay", networks: e.GetAttributeValues("posternRelayNetwork"), smart: e.GetAttributeValue("posternSmarthost")}, true
	case oc["inetorgperson"] && e.GetAttributeValue("mail") != "":
		it := dirItem{kind: "user"}
		for _, m := range e.GetAttributeValues("mail") {
			it.mails = append(it.mails, strings.ToLower(m))
		}
		return it, true
	}
	return dirItem{}, false
}

// generation returns the count of changes seen and whether the session is
// in its persist stage (only then does a change reach the frontend at
// once, so only then may answers be cached against the count).
func (d *frontendDirectory) generation() (uint64, bool) {
	d.mu.RLock()
	up := d.up
	d.mu.RUnlock()
	return d.gen.Load(), up
}

// view runs fn on the cache when it may answer: a refresh has completed
// and the session is up, or ended less than the grace ago (a failover).
func (d *frontendDirectory) view(kind string, fn func(x *dirIndex)) error {
	_, err := d.viewUp(kind, fn)
	return err
}

// viewUp is view that also says whether the session is up: while it is
// not (the grace of a failover), an answer that would refuse mail is not
// given from the cache (the callers turn it into ErrDirectoryUnavailable,
// 451 4.4.3): only answers that accept are, so that nothing is refused
// for good on what was known a moment ago.
func (d *frontendDirectory) viewUp(kind string, fn func(x *dirIndex)) (bool, error) {
	start := time.Now()
	d.mu.RLock()
	up := d.up
	ok := d.ready && (up || time.Since(d.lostAt) < d.grace)
	if ok {
		fn(d.idx)
	}
	d.mu.RUnlock()
	d.lookups.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	if !ok {
		d.outcomes.WithLabelValues("miss").Inc()
		return false, smtp.ErrDirectoryUnavailable
	}
	d.outcomes.WithLabelValues("hit").Inc()
	return up, nil
}

func (d *frontendDirectory) Domain(ctx context.Context, name string) (smtp.Domain, bool, error) {
	name = strings.ToLower(name)
	var dom smtp.Domain
	found := false
	up, err := d.viewUp("domain", func(x *dirIndex) {
		if it, ok := x.domains[name]; ok {
			dom, found = smtp.Domain{Name: name, DeliverTo: it.deliver, TLS: smtp.TLSPolicy(it.tls)}, true
		}
	})
	if err == nil && !found && !up {
		err = smtp.ErrDirectoryUnavailable
	}
	return dom, found, err
}

func (d *frontendDirectory) HasUsers(ctx context.Context, domain string) (bool, error) {
	found := false
	err := d.view("users", func(x *dirIndex) { found = x.domUsers[strings.ToLower(domain)] > 0 })
	return found, err
}

func (d *frontendDirectory) UserExists(ctx context.Context, address string) (bool, error) {
	found := false
	up, err := d.viewUp("user", func(x *dirIndex) { found = x.users[strings.ToLower(address)] > 0 })
	if err == nil && !found && !up {
		err = smtp.ErrDirectoryUnavailable
	}
	return found, err
}

func (d *frontendDirectory) Relay(ctx context.Context) (smtp.RelayPolicy, error) {
	var p smtp.RelayPolicy
	up, err := d.viewUp("relay", func(x *dirIndex) {
		for _, it := range x.relay {
			p.Smarthost = it.smart
			for _, n := range it.networks {
				if pfx, err := netip.ParsePrefix(n); err == nil {
					p.Networks = append(p.Networks, pfx)
				}
			}
		}
	})
	p.Stale = !up
	return p, err
}

// backendInUse names the backend the cache follows ("" before the first
// refresh).
func (d *frontendDirectory) backendInUse() string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.backend
}
