package appliance

import (
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// The figures of /metrics for the web menu's Status page: GET /v1/stats
// answers the postern_* families of the registry as JSON, and the history
// of the queue size and the replication lag over the last hour (sampled
// every statsEvery, machine-local, in memory).

const (
	statsEvery  = 30 * time.Second
	statsWindow = time.Hour
)

// MetricFamily is one metric of /metrics.
type MetricFamily struct {
	Name    string         `json:"name"`
	Help    string         `json:"help"`
	Type    string         `json:"type"`
	Samples []MetricSample `json:"samples"`
}

// MetricSample is one labelled value (a histogram's is its count; its
// sum is a sample labelled stat=sum).
type MetricSample struct {
	Labels map[string]string `json:"labels,omitempty"`
	Value  float64           `json:"value"`
}

// MetricPoint is one sample of a history.
type MetricPoint struct {
	Time  time.Time `json:"time"`
	Value float64   `json:"value"`
}

// StatsReport is GET /v1/stats.
type StatsReport struct {
	Metrics []MetricFamily           `json:"metrics"`
	History map[string][]MetricPoint `json:"history"`
}

// History series names.
const (
	seriesQueue = "queue_messages"
	seriesLag   = "replication_lag_seconds"
)

type statsHistory struct {
	mu     sync.Mutex
	series map[string][]MetricPoint
}

// gather reads the postern_* families from the registry.
func (a *Appliance) gather() ([]MetricFamily, error) {
	mfs, err := a.registry.Gather()
	if err != nil && len(mfs) == 0 {
		return nil, err
	}
	out := []MetricFamily{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "postern_") {
			continue
		}
		f := MetricFamily{Name: mf.GetName(), Help: mf.GetHelp(), Type: strings.ToLower(mf.GetType().String()), Samples: []MetricSample{}}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			f.Samples = append(f.Samples, sampleValues(mf.GetType(), m, labels)...)
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func sampleValues(t dto.MetricType, m *dto.Metric, labels map[string]string) []MetricSample {
	switch t {
	case dto.MetricType_COUNTER:
		return []MetricSample{{labels, m.GetCounter().GetValue()}}
	case dto.MetricType_GAUGE:
		return []MetricSample{{labels, m.GetGauge().GetValue()}}
	case dto.MetricType_HISTOGRAM:
		sum := map[string]string{"stat": "sum"}
		for k, v := range labels {
			sum[k] = v
		}
		return []MetricSample{{labels, float64(m.GetHistogram().GetSampleCount())}, {sum, m.GetHistogram().GetSampleSum()}}
	case dto.MetricType_SUMMARY:
		return []MetricSample{{labels, float64(m.GetSummary().GetSampleCount())}}
	default:
		return []MetricSample{{labels, m.GetUntyped().GetValue()}}
	}
}

// sampleStats adds one point to each history series.
func (a *Appliance) sampleStats(now time.Time) {
	mfs, err := a.gather()
	if err != nil {
		return
	}
	var queue, lag float64
	for _, f := range mfs {
		for _, s := range f.Samples {
			switch f.Name {
			case "postern_smtp_queue_messages":
				queue += s.Value
			case "postern_replication_lag_seconds":
				lag = max(lag, s.Value)
			}
		}
	}
	a.stats.mu.Lock()
	defer a.stats.mu.Unlock()
	if a.stats.series == nil {
		a.stats.series = map[string][]MetricPoint{}
	}
	for name, v := range map[string]float64{seriesQueue: queue, seriesLag: lag} {
		s := append(a.stats.series[name], MetricPoint{now.UTC(), v})
		for len(s) > 0 && now.Sub(s[0].Time) > statsWindow {
			s = s[1:]
		}
		a.stats.series[name] = s
	}
}

// runStats samples until stop is closed.
func (a *Appliance) runStats(stop <-chan struct{}) {
	a.sampleStats(time.Now())
	t := time.NewTicker(statsEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			a.sampleStats(now)
		}
	}
}

func (a *Appliance) statsRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/stats", a.jsonHandler(func(r *http.Request) (any, error) {
		mfs, err := a.gather()
		if err != nil {
			return nil, err
		}
		rep := StatsReport{Metrics: mfs, History: map[string][]MetricPoint{}}
		a.stats.mu.Lock()
		for k, v := range a.stats.series {
			rep.History[k] = append([]MetricPoint{}, v...)
		}
		a.stats.mu.Unlock()
		for _, k := range []string{seriesQueue, seriesLag} {
			if rep.History[k] == nil {
				rep.History[k] = []MetricPoint{}
			}
		}
		return rep, nil
	}))
}
