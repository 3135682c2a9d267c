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
}

func newMetrics(a *Agent, reg *prometheus.Registry) *metrics {
	m := &metrics{a: a, reg: reg,
		membersUp:    prometheus.NewDesc("postern_cluster_members_up", "Backend members reachable from here, this one included.", nil, nil),
		member:       prometheus.NewDesc("postern_cluster_member_up", "Whether a peer answers its heartbeats (1) or not (0).", []string{"device_id", "cluster_no"}, nil),
		ctxAge:       prometheus.NewDesc("postern_cluster_context_csn_age_seconds", "Age of the newest change seen from each server ID (Cluster No.).", []string{"sid"}, nil),
		lag:          prometheus.NewDesc("postern_cluster_replication_lag_seconds", "Replication lag from each peer.", []string{"device_id"}, nil),
		remote:       prometheus.NewDesc("postern_cluster_peer_entries", "Entries in each peer's database at its last heartbeat.", []string{"device_id"}, nil),
		local:        prometheus.NewDesc("postern_cluster_local_entries", "Entries in the local database.", nil, nil),
		parity:       prometheus.NewDesc("postern_cluster_parity", "1 when a peer runs this firmware version and NTP server, else 0.", []string{"device_id"}, nil),
		ntpOffset:    prometheus.NewDesc("postern_cluster_ntp_offset_seconds", "Clock offset against the NTP server (last measurement).", nil, nil),
		compareDiffs: prometheus.NewDesc("postern_cluster_compare_differences", "Entries the backend members did not hold alike at the last `cluster compare`, by kind (missing, version).", []string{"kind"}, nil),
		compareTime:  prometheus.NewDesc("postern_cluster_compare_timestamp_seconds", "When the last `cluster compare` ran (Unix time).", nil, nil),
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
	for _, d := range []*prometheus.Desc{m.membersUp, m.member, m.ctxAge, m.lag, m.remote, m.local, m.parity, m.ntpOffset, m.compareDiffs, m.compareTime} {
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
	up := 0
	if member {
		up = 1
	}
	loc := a.cfg.Local()
	for _, p := range peers {
		rec := p.record()
		p.mu.Lock()
		ok := p.client != nil && time.Since(p.lastOK) < 3*a.cfg.Heartbeat
		h := p.hello
		p.mu.Unlock()
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
			ch <- prometheus.MustNewConstMetric(m.lag, prometheus.GaugeValue, p.link.Status().Lag.Seconds(), rec.DeviceID)
		}
	}
	ch <- prometheus.MustNewConstMetric(m.membersUp, prometheus.GaugeValue, float64(up))
	if rep := a.LastCompare(); rep != nil {
		ch <- prometheus.MustNewConstMetric(m.compareDiffs, prometheus.GaugeValue, float64(rep.Missing), "missing")
		ch <- prometheus.MustNewConstMetric(m.compareDiffs, prometheus.GaugeValue, float64(rep.Versions), "version")
		ch <- prometheus.MustNewConstMetric(m.compareTime, prometheus.GaugeValue, float64(rep.Measured.Unix()))
	}
}
