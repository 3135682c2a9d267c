package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// entryOn reports whether x's directory holds dn.
func (x *appliance) entryOn(t *testing.T, dn string) bool {
	t.Helper()
	out, err := tool(t, nil, "", "ldapsearch", "-x", "-LLL", "-H", x.ldapURL(), "-D", adminDN, "-w", adminPassword, "-b", dn, "-s", "base", "1.1")
	return err == nil && strings.Contains(out, "dn: ")
}

func (x *appliance) addPerson(t *testing.T, uid string) string {
	t.Helper()
	dn := "uid=" + uid + ",ou=people," + suffix
	x.ldapModify(t, fmt.Sprintf("dn: %s\nchangetype: add\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\n", dn, uid, uid, uid))
	return dn
}

func waitEntry(t *testing.T, within time.Duration, dn string, xs ...*appliance) {
	t.Helper()
	eventually(t, within, dn+" on every member", func() string {
		for _, x := range xs {
			if !x.entryOn(t, dn) {
				return "missing on " + x.ip
			}
		}
		return ""
	})
}

// TestDayTwo is issue 12's scenarios on a three-member cluster of
// processes: an LDIF import never changes ou=cluster on a member; a member
// restarted on another cluster port announces it and every write flows; a
// member whose key was deleted while stopped gets back in with rekey and a
// new identifier, and one with its key rotates it; leave says whom it told;
// a member removed while switched off turns standalone when it starts; a
// join over local writes saves them; the queues of all members are listed
// together; `cluster password` retires every identifier; status shows NTP
// trouble and clears it.
func TestDayTwo(t *testing.T) {
	f := newClusterFixture(t)
	xs := f.formCluster("127.0.0.50", "127.0.0.51", "127.0.0.52")
	a, b, c := xs[0], xs[1], xs[2]
	cID := c.deviceID(t)

	t.Run("an LDIF import never changes ou=cluster", func(t *testing.T) {
		export, err := a.cli("ldif", "export")
		if err != nil || !strings.Contains(export, "ou=cluster") {
			t.Fatalf("export: %v", err)
		}
		out, err := a.cliIn(strings.NewReader(strings.ReplaceAll(export, "posternComment:", "posternComment: x\nposternLocation:")), "ldif", "import", "-")
		if err != nil || !strings.Contains(out, "below ou=cluster skipped") {
			t.Fatalf("import: %v\n%s", err, out)
		}
		for _, x := range xs {
			x.waitAllOK(t, 3)
		}
	})

	t.Run("a member on a new cluster port", func(t *testing.T) {
		c.stop()
		c.addr["cluster"] = freePort(t, c.ip)
		c.restart() // on the new --cluster port, the rest as before
		c.waitLog(t, "announcing the new one")
		for _, x := range xs {
			x.waitAllOK(t, 3)
		}
		waitEntry(t, 20*time.Second, c.addPerson(t, "from-moved-c"), a, b, c)
		waitEntry(t, 20*time.Second, a.addPerson(t, "to-moved-c"), a, b, c)
		for _, r := range a.clusterStatus(t).Setup {
			if r.DeviceID == cID && r.Port != strings.Split(c.addr["cluster"], ":")[1] {
				t.Fatalf("a's record of c: port %s, want %s", r.Port, c.addr["cluster"])
			}
		}
	})

	t.Run("rekey with the old key", func(t *testing.T) {
		out, err := c.cli("cluster", "rekey")
		if err != nil || !strings.Contains(out, "device key replaced") {
			t.Fatalf("rekey: %v\n%s", err, out)
		}
		t.Logf("rekey: %s", strings.TrimSpace(out))
		for _, x := range xs {
			x.waitAllOK(t, 3)
		}
		waitEntry(t, 20*time.Second, c.addPerson(t, "after-rekey"), a, b, c)
	})

	t.Run("rekey after the key was lost", func(t *testing.T) {
		c.stop()
		if err := os.Remove(filepath.Join(c.data, "ssh_host_ed25519_key")); err != nil {
			t.Fatal(err)
		}
		c.restart()
		cut := c.addPerson(t, "while-cut-off") // a write while the others refuse c
		out, err := c.cli("cluster", "rekey")
		if err == nil || !strings.Contains(out, "the old one is lost") {
			t.Fatalf("rekey without an identifier after the key was lost: %v\n%s", err, out)
		}
		id := f.prepare(a, c.ip)
		out, err = c.cli("cluster", "rekey", "--id", id, "--password-file", f.pw)
		if err != nil {
			t.Fatalf("rekey with a new identifier: %v\n%s", err, out)
		}
		for _, x := range xs {
			x.waitAllOK(t, 3)
		}
		waitEntry(t, 20*time.Second, cut, a, b, c)
	})

	t.Run("leave says whom it told; a join over local writes saves them", func(t *testing.T) {
		out, err := b.cli("cluster", "leave")
		if err != nil || !strings.Contains(out, "was told and removed this device's record") {
			t.Fatalf("leave: %v\n%s", err, out)
		}
		local := b.addPerson(t, "written-while-apart")
		out, err = f.join(b, a, f.prepare(a, b.ip))
		if err != nil || !strings.Contains(out, "holds 1 entries the cluster does not have") || !strings.Contains(out, "uid=written-while-apart") {
			t.Fatalf("join over a local write: %v\n%s", err, out)
		}
		saved, _ := filepath.Glob(filepath.Join(b.data, "join-saved-*.ldif"))
		if len(saved) != 1 {
			t.Fatalf("saved files: %v", saved)
		}
		body, _ := os.ReadFile(saved[0])
		if !strings.Contains(string(body), "dn: "+local) {
			t.Fatalf("saved file lacks the local write:\n%s", body)
		}
		// the admin imports it on a member: it is back everywhere
		if out, err := a.cliIn(strings.NewReader(string(body)), "ldif", "import", "-"); err != nil {
			t.Fatalf("import the saved changes: %v\n%s", err, out)
		}
		waitEntry(t, 20*time.Second, local, a, b, c)
	})

	t.Run("queues of every member", func(t *testing.T) {
		out, err := a.cli("queue", "list", "--cluster")
		if err != nil || strings.Count(out, "(empty)") != 3 {
			t.Fatalf("queue list --cluster: %v\n%s", err, out)
		}
		if out, err := a.cli("queue", "flush", "--cluster"); err != nil || strings.Count(out, "scheduled for delivery now") != 3 {
			t.Fatalf("queue flush --cluster: %v\n%s", err, out)
		}
	})

	t.Run("status shows NTP trouble and clears it", func(t *testing.T) {
		f.ntp.pause.Store(true)
		eventually(t, 20*time.Second, "parity names the silent NTP server", func() string {
			for _, r := range a.clusterStatus(t).Setup {
				if r.DeviceID == a.deviceID(t) && strings.Contains(r.Parity, "does not answer (since ") {
					return ""
				}
			}
			return fmt.Sprintf("%+v", a.clusterStatus(t).Setup)
		})
		f.ntp.pause.Store(false)
		eventually(t, 20*time.Second, "parity OK again", func() string {
			for _, r := range a.clusterStatus(t).Setup {
				if r.Parity != "OK" {
					return r.Parity
				}
			}
			return ""
		})
	})

	t.Run("a member removed while switched off turns standalone", func(t *testing.T) {
		c.stop()
		if out, err := a.cli("cluster", "remove", cID); err != nil {
			t.Fatalf("remove: %v\n%s", err, out)
		}
		c.restart()
		eventually(t, 20*time.Second, "c standalone", func() string {
			st := c.clusterStatus(t)
			if st.Member {
				return "still a member"
			}
			return ""
		})
		out, _ := c.cli("cluster", "status")
		if !strings.Contains(out, "removed from the cluster while away") {
			t.Fatalf("c's status after its removal:\n%s", out)
		}
		if !c.entryOn(t, "uid=while-cut-off,ou=people,"+suffix) {
			t.Fatal("c lost its data when it turned standalone")
		}
	})

	t.Run("cluster password retires every identifier", func(t *testing.T) {
		id := f.prepare(a, "127.0.0.53")
		out, err := a.cli("cluster", "password")
		if err != nil || !strings.Contains(out, "identifiers retired") {
			t.Fatalf("cluster password: %v\n%s", err, out)
		}
		d := f.start("127.0.0.53")
		out, err = f.join(d, a, id)
		if err == nil || !strings.Contains(out, "refused the cluster key") {
			t.Fatalf("join with an identifier from before the password change: %v\n%s", err, out)
		}
	})
}
