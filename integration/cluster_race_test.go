package integration

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConcurrentJoins races two real joins through two different members
// of a two-member cluster: the join lock is cluster-wide, so exactly one
// join runs and the other is told who is joining since when; the busy one
// loses nothing and joins afterwards; the cluster's tree is intact
// throughout (the reference product warns that parallel joins may lose
// configuration; ours may not).
func TestConcurrentJoins(t *testing.T) {
	f := newClusterFixture(t)
	a, b, c, d := f.start("127.0.0.12"), f.start("127.0.0.13"), f.start("127.0.0.14"), f.start("127.0.0.15")
	// An identifier pins the host key of the member it was made on, so
	// each joiner uses one made on the member it goes through.
	ids := map[*appliance]string{a: f.prepare(a, "127.0.0.13")}
	join := func(x, via *appliance) (string, error) { return f.join(x, via, ids[via]) }
	if out, err := join(b, a); err != nil {
		t.Fatalf("join b: %v\n%s", err, out)
	}
	// A new identifier on b and protection changes on a, at once: edits of
	// the cluster configuration on two members must both survive.
	ids[b] = f.prepare(b)
	if out, err := a.cli("cluster", "protect", "--add", "127.0.0.14"); err != nil {
		t.Fatalf("protect: %v\n%s", err, out)
	}
	if out, err := a.cli("cluster", "protect", "--add", "127.0.0.15"); err != nil {
		t.Fatalf("protect: %v\n%s", err, out)
	}
	// A tree big enough that a join's copy takes a while.
	var ldif strings.Builder
	const n = 8000
	for i := 0; i < n; i++ {
		fmt.Fprintf(&ldif, "dn: cn=bulk%05d,ou=people,%s\nobjectClass: person\ncn: bulk%05d\nsn: Bulk\ndescription: %s\n\n", i, suffix, i, strings.Repeat("x", 200))
	}
	lf := filepath.Join(t.TempDir(), "bulk.ldif")
	os.WriteFile(lf, []byte(ldif.String()), 0o600)
	if out, err := a.cli("ldif", "import", lf); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	eventually(t, 60*time.Second, "bulk entries replicated to b", func() string {
		if got := countPeople(t, b, "(cn=bulk*)"); got != n {
			return fmt.Sprintf("b has %d of %d", got, n)
		}
		return ""
	})
	// Each joiner has an entry of its own that a busy join must not touch.
	for _, x := range []*appliance{c, d} {
		xc := dialAdmin(t, x)
		if err := addPerson(xc, "own-"+x.ip); err != nil {
			t.Fatal(err)
		}
		xc.Close()
	}

	// c joins through a, d through b, at the same moment.
	var wg sync.WaitGroup
	outs := make([]string, 2)
	errs := make([]error, 2)
	start := make(chan struct{})
	for i, p := range [][2]*appliance{{c, a}, {d, b}} {
		wg.Add(1)
		go func(i int, x, via *appliance) {
			defer wg.Done()
			<-start
			outs[i], errs[i] = join(x, via)
		}(i, p[0], p[1])
	}
	close(start)
	wg.Wait()
	busy := -1
	for i := range outs {
		if errs[i] != nil {
			if !strings.Contains(outs[i], "busy: ") || !strings.Contains(outs[i], " is joining since ") {
				t.Fatalf("joiner %d failed for another reason than busy: %v\n%s", i, errs[i], outs[i])
			}
			if busy >= 0 {
				t.Fatalf("both joins refused:\n%s\n%s", outs[0], outs[1])
			}
			busy = i
		}
	}
	if busy < 0 {
		t.Fatalf("both joins ran at once (the lock is not cluster-wide):\n%s\n%s", outs[0], outs[1])
	}
	winner, loser := []*appliance{c, d}[1-busy], []*appliance{c, d}[busy]
	winnerID := winner.deviceID(t)
	if !strings.Contains(outs[busy], "busy: "+winnerID+" is joining since ") {
		t.Fatalf("busy message does not name the joining device %s:\n%s", winnerID, outs[busy])
	}
	if !strings.Contains(outs[1-busy], "joined cluster") {
		t.Fatalf("winning join:\n%s", outs[1-busy])
	}
	// Nothing lost: the busy joiner kept its tree, the cluster its own.
	if countPeople(t, loser, "(cn=own-"+loser.ip+")") != 1 {
		t.Fatalf("the busy joiner lost its own entry")
	}
	for _, x := range []*appliance{a, b, winner} {
		if got := countPeople(t, x, "(cn=bulk*)"); got != n {
			t.Fatalf("%s has %d of %d entries after the concurrent joins", x.ip, got, n)
		}
	}
	// The loser joins once the winner is done, as the next Cluster No.
	via := map[*appliance]*appliance{c: a, d: b}[loser]
	out, err := join(loser, via)
	if err != nil || !strings.Contains(out, "Cluster No. 4") {
		t.Fatalf("second join: %v\n%s", err, out)
	}
	eventually(t, 60*time.Second, "four members OK", func() string {
		st := a.clusterStatus(t)
		if len(st.Members) != 4 {
			return fmt.Sprintf("%d members", len(st.Members))
		}
		for _, m := range st.Members {
			if !m.OK && !m.Self {
				return m.DeviceID + ": " + m.Status
			}
		}
		return ""
	})

	// Prometheus sees the same: four members up, parity everywhere, a
	// replication link from each peer, in a format promtool accepts.
	eventually(t, 30*time.Second, "cluster metrics on a", func() string {
		body := scrape(t, a)
		for _, want := range []string{"postern_cluster_members_up 4", "postern_cluster_local_entries ", "postern_cluster_ntp_offset_seconds ", "postern_cluster_context_csn_age_seconds{sid=\"1\"}"} {
			if !strings.Contains(body, want) {
				return "lacks " + want
			}
		}
		for _, metric := range []string{"postern_cluster_member_up{", "postern_cluster_parity{", "postern_replication_connected{"} {
			if n := countSamples(body, metric, "1"); n != 3 {
				return fmt.Sprintf("%d samples of %s... equal 1, want 3", n, metric)
			}
		}
		if out, err := tool(t, nil, body, "promtool", "check", "metrics"); err != nil {
			return "promtool: " + out
		}
		return ""
	})
}

// scrape returns the appliance's /metrics.
func scrape(t *testing.T, x *appliance) string {
	t.Helper()
	resp, err := http.Get("http://" + x.addr["metrics"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// countSamples counts the samples of a metric (prefix up to "{") whose value is v.
func countSamples(body, prefix, v string) int {
	n := 0
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) && strings.HasSuffix(l, "} "+v) {
			n++
		}
	}
	return n
}
