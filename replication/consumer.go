package replication

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/prometheus/client_golang/prometheus"

	"postern/ldapstore"
	"postern/ldapstore/csn"
)

// ConsumerConfig configures a Consumer: one provider link.
type ConsumerConfig struct {
	RID      int              // 1..999, unique per provider link (the cookie's rid)
	Provider string           // the provider's name in status, logs and the cookie key (e.g. its address)
	Store    *ldapstore.Store // the local store
	// Dial connects to the provider: TCP, or an SSH tunnel channel.
	Dial func(ctx context.Context) (net.Conn, error)
	// BindDN and Password: simple bind; empty BindDN = no bind (the
	// transport already authenticated the connection).
	BindDN, Password string
	BaseDN           string // default the store's suffix
	// Paused, when it reports true, stops syncing (cluster parity); the
	// reason is shown in the status.
	Paused func() (bool, string)
	// Version, when set, is this member's firmware version: a session with
	// a Postern provider of another version (its Root DSE vendorVersion)
	// ends before any entry moves, on every connect.
	Version string

	MinBackoff    time.Duration // first reconnect delay, default 100ms
	MaxBackoff    time.Duration // reconnect delay cap, default 30s
	BatchSize     int           // changes per transaction at most, default 512
	Timeout       time.Duration // bind and count requests, default 30s
	CountInterval time.Duration // how often the remote entry count is refreshed, default 1 min
	// ProbeInterval is how often a session in the persist stage checks
	// that the provider still answers (a Root DSE read bounded by
	// Timeout); a dead one ends the session. Default 10s.
	ProbeInterval time.Duration

	Logger   *slog.Logger
	Registry *prometheus.Registry // optional
}

// Consumer replicates from one provider into the local store (RFC 4533
// §3, refreshAndPersist) until its Run's ctx ends.
type Consumer struct {
	cfg     ConsumerConfig
	log     *slog.Logger
	key     string // the cookie's key in the store
	metrics *linkMetrics

	mu        sync.Mutex
	status    LinkStatus
	refreshed atomic.Bool // a refresh of this consumer completed in this process
}

// ErrConfig is returned by Run for an unusable ConsumerConfig.
var ErrConfig = errors.New("replication: invalid consumer configuration")

// NewConsumer returns a consumer; Run starts it.
func NewConsumer(cfg ConsumerConfig) *Consumer {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 512
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.CountInterval <= 0 {
		cfg.CountInterval = time.Minute
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = 10 * time.Second
	}
	if cfg.BaseDN == "" && cfg.Store != nil {
		cfg.BaseDN = cfg.Store.Suffix()
	}
	c := &Consumer{
		cfg: cfg,
		log: cfg.Logger.With("rid", cfg.RID, "provider", cfg.Provider),
		key: cookieKey(cfg.RID, cfg.Provider),
	}
	c.status = LinkStatus{RID: cfg.RID, Provider: cfg.Provider, Phase: PhaseConnecting}
	c.metrics = newLinkMetrics(cfg.Registry, cfg.RID, cfg.Provider, c.log)
	return c
}

// CookieKey is the key under which the consumer's cookie is stored
// (ldapstore.Store.Cookie).
func (c *Consumer) CookieKey() string { return c.key }

func cookieKey(rid int, provider string) string {
	return fmt.Sprintf("rid=%03d,provider=%s", rid, provider)
}

// CopiedCookie is the cookie, and the key it is stored under, of the
// consumer of provider (replica ID rid, whose server ID is sid) in a store
// that has just been given a copy of the provider's directory holding every
// change up to seen (a cluster join's copy). Stored with the copy, it makes
// that consumer's first session a delta refresh from seen (RFC 4533
// §3.3.2: the changes made during the copy) instead of a present phase
// that would send the whole directory again; a provider that no longer
// holds its changelog that far back gives a present phase all the same.
func CopiedCookie(rid, sid int, provider string, seen csn.Vector) (key, cookie string) {
	return cookieKey(rid, provider), Cookie{RID: rid, SID: sid, CSNs: seen.Clone()}.String()
}

// Run syncs, reconnecting with capped exponential backoff, until ctx ends;
// it then returns nil after the session's goroutines are done.
func (c *Consumer) Run(ctx context.Context) error {
	cfg := c.cfg
	if cfg.Store == nil || cfg.Dial == nil || cfg.RID < 1 || cfg.RID > maxRID {
		return fmt.Errorf("%w: need Store, Dial and RID 1..%d", ErrConfig, maxRID)
	}
	backoff := cfg.MinBackoff
	for ctx.Err() == nil {
		if cfg.Paused != nil {
			if p, why := cfg.Paused(); p {
				c.update(func(s *LinkStatus) { s.Connected, s.Phase, s.Err = false, PhasePaused, "paused: "+why })
				if !sleep(ctx, time.Second) {
					break
				}
				continue
			}
		}
		c.update(func(s *LinkStatus) { s.Phase = PhaseConnecting })
		c.metrics.sessions.Inc()
		persisted, err := c.session(ctx)
		if ctx.Err() != nil {
			break
		}
		if persisted {
			backoff = cfg.MinBackoff
		}
		msg := "provider ended the sync session"
		if err != nil {
			msg = err.Error()
		}
		// ±20% jitter so that members do not reconnect in lockstep
		d := time.Duration(float64(backoff) * (0.8 + 0.4*rand.Float64()))
		level := slog.LevelInfo
		if err != nil {
			// a failure that stops replication (apply, disk, provider)
			level = slog.LevelWarn
		}
		c.log.Log(ctx, level, "replication: session ended", "err", msg, "retry_in", d.Round(time.Millisecond))
		c.update(func(s *LinkStatus) { s.Connected, s.Err = false, msg })
		c.metrics.connected.Set(0)
		if !sleep(ctx, d) {
			break
		}
		backoff = min(2*backoff, cfg.MaxBackoff)
	}
	c.update(func(s *LinkStatus) { s.Connected, s.Phase = false, PhaseStopped })
	c.metrics.connected.Set(0)
	return nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// result is one response of the sync search, read by go-ldap.
type result struct {
	entry *ldap.Entry
	ctrls []ldap.Control
	err   error
}

// session runs one sync session on one connection. go-ldap's Syncrepl
// gives us decoded entries, Sync State controls and Sync Info messages but
// has no Abandon, so the session ends by closing the connection. It
// reports whether the session reached the persist stage.
func (c *Consumer) session(ctx context.Context) (bool, error) {
	cfg := c.cfg
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	nc, err := cfg.Dial(sctx)
	if err != nil {
		return false, fmt.Errorf("replication: dial %s: %w", cfg.Provider, err)
	}
	l := ldap.NewConn(nc, false)
	// No request timeout on the connection: go-ldap applies it to every
	// request, the persistent sync search included, which it would end
	// after Timeout without a change (RFC 4533 §3.4: a persist stage lasts
	// until an error). Bind and the probes below bound their own time.
	l.Start()
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-sctx.Done()
		l.Close()
	}()
	if cfg.BindDN != "" {
		err := bounded(sctx, cfg.Timeout, l, func() error { return l.Bind(cfg.BindDN, cfg.Password) })
		if err != nil {
			return false, fmt.Errorf("replication: bind to %s as %s: %w", cfg.Provider, cfg.BindDN, err)
		}
	}
	var info providerInfo
	if err := bounded(sctx, cfg.Timeout, l, func() (err error) { info, err = readProviderInfo(l); return err }); err != nil {
		return false, fmt.Errorf("replication: root DSE of %s: %w", cfg.Provider, err)
	}
	if cfg.Version != "" && info.postern && info.version != "" && info.version != cfg.Version {
		// checked on every connect, before the sync search: nothing moves
		// between firmware versions, even in the moment before the
		// cluster's own parity check has seen an upgrade
		return false, fmt.Errorf("paused: firmware %s here, %s there", cfg.Version, info.version)
	}
	stored, err := cfg.Store.Cookie(c.key)
	if err != nil {
		return false, err
	}
	prev, err := ParseCookie(stored)
	if err != nil {
		c.log.Warn("replication: stored cookie unreadable, full refresh", "err", err)
		prev, _ = ParseCookie("")
	}
	// OpenLDAP's consumer form: our rid and sid with the provider's CSNs,
	// also on the first session (no CSNs yet, "rid=001,sid=002" as
	// syncrepl sends it): the sid tells a multi-master provider not to
	// stream our own changes back to us, among them every entry we are
	// copying from it while it serves our refresh. For our own server ID
	// the vector holds how far this store holds our own changes (our
	// context CSN; the epoch when we hold none): a store that went back in
	// time (restored from an older copy) gets its own later changes back
	// in the refresh.
	csns := prev.CSNs.Clone()
	own := uint16(cfg.Store.ServerID())
	if seen, ok := info.context[own]; ok && cfg.Store.NoteLostChange(seen) {
		c.log.Warn("replication: the provider holds a change of this member that its directory lacks (restored from an older copy?): getting this member's own changes back; serving no sync search meanwhile", "csn", seen.String())
	}
	// Until this link's first refresh, from the context CSN the store had
	// when it was opened: changes it made since then are newer than any
	// it may have lost, and a store restored from an older copy must not
	// skip the gap because it has written since.
	mine, ok := cfg.Store.OpenedContext()[own]
	if c.refreshed.Load() {
		mine, ok = cfg.Store.ContextCSN()[own]
	}
	if !ok {
		mine = csn.CSN{Time: time.Unix(0, 0).UTC(), SID: own}
	}
	csns[own] = mine
	ck := []byte(Cookie{RID: cfg.RID, SID: int(own), CSNs: csns}.String())
	if info.postern && len(prev.CSNs) > 0 && !covers(prev.CSNs, info.pruned) {
		c.log.Warn("replication: this member's state is older than the provider's changelog retention: full refresh (present phase); entries deleted there meanwhile are deleted here", "cookie", prev.CSNs.String(), "pruned", info.pruned.String())
	}
	req := ldap.NewSearchRequest(cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"*", "+", AttrParentUUID}, nil)
	resp := l.Syncrepl(sctx, req, 256, ldap.SyncRequestModeRefreshAndPersist, ck, false)
	c.update(func(s *LinkStatus) { s.Connected, s.Err, s.Phase = true, "", PhaseRefresh })
	c.metrics.connected.Set(1)
	c.log.Debug("replication: sync search started", "cookie", string(ck))

	msgs := make(chan result, 1024)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(msgs)
		for resp.Next() {
			select {
			case msgs <- result{entry: resp.Entry(), ctrls: resp.Controls()}:
			case <-sctx.Done():
				return
			}
		}
		if err := resp.Err(); err != nil {
			select {
			case msgs <- result{err: err}:
			case <-sctx.Done():
			}
		}
	}()
	refreshed := make(chan struct{}) // closed, then set to nil, once the refresh is applied
	wg.Add(1)
	go func(refreshed <-chan struct{}) {
		defer wg.Done()
		c.probe(sctx, cancel, l, refreshed)
	}(refreshed)

	a := newApplier(c, prev.String())
	a.provider = info
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		var r result
		var ok bool
		select {
		case <-sctx.Done():
			return a.persisted, nil
		case <-tick.C:
			if cfg.Paused != nil {
				if p, _ := cfg.Paused(); p {
					return a.persisted, errors.New("replication: paused")
				}
			}
			continue
		case r, ok = <-msgs:
		}
		// group commit: take what has already arrived, up to a batch
		for ok {
			if err := a.handle(sctx, r); err != nil {
				return a.persisted, err
			}
			if len(a.batch) >= cfg.BatchSize || a.mustFlush {
				break
			}
			more := false
			select {
			case r, ok = <-msgs:
				more = ok
			default:
			}
			if !more {
				break
			}
		}
		if err := a.flush(sctx); err != nil {
			return a.persisted, err
		}
		if a.persisted && refreshed != nil {
			close(refreshed)
			refreshed = nil
			c.refreshed.Store(true)
			// the refresh brought back every change of ours the provider
			// held past what we asked from (rollback.go)
			if ck, err := ParseCookie(a.cookie); err == nil {
				if mine, ok := ck.CSNs[own]; ok {
					cfg.Store.NoteRecovered(mine)
				}
			}
		}
		if !ok {
			if a.refreshOnlyDone {
				return a.persisted, nil
			}
			return a.persisted, errors.New("replication: provider ended the sync search")
		}
	}
}
