package appliance

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"postern/ldapstore"
	"postern/ldapstore/filter"
	"postern/smtp"
	"postern/smtp/queue"
)

// ldapDirectory is the SMTP gateway's view of the directory: managed
// domains, users and relay settings, read from the local store on every
// lookup so a policy change applies at once (and, in a cluster, as soon as
// it has replicated).
type ldapDirectory struct {
	a *Appliance

	mu       sync.Mutex
	hasUsers map[string]cachedBool // domain → whether users exist, briefly cached
}

type cachedBool struct {
	v  bool
	at time.Time
}

// hasUsersTTL bounds how long "this domain has users" is cached: it takes
// a substring search, the one lookup here no index answers.
const hasUsersTTL = 2 * time.Second

func (d *ldapDirectory) Domain(ctx context.Context, name string) (smtp.Domain, bool, error) {
	e, err := d.a.store.Get(ctx, d.a.domainDN(name))
	if ldapstore.CodeOf(err) == ldapstore.NoSuchObject {
		return smtp.Domain{}, false, nil
	}
	if err != nil {
		return smtp.Domain{}, false, err
	}
	return smtp.Domain{Name: name, DeliverTo: e.First("posternDeliverTo"), TLS: smtp.TLSPolicy(e.First("posternTLSPolicy"))}, true, nil
}

func (d *ldapDirectory) HasUsers(ctx context.Context, domain string) (bool, error) {
	d.mu.Lock()
	c, ok := d.hasUsers[domain]
	d.mu.Unlock()
	if ok && time.Since(c.at) < hasUsersTTL {
		return c.v, nil
	}
	found, err := d.any(ctx, "(&(objectClass=inetOrgPerson)(mail=*@"+filter.Escape(domain)+"))")
	if err != nil {
		return false, err
	}
	d.mu.Lock()
	d.hasUsers[domain] = cachedBool{found, time.Now()}
	d.mu.Unlock()
	return found, nil
}

func (d *ldapDirectory) UserExists(ctx context.Context, address string) (bool, error) {
	return d.any(ctx, "(&(objectClass=inetOrgPerson)(mail="+filter.Escape(address)+"))")
}

// any reports whether the filter matches at least one entry of the tree.
func (d *ldapDirectory) any(ctx context.Context, f string) (bool, error) {
	flt, err := filter.Parse(f)
	if err != nil {
		return false, err
	}
	found := false
	err = d.a.store.Search(ctx, &ldapstore.SearchRequest{BaseDN: d.a.cfg.Suffix, Scope: ldapstore.ScopeSub, Filter: flt, SizeLimit: 1}, func(*ldapstore.Entry) error {
		found = true
		return nil
	})
	if found && ldapstore.CodeOf(err) == ldapstore.SizeLimitExceeded {
		err = nil
	}
	return found, err
}

func (d *ldapDirectory) Relay(ctx context.Context) (smtp.RelayPolicy, error) {
	rs, err := d.a.Relay(ctx)
	if err != nil {
		return smtp.RelayPolicy{}, err
	}
	p := smtp.RelayPolicy{Smarthost: rs.Smarthost}
	for _, n := range rs.Networks {
		if pfx, err := netip.ParsePrefix(n); err == nil {
			p.Networks = append(p.Networks, pfx)
		}
	}
	return p, nil
}

// QueueEntry is one queued message as `postern queue list` shows it.
type QueueEntry struct {
	ID         string           `json:"id"`
	Arrival    time.Time        `json:"arrival"`
	From       string           `json:"from"`
	Size       int64            `json:"size"`
	Recipients []QueueRecipient `json:"recipients"`
	Header     string           `json:"header,omitempty"`
}

// QueueRecipient is one recipient's delivery state.
type QueueRecipient struct {
	Address     string    `json:"address"`
	Status      string    `json:"status"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	Diagnostic  string    `json:"diagnostic,omitempty"`
}

func queueEntry(m queue.Message) QueueEntry {
	q := QueueEntry{ID: m.ID, Arrival: m.Arrival, From: m.From, Size: m.Size, Recipients: []QueueRecipient{}}
	for _, r := range m.Recipients {
		q.Recipients = append(q.Recipients, QueueRecipient{Address: r.Addr, Status: r.Status.String(), Attempts: r.Attempts, NextAttempt: r.NextAttempt, Diagnostic: r.Diagnostic})
	}
	return q
}

func (a *Appliance) queueRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/queue", a.jsonHandler(func(r *http.Request) (any, error) {
		if r.URL.Query().Get("cluster") == "true" {
			return a.callAll(r, "queue.list")
		}
		return a.queueList(r.Context())
	}))
	mux.HandleFunc("GET /v1/queue/{id}", a.jsonHandler(func(r *http.Request) (any, error) {
		m, hdr, err := a.smtp.Show(r.Context(), r.PathValue("id"))
		if err != nil {
			return nil, queueErr(err, r.PathValue("id"))
		}
		q := queueEntry(m)
		q.Header = strings.ReplaceAll(string(hdr), "\r\n", "\n")
		return q, nil
	}))
	mux.HandleFunc("POST /v1/queue/flush", a.jsonHandler(func(r *http.Request) (any, error) {
		if r.URL.Query().Get("cluster") == "true" {
			return a.callAll(r, "queue.flush")
		}
		n, err := a.smtp.Flush(r.Context())
		return map[string]int{"scheduled": n}, err
	}))
	mux.HandleFunc("DELETE /v1/queue/{id}", a.jsonHandler(func(r *http.Request) (any, error) {
		return map[string]string{"deleted": r.PathValue("id")}, queueErr(a.smtp.Delete(r.Context(), r.PathValue("id")), r.PathValue("id"))
	}))
}

func queueErr(err error, id string) error {
	if errors.Is(err, queue.ErrNotFound) {
		return &apiError{http.StatusNotFound, "no queued message " + id}
	}
	return err
}

// queueList lists this appliance's queue.
func (a *Appliance) queueList(ctx context.Context) ([]QueueEntry, error) {
	ms, err := a.smtp.List(ctx)
	out := []QueueEntry{}
	for _, m := range ms {
		out = append(out, queueEntry(m))
	}
	return out, err
}
