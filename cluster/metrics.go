package cluster

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics is the agent's Prometheus collector: it reads the agent's state
// when scraped.
type metrics struct {
	a   *Agent
	reg *prometheus.Registry

	membersUp, member, ctxAge, lag, remote, local, parity, ntpOffset *prometheus.Desc
	compareDiffs, compareTime                                        *prometheus.Desc
	heartbeatAge, linkOK, behind, ahead, diverged, writesRefused     *prometheus.Desc
}

func newMetrics(a *Agent, reg *prometheus.Registry) *metrics {
	m := &metrics{a: a, reg: reg,
		membersUp:     prometheus.NewDesc("postern_cluster_members_up", "Backend members reachable from here, this one included.", nil, nil),
		member:        prometheus.NewDesc("postern_cluster_member_up", "Whether a peer answers its heartbeats (1) or not (0).", []string{"device_id", "cluster_no"}, nil),
		ctxAge:        prometheus.NewDesc("postern_cluster_context_csn_age_seconds", "Age of the newest change seen from each server ID (Cluster No.).", []string{"sid"}, nil),
		lag:           prometheus.NewDesc("postern_cluster_replication_lag_seconds", "Replication lag from each peer.", []string{"device_id"}, nil),
		remote:        prometheus.NewDesc("postern_cluster_peer_entries", "Entries in each peer's database at its last heartbeat.", []string{"device_id"}, nil),
		local:         prometheus.NewDesc("postern_cluster_local_entries", "Entries in the local database.", nil, nil),
		parity:        prometheus.NewDesc("postern_cluster_parity", "1 when a peer runs this firmware version and NTP server, else 0.", []string{"device_id"}, nil),
		ntpOffset:     prometheus.NewDesc("postern_cluster_ntp_offset_seconds", "Clock offset against the NTP server (last measurement).", nil, nil),
		compareDiffs:  prometheus.NewDesc("postern_cluster_compare_differences", "Entries the backend members did not hold alike at the last `cluster compare`, by kind (missing, version).", []string{"kind"}, nil),
		compareTime:   prometheus.NewDesc("postern_cluster_compare_timestamp_seconds", "When the last `cluster compare` ran (Unix time).", nil, nil),
		heartbeatAge:  prometheus.NewDesc("postern_cluster_heartbeat_age_seconds", "Time since each peer last answered a heartbeat.", []string{"device_id"}, nil),
		linkOK:        prometheus.NewDesc("postern_cluster_link_ok", "1 while the replication link from each peer is in its persist stage.", []string{"device_id"}, nil),
		behind:        prometheus.NewDesc("postern_cluster_peer_behind_changes", "Changes each peer held that this member lacked at the last consistency check.", []string{"device_id"}, nil),
		ahead:         prometheus.NewDesc("postern_cluster_peer_ahead_changes", "Changes this member held that each peer lacked at the last consistency check.", []string{"device_id"}, nil),
		diverged:      prometheus.NewDesc("postern_cluster_peer_diverged", "1 when the last consistency check found each peer's tree different from this one with equal context CSNs.", []string{"device_id"}, nil),
		writesRefused: prometheus.NewDesc("postern_cluster_writes_refused", "1 while local writes are refused because this member's clock is off its NTP server.", nil, nil),
	}
	if reg != nil {
		reg.MustRegister(m)
	}
	return m
}

func (m *metrics) unregister() {
	if m.reg != nil {
		m.reg.Unregister(m)
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.membersUp, m.member, m.ctxAge, m.lag, m.remote, m.local, m.parity, m.ntpOffset, m.compareDiffs, m.compareTime,
		m.heartbeatAge, m.linkOK, m.behind, m.ahead, m.diverged, m.writesRefused} {
		ch <- d
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	a := m.a
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, _ := a.cfg.Store.Count(ctx)
	ch <- prometheus.MustNewConstMetric(m.local, prometheus.GaugeValue, float64(n))
	for sid, c := range a.cfg.Store.ContextCSN() {
		ch <- prometheus.MustNewConstMetric(m.ctxAge, prometheus.GaugeValue, time.Since(c.Time).Seconds(), strconv.Itoa(int(sid)))
	}
	a.mu.Lock()
	c := a.ntp
	peers := make([]*peer, 0, len(a.peers))
	for _, p := range a.peers {
		peers = append(peers, p)
	}
	member := a.st != nil
	a.mu.Unlock()
	if c.err == nil && !c.at.IsZero() {
		ch <- prometheus.MustNewConstMetric(m.ntpOffset, prometheus.GaugeValue, c.offset.Seconds())
	}
	refused := 0.0
	if c.blocked {
		refused = 1
	}
	ch <- prometheus.MustNewConstMetric(m.writesRefused, prometheus.GaugeValue, refused)
	up := 0
	if member {
		up = 1
	}
	loc := a.cfg.Local()
	for _, p := range peers {
		rec := p.record()
		p.mu.Lock()
		ok := p.client != nil && time.Since(p.lastOK) < 3*a.cfg.Heartbeat
		h, lastOK, check := p.hello, p.lastOK, p.check
		p.mu.Unlock()
		if !lastOK.IsZero() {
			ch <- prometheus.MustNewConstMetric(m.heartbeatAge, prometheus.GaugeValue, time.Since(lastOK).Seconds(), rec.DeviceID)
		}
		if check.State != "" && check.State != CheckStateError {
			ch <- prometheus.MustNewConstMetric(m.behind, prometheus.GaugeValue, float64(check.BehindChanges), rec.DeviceID)
			ch <- prometheus.MustNewConstMetric(m.ahead, prometheus.GaugeValue, float64(check.AheadChanges), rec.DeviceID)
			div := 0.0
			if check.State == CheckStateDiverged {
				div = 1
			}
			ch <- prometheus.MustNewConstMetric(m.diverged, prometheus.GaugeValue, div, rec.DeviceID)
		}
		v := 0.0
		if ok {
			v, up = 1, up+1
		}
		ch <- prometheus.MustNewConstMetric(m.member, prometheus.GaugeValue, v, rec.DeviceID, strconv.Itoa(rec.ClusterNo))
		if h != nil {
			ch <- prometheus.MustNewConstMetric(m.remote, prometheus.GaugeValue, float64(h.Entries), rec.DeviceID)
			par := 0.0
			if h.Version == a.cfg.Version && h.NTPServer == loc.NTPServer {
				par = 1
			}
			ch <- prometheus.MustNewConstMetric(m.parity, prometheus.GaugeValue, par, rec.DeviceID)
		}
		if p.link != nil {
			ls := p.link.Status()
			ch <- prometheus.MustNewConstMetric(m.lag, prometheus.GaugeValue, ls.Lag.Seconds(), rec.DeviceID)
			lok := 0.0
			if ls.OK {
				lok = 1
			}
			ch <- prometheus.MustNewConstMetric(m.linkOK, prometheus.GaugeValue, lok, rec.DeviceID)
		}
	}
	ch <- prometheus.MustNewConstMetric(m.membersUp, prometheus.GaugeValue, float64(up))
	if rep := a.LastCompare(); rep != nil {
		ch <- prometheus.MustNewConstMetric(m.compareDiffs, prometheus.GaugeValue, float64(rep.Missing), "missing")
		ch <- prometheus.MustNewConstMetric(m.compareDiffs, prometheus.GaugeValue, float64(rep.Versions), "version")
		ch <- prometheus.MustNewConstMetric(m.compareTime, prometheus.GaugeValue, float64(rep.Measured.Unix()))
	}
}
