package webadmin

import (
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"time"
)

type statusPage struct {
	Status    statusReport
	Listeners []listener
	Figures   []figure
	Charts    []template.HTML
}

type listener struct{ Name, Addr string }

// figure is one metric in words: its help text and its values.
type figure struct {
	Name, Help string
	Values     []string
}

// statusShow is the Status page: listeners, uptime, the figures of
// /metrics in words, and charts of the queue size and the replication lag
// over the last hour.
func (s *Server) statusShow(w http.ResponseWriter, r *http.Request) {
	var p statusPage
	var st statsReport
	if err := s.be.call(r.Context(), "GET", "/v1/status", nil, &p.Status); err != nil {
		s.errorPage(w, r, http.StatusBadGateway, "Status", err)
		return
	}
	if err := s.be.call(r.Context(), "GET", "/v1/stats", nil, &st); err != nil {
		s.errorPage(w, r, http.StatusBadGateway, "Status", err)
		return
	}
	for n, a := range p.Status.Listeners {
		p.Listeners = append(p.Listeners, listener{n, a})
	}
	sort.Slice(p.Listeners, func(i, j int) bool { return p.Listeners[i].Name < p.Listeners[j].Name })
	for _, f := range st.Metrics {
		fg := figure{Name: f.Name, Help: f.Help}
		for _, sm := range f.Samples {
			fg.Values = append(fg.Values, sampleText(sm))
		}
		if len(fg.Values) == 0 {
			fg.Values = []string{"none yet"}
		}
		p.Figures = append(p.Figures, fg)
	}
	now := s.cfg.Now()
	p.Charts = []template.HTML{
		chart("Queue size (messages), last hour", "", st.History["queue_messages"], now, time.Hour),
		chart("Replication lag (seconds, the largest of the peers), last hour", " s", st.History["replication_lag_seconds"], now, time.Hour),
	}
	s.render(w, r, http.StatusOK, "status", &page{Title: "Status", Nav: "status", Data: p})
}

func sampleText(sm metricSample) string {
	var ls []string
	for k, v := range sm.Labels {
		ls = append(ls, k+" "+v)
	}
	sort.Strings(ls)
	v := fmtValue(sm.Value, "")
	if len(ls) == 0 {
		return v
	}
	return fmt.Sprintf("%s (%s)", v, strings.Join(ls, ", "))
}
