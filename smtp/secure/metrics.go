package secure

import "github.com/prometheus/client_golang/prometheus"

// metrics counts every secure-mail decision:
// postern_secure_messages_total{op, method, outcome}.
//
//	op      encrypt, decrypt, sign, verify, dkim
//	method  smime, pgp, dkim
//	outcome ok, nokey, invalid, untrusted, error
type metrics struct {
	reg      *prometheus.Registry
	messages *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	m := &metrics{reg: reg, messages: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "postern_secure_messages_total",
		Help: "Messages encrypted, decrypted, signed, verified and DKIM-signed, by method and outcome.",
	}, []string{"op", "method", "outcome"})}
	if reg != nil {
		if err := reg.Register(m.messages); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) count(op, method, outcome string) {
	m.messages.WithLabelValues(op, method, outcome).Inc()
}

func (m *metrics) unregister() {
	if m.reg != nil {
		m.reg.Unregister(m.messages)
	}
}
