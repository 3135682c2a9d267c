package replication

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"postern/ldapstore"
	"postern/ldapstore/csn"
)

// Phases of a link (LinkStatus.Phase).
const (
	PhaseConnecting = "connecting"
	PhaseRefresh    = "refresh" // RFC 4533 §3.3
	PhasePersist    = "persist" // RFC 4533 §3.4
	PhasePaused     = "paused"
	PhaseStopped    = "stopped"
)

// LinkStatus is the state of one provider link, for the cluster agent and
// the menu.
type LinkStatus struct {
	RID       int
	Provider  string
	Connected bool
	Err       string // why the last session ended, or why the link is paused
	Phase     string
	Since     time.Time // when Phase or Err last changed
	Cookie    string    // the provider's last cookie, as stored
	// Lag is how long the newest applied change took from its CSN time to
	// being applied here (clock offsets between members included).
	Lag           time.Duration
	LastApplied   time.Time
	RemoteEntries int // entries below the base at the provider (counted after the refresh, then every CountInterval)
	// RemoteContext is the provider's context CSN as its Root DSE showed
	// it at Probed (every ProbeInterval while the session persists).
	RemoteContext csn.Vector
	Probed        time.Time
	LocalEntries  int
	Applied       int64 // changes written
	Stale         int64 // changes already superseded here
	Conflicts     int64 // same-DN conflicts resolved
	LostFound     int64 // entries put in lost+found
	Rejected      int64 // changes refused by the schema
	// Text is "OK (N entries in remote database, N entries in local
	// database)" or the error.
	Text string
}

// Status returns a copy of the link's status.
func (c *Consumer) Status() LinkStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.status
	switch {
	case s.Connected && s.Phase == PhasePersist:
		s.Text = fmt.Sprintf("OK (%d entries in remote database, %d entries in local database)", s.RemoteEntries, s.LocalEntries)
	case s.Connected:
		s.Text = fmt.Sprintf("Synchronising (%s, %d entries in local database)", s.Phase, s.LocalEntries)
	case s.Err != "":
		s.Text = "Error: " + s.Err
	default:
		s.Text = "Not connected (" + s.Phase + ")"
	}
	return s
}

func (c *Consumer) update(fn func(*LinkStatus)) {
	c.mu.Lock()
	phase, err := c.status.Phase, c.status.Err
	fn(&c.status)
	if c.status.Phase != phase || c.status.Err != err || c.status.Since.IsZero() {
		c.status.Since = time.Now()
	}
	c.mu.Unlock()
}

// SIDStatus is the newest change known from one server ID.
type SIDStatus struct {
	SID  int
	CSN  string
	Time time.Time
}

// ContextStatus returns the store's context CSN per server ID, in server
// ID order.
func ContextStatus(st *ldapstore.Store) []SIDStatus {
	v := st.ContextCSN()
	out := make([]SIDStatus, 0, len(v))
	for _, sid := range v.SIDs() {
		c := v[sid]
		out = append(out, SIDStatus{SID: int(sid), CSN: c.String(), Time: c.Time})
	}
	return out
}

// linkMetrics are one link's collectors.
type linkMetrics struct {
	connected, lag               prometheus.Gauge
	applied, conflicts, sessions prometheus.Counter
}

func newLinkMetrics(reg *prometheus.Registry, rid int, provider string, log *slog.Logger) *linkMetrics {
	labels := prometheus.Labels{"rid": fmt.Sprintf("%03d", rid), "provider": provider}
	m := &linkMetrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "postern_replication_connected",
			Help: "1 while the replication link to the provider has a sync session.", ConstLabels: labels}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "postern_replication_lag_seconds",
			Help: "Time from the newest applied change's CSN to its application here.", ConstLabels: labels}),
		applied: prometheus.NewCounter(prometheus.CounterOpts{Name: "postern_replication_changes_applied_total",
			Help: "Replicated changes written to the local store.", ConstLabels: labels}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Name: "postern_replication_conflicts_total",
			Help: "Same-DN conflicts and lost+found placements resolved.", ConstLabels: labels}),
		sessions: prometheus.NewCounter(prometheus.CounterOpts{Name: "postern_replication_sessions_total",
			Help: "Sync sessions started with the provider (the first, and every reconnect).", ConstLabels: labels}),
	}
	if reg != nil {
		// a link made again for the same provider (a member that left and
		// joined again) carries on with the series already registered
		m.connected = register(reg, m.connected, log)
		m.lag = register(reg, m.lag, log)
		m.applied = register(reg, m.applied, log)
		m.conflicts = register(reg, m.conflicts, log)
		m.sessions = register(reg, m.sessions, log)
	}
	return m
}

// register registers c, or returns the collector already registered for
// the same series.
func register[C prometheus.Collector](reg *prometheus.Registry, c C, log *slog.Logger) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if old, ok := are.ExistingCollector.(C); ok {
			return old
		}
	}
	log.Warn("replication: metrics not registered", "err", err)
	return c
}
