package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// startPrometheus runs Debian's prometheus on ip, scraping targets every
// second, and returns its address. It is stopped (by its PID) when the
// test ends.
func startPrometheus(t *testing.T, ip string, targets []string) string {
	t.Helper()
	bin := requireTool(t, "prometheus")
	dir := t.TempDir()
	var quoted []string
	for _, x := range targets {
		quoted = append(quoted, fmt.Sprintf("%q", x))
	}
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: postern\n    static_configs:\n      - targets: [%s]\n",
		strings.Join(quoted, ", "))
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t, ip)
	cmd := exec.Command(bin, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	eventually(t, 30*time.Second, "prometheus ready", func() string {
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err != nil {
			return err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return resp.Status + "\n" + out.String()
		}
		return ""
	})
	return addr
}

// promQuery runs an instant query and returns instance → value.
func promQuery(t *testing.T, addr, q string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/api/v1/query?query="+url.QueryEscape(q), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	defer resp.Body.Close()
	var ans struct {
		Status string
		Data   struct {
			Result []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &ans); err != nil || ans.Status != "success" {
		t.Fatalf("query %s: %v %s: %s", q, err, ans.Status, body)
	}
	if os.Getenv("PROM_DEBUG") != "" {
		t.Logf("%s → %s", q, body)
	}
	out := map[string]string{}
	for _, r := range ans.Data.Result {
		key := r.Metric["instance"]
		if d := r.Metric["device_id"]; d != "" {
			key += " " + d
		}
		out[key] = fmt.Sprint(r.Value[1])
	}
	return out
}

func describe(m map[string]string) string {
	if len(m) == 0 {
		return "no series"
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s ", k, m[k])
	}
	return b.String()
}

// TestPrometheusScrapesTheCluster is issue 11's tenth item: a real
// Prometheus scrapes three members; postern_cluster_members_up is 3 on
// each, then 2 within 10 s of a kill -9 of one; the per-peer and
// per-member series a Prometheus user expects are there.
func TestPrometheusScrapesTheCluster(t *testing.T) {
	f := newClusterFixture(t)
	xs := f.formCluster("127.0.0.35", "127.0.0.36", "127.0.0.37")
	var targets []string
	for _, x := range xs {
		targets = append(targets, x.addr["metrics"])
	}
	prom := startPrometheus(t, "127.0.0.38", targets)
	eventually(t, 30*time.Second, "members_up 3 on every member", func() string {
		got := promQuery(t, prom, "postern_cluster_members_up")
		if len(got) != 3 {
			return describe(got)
		}
		for _, v := range got {
			if v != "3" {
				return describe(got)
			}
		}
		return ""
	})
	// every peer series after a check interval (2 heartbeats) has passed
	time.Sleep(3 * time.Second)
	for _, q := range []string{"postern_cluster_link_ok", "postern_cluster_heartbeat_age_seconds", "postern_cluster_parity",
		"postern_cluster_peer_entries", "postern_cluster_replication_lag_seconds", "postern_replication_sessions_total",
		"postern_cluster_ntp_offset_seconds", "postern_ldap_connections", "postern_smtp_connections_refused_total"} {
		if got := promQuery(t, prom, q); len(got) < 3 {
			t.Errorf("%s: %s", q, describe(got))
		}
	}
	killed := time.Now()
	xs[2].kill9()
	eventually(t, 10*time.Second, "members_up 2 on the others within 10 s of the kill", func() string {
		got := promQuery(t, prom, "postern_cluster_members_up")
		n := 0
		for inst, v := range got {
			if inst != xs[2].addr["metrics"] && v == "2" {
				n++
			}
		}
		if n != 2 {
			return describe(got)
		}
		return ""
	})
	t.Logf("postern_cluster_members_up went 3 → 2 %s after the kill -9", time.Since(killed).Round(100*time.Millisecond))
	eventually(t, 10*time.Second, "the killed member's target down", func() string {
		if got := promQuery(t, prom, `up{job="postern"}`); got[xs[2].addr["metrics"]] != "0" {
			return describe(got)
		}
		return ""
	})
}
