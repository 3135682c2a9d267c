package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"
)

// recorder keeps the latency of every successful operation of one client. Each client
// owns one, so recording takes no lock; merge joins them after the run.
type recorder struct {
	lat    []time.Duration
	errors int
	first  error // first error seen, for the report on stderr
}

func newRecorder(capacity int) *recorder {
	return &recorder{lat: make([]time.Duration, 0, capacity)}
}

func (r *recorder) ok(d time.Duration) { r.lat = append(r.lat, d) }

func (r *recorder) fail(err error) {
	r.errors++
	if r.first == nil {
		r.first = err
	}
}

// result is the outcome of one run: what ldapload prints.
type result struct {
	Workload string  `json:"workload"`
	Clients  int     `json:"clients"`
	Seconds  float64 `json:"seconds"`
	Ops      int     `json:"ops"`
	OpsPerS  float64 `json:"ops_per_s"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	Maxms    float64 `json:"max_ms"`
	Errors   int     `json:"errors"`
	// CPUus is the server's CPU time per successful operation in µs (0: not measured).
	CPUus float64 `json:"server_cpu_us_per_op,omitempty"`
	// firstErr is the first error of any client; not printed on stdout.
	firstErr error
}

// merge builds the result of a run from its clients' recorders. Latencies are merged
// into one sorted slice; percentiles are nearest-rank: the smallest sample with at
// least p% of the samples at or below it.
func merge(workload string, clients int, elapsed time.Duration, recs []*recorder) result {
	n := 0
	for _, r := range recs {
		n += len(r.lat)
	}
	all := make([]time.Duration, 0, n)
	res := result{Workload: workload, Clients: clients, Seconds: elapsed.Seconds()}
	for _, r := range recs {
		all = append(all, r.lat...)
		res.Errors += r.errors
		if res.firstErr == nil && r.first != nil {
			res.firstErr = r.first
		}
	}
	slices.Sort(all)
	res.Ops = len(all)
	if elapsed > 0 {
		res.OpsPerS = float64(res.Ops) / elapsed.Seconds()
	}
	res.P50ms = ms(percentile(all, 50))
	res.P99ms = ms(percentile(all, 99))
	if len(all) > 0 {
		res.Maxms = ms(all[len(all)-1])
	}
	return res
}

// percentile returns the nearest-rank p-th percentile of sorted, 0 when it is empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted)) + 0.999999999) // ceil without float noise
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// print writes the result as one line: key=value fields, or JSON.
func (r result) print(w io.Writer, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	cpu := ""
	if r.CPUus > 0 {
		cpu = fmt.Sprintf(" server_cpu=%.1fus/op", r.CPUus)
	}
	_, err := fmt.Fprintf(w, "workload=%s clients=%d duration=%.2fs ops=%d ops/s=%.1f p50=%.3fms p99=%.3fms max=%.3fms errors=%d%s\n",
		r.Workload, r.Clients, r.Seconds, r.Ops, r.OpsPerS, r.P50ms, r.P99ms, r.Maxms, r.Errors, cpu)
	return err
}
