package server

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"postern/ldapstore"
)

// metrics are the server's Prometheus collectors. A nil *metrics records
// nothing.
type metrics struct {
	ops       *prometheus.CounterVec
	open      prometheus.Gauge
	accepted  prometheus.Counter
	malformed prometheus.Counter
	refusedC  prometheus.Counter
	acceptErr prometheus.Counter
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	m := &metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "postern_ldap_operations_total",
			Help: "LDAP operations served, by operation and result code.",
		}, []string{"op", "code"}),
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "postern_ldap_connections",
			Help: "Open LDAP connections.",
		}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "postern_ldap_connections_total",
			Help: "LDAP connections accepted.",
		}),
		malformed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "postern_ldap_protocol_errors_total",
			Help: "LDAP connections closed with a Notice of Disconnection after a malformed or oversized message.",
		}),
		refusedC: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "postern_ldap_connections_refused_total",
			Help: "LDAP connections refused because MaxConnections or MaxConnectionsPerIP was reached.",
		}),
		acceptErr: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "postern_ldap_accept_errors_total",
			Help: "Temporary accept errors (such as no file descriptor left) the LDAP listeners waited out.",
		}),
	}
	for _, c := range []prometheus.Collector{m.ops, m.open, m.accepted, m.malformed, m.refusedC, m.acceptErr} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// codeLabels caches the label of the common result codes.
var codeLabels = func() [128]string {
	var l [128]string
	for i := range l {
		l[i] = strconv.Itoa(i)
	}
	return l
}()

func (m *metrics) op(op string, code ldapstore.ResultCode) {
	if m == nil {
		return
	}
	var l string
	if int(code) < len(codeLabels) {
		l = codeLabels[code]
	} else {
		l = strconv.Itoa(int(code))
	}
	m.ops.WithLabelValues(op, l).Inc()
}

func (m *metrics) connOpened() {
	if m == nil {
		return
	}
	m.open.Inc()
	m.accepted.Inc()
}

func (m *metrics) connClosed() {
	if m == nil {
		return
	}
	m.open.Dec()
}

func (m *metrics) protocolError() {
	if m == nil {
		return
	}
	m.malformed.Inc()
}

func (m *metrics) refused() {
	if m == nil {
		return
	}
	m.refusedC.Inc()
}

func (m *metrics) acceptError() {
	if m == nil {
		return
	}
	m.acceptErr.Inc()
}
