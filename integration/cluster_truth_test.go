package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postern/ldapstore"
	"postern/ldapstore/csn"
)

// formCluster starts appliances on ips and joins them all to the first.
func (f *clusterFixture) formCluster(ips ...string) []*appliance {
	f.t.Helper()
	var xs []*appliance
	for _, ip := range ips {
		xs = append(xs, f.start(ip))
	}
	id := f.prepare(xs[0], ips[1:]...)
	for _, x := range xs[1:] {
		if out, err := f.join(x, xs[0], id); err != nil {
			f.t.Fatalf("join %s: %v\n%s", x.ip, err, out)
		}
	}
	for _, x := range xs {
		x.waitAllOK(f.t, len(xs))
	}
	return xs
}

// waitAllOK waits until x's Cluster members table has n rows, all OK.
func (x *appliance) waitAllOK(t *testing.T, n int) {
	t.Helper()
	eventually(t, 30*time.Second, x.ip+": every member OK", func() string {
		st := x.clusterStatus(t)
		if len(st.Members) != n {
			return fmt.Sprintf("%d members: %+v", len(st.Members), st.Members)
		}
		for _, m := range st.Members {
			if !m.OK {
				return fmt.Sprintf("%+v", st.Members)
			}
		}
		return ""
	})
}

// memberRow returns x's Cluster members row of the member on ip.
func (x *appliance) memberRow(t *testing.T, ip string) (status, state string) {
	for _, m := range x.clusterStatus(t).Members {
		if m.IP == ip {
			return m.Status, m.State
		}
	}
	return "", ""
}

// TestStatusTellsTheTruth is issue 10's seventh fault: status compares
// the members' context CSNs and digests and says "diverged" when they hold
// the same changes and different trees (equal counts included), and a
// member whose clock is off its NTP server refuses local writes and says
// so, as its peers do.
func TestStatusTellsTheTruth(t *testing.T) {
	f := newClusterFixture(t)
	xs := f.formCluster("127.0.0.19", "127.0.0.20")
	a, b := xs[0], xs[1]

	// b gets an entry a never will, under one of a's CSNs older than
	// everything b has seen of a: the context CSNs stay equal, the trees
	// do not (the shape of the faults of issue 10: same CSNs, other tree)
	b.stop()
	st, err := ldapstore.Open(filepath.Join(b.data, "ldap.db"), ldapstore.Options{ServerID: 2})
	if err != nil {
		t.Fatal(err)
	}
	old := st.ContextCSN()[1]
	ghost := csn.CSN{Time: old.Time.Add(-time.Second), SID: 1}
	e := &ldapstore.Entry{DN: "uid=ghost,ou=people," + suffix}
	for _, kv := range [][2]string{{"objectClass", "inetOrgPerson"}, {"uid", "ghost"}, {"cn", "Ghost"}, {"sn", "G"},
		{"entryUUID", "01a20000-0000-7000-8000-00000000beef"}, {"entryCSN", ghost.String()},
		{"creatorsName", adminDN}, {"modifiersName", adminDN}, {"createTimestamp", "20260101000000Z"}, {"modifyTimestamp", "20260101000000Z"}} {
		e.Set(kv[0], append(e.Get(kv[0]), kv[1])...)
	}
	if res, err := st.ApplyBatch(context.Background(), []ldapstore.ReplChange{{Entry: e}}, "", ""); err != nil || res.Applied != 1 {
		t.Fatalf("ghost entry: %+v %v", res, err)
	}
	if st.ContextCSN()[1] != old {
		t.Fatal("the ghost moved the context CSN")
	}
	st.Close()
	b.restart()
	for _, x := range []*appliance{a, b} {
		other := b
		if x == b {
			other = a
		}
		eventually(t, 30*time.Second, x.ip+" sees the divergence", func() string {
			status, state := x.memberRow(t, other.ip)
			if state != "diverged" || !strings.Contains(status, "Cluster No. 1 differ") {
				return status
			}
			return ""
		})
		status, _ := x.memberRow(t, other.ip)
		t.Logf("%s about %s: %s", x.ip, other.ip, status)
	}

	// cluster compare names the entry and exits 1
	out, err := a.cli("cluster", "compare")
	if exitCode(err) != 1 || !strings.Contains(out, "missing 01a20000-0000-7000-8000-00000000beef") || !strings.Contains(out, "uid=ghost,ou=people,"+suffix) ||
		!strings.Contains(out, "1 missing somewhere, 0 in different versions") {
		t.Fatalf("cluster compare of diverged members: exit %d\n%s", exitCode(err), out)
	}
	t.Logf("cluster compare:\n%s", out)
	resp, err := http.Get("http://" + a.addr["metrics"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `postern_cluster_compare_differences{kind="missing"} 1`) {
		t.Errorf("metrics lack the last comparison:\n%s", grepLines(string(body), "compare"))
	}

	// b's clock an hour ahead: it refuses local writes and says why; a
	// shows it in b's parity; nothing of b's future reaches a
	b.stop()
	b.env = []string{"POSTERN_TEST_CLOCK_SKEW=1h"}
	b.restart()
	out, err = tool(t, nil, "dn: uid=future,ou=people,"+suffix+"\nobjectClass: inetOrgPerson\nuid: future\ncn: F\nsn: F\n",
		"ldapadd", "-x", "-H", b.ldapURL(), "-D", adminDN, "-w", adminPassword)
	if exitCode(err) != 53 || !strings.Contains(out, "clock") {
		t.Fatalf("ldapadd on a member an hour ahead: exit %d\n%s", exitCode(err), out)
	}
	t.Logf("ldapadd on b: %s", strings.TrimSpace(out))
	status, state := b.memberRow(t, b.ip)
	if state != "writes refused" || !strings.Contains(status, "clock is 1h0m0s ahead of NTP server") {
		t.Fatalf("b's own row: %s (%s)", status, state)
	}
	if st := b.clusterStatus(t); !st.NTP.WritesRefused || st.NTP.OffsetMS > -3599000 {
		t.Fatalf("b's NTP status: %+v", st.NTP)
	}
	eventually(t, 20*time.Second, "a shows b's clock in its parity", func() string {
		for _, r := range a.clusterStatus(t).Setup {
			if r.IP == b.ip && strings.Contains(r.Parity, "clock 1h0m0s ahead of NTP server") {
				return ""
			}
		}
		return fmt.Sprintf("%+v", a.clusterStatus(t).Setup)
	})
	resp, err = http.Get("http://" + b.addr["metrics"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "postern_cluster_ntp_offset_seconds -3599.9") && !strings.Contains(string(body), "postern_cluster_ntp_offset_seconds -3600") {
		t.Errorf("b's metrics lack its offset:\n%s", grepLines(string(body), "ntp"))
	}
	for _, r := range a.clusterStatus(t).Replication {
		if r.ClusterNo == 2 {
			if c, err := csn.Parse(r.ContextCSN); err == nil && c.Time.After(time.Now().Add(time.Minute)) {
				t.Fatalf("a holds a change of b from the future: %s", r.ContextCSN)
			}
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
