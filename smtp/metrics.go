package smtp

import (
	"github.com/prometheus/client_golang/prometheus"

	"postern/smtp/queue"
)

// metrics are the gateway's collectors, registered in Config.Registry.
type metrics struct {
	reg          *prometheus.Registry
	received     prometheus.Counter
	delivered    prometheus.Counter
	deferred     prometheus.Counter
	bounced      prometheus.Counter
	refusedConns prometheus.Counter
	latency      prometheus.Histogram
	queueSize    prometheus.GaugeFunc
}

func newMetrics(reg *prometheus.Registry, q *queue.Queue) (*metrics, error) {
	m := &metrics{
		reg: reg,
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "postern_smtp_messages_received_total",
			Help: "Messages accepted and queued (answered 250).",
		}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "postern_smtp_messages_delivered_total",
			Help: "Recipient deliveries accepted by the next hop (one per recipient).",
		}),
		deferred: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "postern_smtp_messages_deferred_total",
			Help: "Delivery attempts that failed temporarily and will be retried (one per recipient).",
		}),
		bounced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "postern_smtp_messages_bounced_total",
			Help: "Recipients given up on: permanent failure or queue lifetime expired.",
		}),
		refusedConns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "postern_smtp_connections_refused_total",
			Help: "Inbound connections refused by the connection caps.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "postern_smtp_delivery_latency_seconds",
			Help:    "Time from arrival in the queue to delivery at the next hop.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 1800, 3600, 4 * 3600, 24 * 3600},
		}),
		queueSize: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "postern_smtp_queue_messages",
			Help: "Messages in the queue.",
		}, func() float64 { return float64(q.Len()) }),
	}
	if reg == nil {
		return m, nil
	}
	for i, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			for _, d := range m.collectors()[:i] {
				reg.Unregister(d)
			}
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.received, m.delivered, m.deferred, m.bounced, m.refusedConns, m.latency, m.queueSize}
}

func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors() {
		m.reg.Unregister(c)
	}
}
