package integration

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFirmwareParityPause upgrades a running member to another firmware
// version in place: replication with it pauses and both sides say why;
// back on the cluster's version, it resumes by itself and catches up.
func TestFirmwareParityPause(t *testing.T) {
	f := newClusterFixture(t)
	a, b := f.start("127.0.0.16"), f.start("127.0.0.17")
	if out, err := f.join(b, a, f.prepare(a, "127.0.0.17")); err != nil {
		t.Fatalf("join: %v\n%s", err, out)
	}
	visibleOnB := func(cn string, within time.Duration) bool {
		deadline := time.Now().Add(within)
		for time.Now().Before(deadline) {
			if countPeople(t, b, "(cn="+cn+")") == 1 {
				return true
			}
			time.Sleep(200 * time.Millisecond)
		}
		return false
	}
	write := func(cn string) {
		c := dialAdmin(t, a)
		defer c.Close()
		if err := addPerson(c, cn); err != nil {
			t.Fatal(err)
		}
	}
	write("before-upgrade")
	if !visibleOnB("before-upgrade", 20*time.Second) {
		t.Fatal("replication a → b not working before the upgrade")
	}

	// b runs another firmware version on the same data.
	other := filepath.Join(t.TempDir(), "postern-other")
	if err := buildBinary(other, "9.9.8-other"); err != nil {
		t.Fatal(err)
	}
	b.stop()
	b.bin = other
	b.restart()
	eventually(t, 30*time.Second, "a's status shows the firmware mismatch and the paused link", func() string {
		st := a.clusterStatus(t)
		for _, m := range st.Members {
			if m.Self {
				continue
			}
			if !strings.Contains(m.Status, "paused: firmware "+testVersion+" here, 9.9.8-other there") {
				return "status: " + m.Status
			}
		}
		for _, s := range st.Setup {
			if s.IP == "127.0.0.17" && !strings.Contains(s.Parity, "firmware "+testVersion+" here, 9.9.8-other there") {
				return "parity: " + s.Parity
			}
		}
		return ""
	})
	write("during-mismatch")
	if visibleOnB("during-mismatch", 5*time.Second) {
		t.Fatal("a change replicated to a member of another firmware version")
	}

	// Back on the cluster's version: replication resumes and catches up.
	b.stop()
	b.bin = binary
	b.restart()
	if !visibleOnB("during-mismatch", 30*time.Second) {
		t.Fatal("replication did not resume after the versions matched again")
	}
	eventually(t, 30*time.Second, "a's status OK again", func() string {
		for _, m := range a.clusterStatus(t).Members {
			if !m.Self && !m.OK {
				return fmt.Sprintf("%s: %s", m.DeviceID, m.Status)
			}
		}
		return ""
	})
}

// TestRollingUpgradeWindow is issue 12's first fault: a is upgraded, then
// b; c, still on the old version, must not get a's writes through b in the
// moment before its parity check has seen b's upgrade: the version is
// checked on every connect, before any entry moves. Once c is upgraded too
// it catches up.
func TestRollingUpgradeWindow(t *testing.T) {
	f := newClusterFixture(t)
	xs := f.formCluster("127.0.0.54", "127.0.0.55", "127.0.0.56")
	a, b, c := xs[0], xs[1], xs[2]
	next := filepath.Join(t.TempDir(), "postern-next")
	if err := buildBinary(next, "9.9.10-next"); err != nil {
		t.Fatal(err)
	}
	upgrade := func(x *appliance) {
		x.stop()
		x.bin = next
		x.restart()
	}
	upgrade(a)
	during := a.addPerson(t, "written-on-the-new-version")
	upgrade(b)
	waitEntry(t, 30*time.Second, during, a, b) // a and b run the same version again
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		if c.entryOn(t, during) {
			t.Fatal("a change made on the new version reached a member of the old one")
		}
		time.Sleep(250 * time.Millisecond)
	}
	if st := c.clusterStatus(t); !strings.Contains(fmt.Sprint(st.Members), "paused: firmware "+testVersion+" here, 9.9.10-next there") {
		t.Errorf("c's status does not say why it is paused: %+v", st.Members)
	}
	upgrade(c)
	waitEntry(t, 30*time.Second, during, a, b, c)
	for _, x := range xs {
		x.waitAllOK(t, 3)
	}
}
