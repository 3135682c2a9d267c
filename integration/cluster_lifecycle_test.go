package integration

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRejoinAndIdentifiers is issue 11's fourth and eighth items: a
// removed member and a member that left join again with a new identifier
// (the new join lifts the revocation), `cluster check` predicts what join
// does, an identifier expires and can admit a single join, and a second
// member of the same hostname or cluster address is refused.
func TestRejoinAndIdentifiers(t *testing.T) {
	f := newClusterFixture(t)
	xs := f.formCluster("127.0.0.28", "127.0.0.29", "127.0.0.30")
	a, b, c := xs[0], xs[1], xs[2]
	cID := c.deviceID(t)

	// remove → rejoin
	if out, err := a.cli("cluster", "remove", cID); err != nil {
		t.Fatalf("remove: %v\n%s", err, out)
	}
	eventually(t, 20*time.Second, "c standalone", func() string {
		if c.clusterStatus(t).Member {
			return "still a member"
		}
		return ""
	})
	id := f.prepare(a, c.ip)
	check := func(x *appliance, id string) (string, error) {
		return x.cli("cluster", "check", "--id", id, "--password-file", f.pw, "--member", a.addr["cluster"], "--self", x.addr["cluster"])
	}
	if out, err := check(c, id); err != nil || !strings.Contains(out, "all checks passed") {
		t.Fatalf("check of the removed member: %v\n%s", err, out)
	}
	out, err := f.join(c, a, id)
	if err != nil {
		t.Fatalf("removed member joins again: %v\n%s", err, out)
	}
	t.Logf("rejoin after remove: %s", lastLine(out))
	for _, x := range xs {
		x.waitAllOK(t, 3)
	}

	// leave → rejoin, with the same identifier (valid for several joins)
	if out, err := b.cli("cluster", "leave"); err != nil {
		t.Fatalf("leave: %v\n%s", err, out)
	}
	eventually(t, 20*time.Second, "b gone from a's members", func() string {
		if n := len(a.clusterStatus(t).Members); n != 2 {
			return "members: " + strings.Repeat("x", n)
		}
		return ""
	})
	if out, err := f.join(b, a, f.prepare(a, b.ip)); err != nil {
		t.Fatalf("rejoin after leave: %v\n%s", err, out)
	}
	for _, x := range xs {
		x.waitAllOK(t, 3)
	}
	if st := a.clusterStatus(t); len(st.Members) != 3 {
		t.Fatalf("ghost members after the rejoins: %+v", st.Members)
	}

	// an identifier expires
	short := filepath.Join(t.TempDir(), "short.txt")
	if out, err := a.cli("cluster", "prepare", "--password-file", f.pw, "--out", short, "--valid", "1s", "--allow", "127.0.0.31,127.0.0.32"); err != nil {
		t.Fatalf("prepare --valid 1s: %v\n%s", err, out)
	}
	d := f.start("127.0.0.31")
	time.Sleep(1500 * time.Millisecond)
	out, err = check(d, short)
	if err == nil || !strings.Contains(out, "this cluster identifier expired at") {
		t.Fatalf("check with an expired identifier: %v\n%s", err, out)
	}
	out, err = f.join(d, a, short)
	if err == nil || !strings.Contains(out, "expired at") || !strings.Contains(out, "postern cluster prepare") {
		t.Fatalf("join with an expired identifier: %v\n%s", err, out)
	}
	t.Logf("expired: %s", firstProblem(out))

	// an identifier for one join
	once := filepath.Join(t.TempDir(), "once.txt")
	if out, err := a.cli("cluster", "prepare", "--password-file", f.pw, "--out", once, "--once"); err != nil || !strings.Contains(out, "admits one join") {
		t.Fatalf("prepare --once: %v\n%s", err, out)
	}
	if out, err := f.join(d, a, once); err != nil {
		t.Fatalf("join with a once identifier: %v\n%s", err, out)
	}
	e := startAppliance(t, "127.0.0.32", append(f.common, "--hostname", "m127-0-0-28")...) // a's hostname
	out, err = f.join(e, a, once)
	if err == nil || !strings.Contains(out, "was used at") {
		t.Fatalf("second join with a once identifier: %v\n%s", err, out)
	}
	t.Logf("used: %s", firstProblem(out))

	// a hostname already a member's
	out, err = check(e, f.prepare(a, e.ip))
	if err == nil || !strings.Contains(out, "hostname m127-0-0-28 is already member") {
		t.Fatalf("check of a joiner named like a member: %v\n%s", err, out)
	}
	t.Logf("same hostname: %s", firstProblem(out))
	if st := a.clusterStatus(t); len(st.Members) != 4 {
		t.Fatalf("members after the refused joins: %d, want 4 (a, b, c, d)", len(st.Members))
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func firstProblem(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "- ") {
			return strings.TrimSpace(l)
		}
	}
	return strings.TrimSpace(s)
}

// TestRecoveryAfterRestart is issue 11's fifth item: while a member is
// down, `cluster status` answers at once from what the agent measured
// (it does not dial the dead member while the admin waits), and a member
// back from a kill -9 is OK again within about 2 s of being ready.
func TestRecoveryAfterRestart(t *testing.T) {
	f := newClusterFixture(t)
	xs := f.formCluster("127.0.0.33", "127.0.0.34")
	a, b := xs[0], xs[1]
	b.kill9()
	eventually(t, 15*time.Second, "b shown unreachable", func() string {
		if status, state := a.memberRow(t, b.ip); state != "unreachable" {
			return status
		}
		return ""
	})
	start := time.Now()
	a.clusterStatus(t)
	if took := time.Since(start); took > time.Second {
		t.Errorf("cluster status took %s while a member is down", took)
	} else {
		t.Logf("cluster status with a member down answered in %s", took.Round(time.Millisecond))
	}
	status, _ := a.memberRow(t, b.ip)
	if !strings.Contains(status, "unreachable (since ") {
		t.Errorf("row of the dead member: %s", status)
	}
	time.Sleep(5 * time.Second) // long enough for the redial backoff to reach its cap
	b.restart()
	ready := time.Now()
	for {
		if _, state := a.memberRow(t, b.ip); state == "ok" {
			break
		}
		if time.Since(ready) > 8*time.Second {
			status, _ := a.memberRow(t, b.ip)
			t.Fatalf("b not OK on a 8 s after its restart: %s", status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("b OK on a %s after it was ready again", time.Since(ready).Round(100*time.Millisecond))
	// about 2 s on a quiet machine (the redial and retry caps); the bound
	// leaves room for a loaded 2-core CI box
	if took := time.Since(ready); took > 6*time.Second {
		t.Errorf("recovery took %s, want about 2 s", took)
	}
}
