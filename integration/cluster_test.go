package integration

import (
	"fmt"
	"net"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"postern/cluster"
)

// TestCluster is the cluster menu end to end with three appliances as
// separate processes on 127.0.0.2-4 and OpenLDAP's and OpenSSH's clients.
func TestCluster(t *testing.T) {
	requireTool(t, "ldapsearch")
	sshBin := requireTool(t, "ssh")
	ntp := startNTP(t)
	common := []string{"--ntp-server", ntp.addr, "--heartbeat", "1s"}
	a := startAppliance(t, "127.0.0.2", append(common, "--hostname", "alpha")...)
	b := startAppliance(t, "127.0.0.3", append(common, "--hostname", "bravo")...)
	c := startAppliance(t, "127.0.0.4", append(common, "--hostname", "charlie")...)
	pw := writePassword(t, "correct horse battery")
	idFile := filepath.Join(t.TempDir(), "clusterid.txt")
	aID, bID, cID := a.deviceID(t), b.deviceID(t), c.deviceID(t)

	// Prepare on a: Cluster No. 1, 127.0.0.3 allowed to join.
	if out, err := a.cli("cluster", "prepare", "--password-file", pw, "--out", idFile, "--allow", "127.0.0.3"); err != nil {
		t.Fatalf("prepare: %v\n%s", err, out)
	}
	if out, err := a.cli("cluster", "prepare", "--password-file", writePassword(t, "short"), "--out", idFile+".x"); err == nil || !hasLine(out, "at least 12") {
		t.Fatalf("prepare with a short password: %v\n%s", err, out)
	}
	if st := a.clusterStatus(t); !st.Member || st.ClusterNo != 1 {
		t.Fatalf("after prepare: %+v", st)
	}
	join := func(x *appliance) (string, error) {
		return x.cli("cluster", "join", "--id", idFile, "--password-file", pw, "--member", a.addr["cluster"], "--self", x.addr["cluster"])
	}

	// A wrong password, a wrong --self and an unreachable member are all
	// reported at once, each with its fix.
	out, err := b.cli("cluster", "join", "--id", idFile, "--password-file", writePassword(t, "wrong password!!"), "--member", "127.0.0.2:1", "--self", "192.0.2.1:22")
	if err == nil || !hasLine(out, "wrong cluster password") || !hasLine(out, "is not an address of this machine") || !hasLine(out, "unreachable") || strings.Count(out, "fix: ") < 3 {
		t.Fatalf("join with three mistakes: %v\n%s", err, out)
	}

	// b has an entry of its own: the join replaces its tree by a's.
	bc := dialAdmin(t, b)
	if err := addPerson(bc, "onlyonb"); err != nil {
		t.Fatal(err)
	}
	bc.Close()
	ac := dialAdmin(t, a)
	for i := 0; i < 1200; i++ {
		if err := addPerson(ac, fmt.Sprintf("base%04d", i)); err != nil {
			t.Fatal(err)
		}
	}
	ac.Close()
	out, err = join(b)
	if err != nil || !hasLine(out, "copied ") || !hasLine(out, "joined cluster") || !hasLine(out, "Cluster No. 2") {
		t.Fatalf("join b: %v\n%s", err, out)
	}
	if !hasLine(out, "copied 500/") || !hasLine(out, "copied 1000/") {
		t.Fatalf("join b shows no copy progress:\n%s", out)
	}
	if n := countPeople(t, b, "(cn=onlyonb)"); n != 0 {
		t.Fatalf("b kept its own entry after the join")
	}
	if n := countPeople(t, b, "(cn=base*)"); n != 1200 {
		t.Fatalf("b has %d of a's 1200 entries after the join", n)
	}
	if out, _ := b.cli("system", "show"); !hasLine(out, "bravo") {
		t.Fatalf("b's machine-local hostname changed by the join:\n%s", out)
	}

	// c from a disallowed IP: refused, told what to run on the base.
	out, err = c.cli("cluster", "check", "--id", idFile, "--password-file", pw, "--member", a.addr["cluster"], "--self", c.addr["cluster"])
	if err == nil || !hasLine(out, "postern cluster protect --add 127.0.0.4") {
		t.Fatalf("check from a disallowed IP: %v\n%s", err, out)
	}
	a.waitLog(t, "key refused")
	if out, err := a.cli("cluster", "protect", "--add", "127.0.0.4"); err != nil {
		t.Fatalf("protect --add: %v\n%s", err, out)
	}

	// A concurrent join: someone holds the join lock; c gets busy and
	// loses nothing; a's tree is intact.
	cc := dialAdmin(t, c)
	if err := addPerson(cc, "onlyonc"); err != nil {
		t.Fatal(err)
	}
	cc.Close()
	holder := holdJoinLock(t, idFile, "correct horse battery", a.addr["cluster"], "127.0.0.4", "PST-0TESTLOCK")
	out, err = join(c)
	if err == nil || !hasLine(out, "busy: PST-0TESTLOCK is joining since ") {
		t.Fatalf("join while another runs: %v\n%s", err, out)
	}
	if countPeople(t, c, "(cn=onlyonc)") != 1 || countPeople(t, a, "(cn=base*)") != 1200 {
		t.Fatalf("a busy join lost data")
	}
	holder.release()
	out, err = join(c)
	if err != nil || !hasLine(out, "Cluster No. 3") {
		t.Fatalf("join c: %v\n%s", err, out)
	}

	// Writes on each member are visible on all within seconds.
	for i, x := range []*appliance{a, b, c} {
		xc := dialAdmin(t, x)
		if err := addPerson(xc, fmt.Sprintf("written-on-%d", i)); err != nil {
			t.Fatal(err)
		}
		xc.Close()
	}
	for _, x := range []*appliance{a, b, c} {
		eventually(t, 20*time.Second, "writes replicated to "+x.ip, func() string {
			out, err := tool(t, nil, "", "ldapsearch", "-x", "-H", x.ldapURL(), "-D", adminDN, "-w", adminPassword, "-b", "ou=people,"+suffix, "(cn=written-on-*)", "cn")
			if err != nil || strings.Count(out, "\ncn: written-on-") != 3 {
				return out
			}
			return ""
		})
	}

	// Status tables on a.
	eventually(t, 30*time.Second, "all members OK in a's status", func() string {
		st := a.clusterStatus(t)
		if len(st.Members) != 3 || len(st.Setup) != 3 || len(st.Replication) != 3 {
			return fmt.Sprintf("%+v", st)
		}
		for _, m := range st.Members {
			if !m.OK || !m.Self && !strings.HasPrefix(m.Status, "OK (") {
				return fmt.Sprintf("%+v", st.Members)
			}
		}
		return ""
	})
	st := a.clusterStatus(t)
	want := map[string]struct{ no, host, ip string }{aID: {"1", "alpha", "127.0.0.2"}, bID: {"2", "bravo", "127.0.0.3"}, cID: {"3", "charlie", "127.0.0.4"}}
	for _, s := range st.Setup {
		w := want[s.DeviceID]
		if s.ClusterNo != w.no || s.Hostname != w.host || s.IP != w.ip || s.Version != testVersion || s.Parity != "OK" || s.UUID == "" {
			t.Fatalf("setup row %+v, want %+v", s, w)
		}
	}
	for _, r := range st.Replication {
		if r.Self != (r.DeviceID == aID) || r.ContextCSN == "" {
			t.Fatalf("replication row %+v", r)
		}
	}
	if !strings.HasPrefix(st.LastChange, "Cluster No. ") {
		t.Fatalf("last change %q", st.LastChange)
	}
	text, err := a.cli("cluster", "status")
	for _, h := range []string{"Cluster members", "Cluster Setup", "Cluster replication", "entries in remote database", "Last update time", "Is frontend of"} {
		if err != nil || !hasLine(text, h) {
			t.Fatalf("status text lacks %q: %v\n%s", h, err, text)
		}
	}

	// forget an active member: its record comes back by heartbeat.
	if out, err := a.cli("cluster", "forget", bID); err != nil {
		t.Fatalf("forget: %v\n%s", err, out)
	}
	eventually(t, 60*time.Second, "forgotten active member reappears", func() string {
		if st := a.clusterStatus(t); len(st.Setup) != 3 {
			return fmt.Sprintf("%d setup rows", len(st.Setup))
		}
		return ""
	})

	// OpenSSH with the cluster key: no shell, no exec, no forwarding.
	keyFile := clusterKeyFile(t, idFile, "correct horse battery")
	sshArgs := func(key, bind string, extra ...string) []string {
		host, port, _ := net.SplitHostPort(a.addr["cluster"])
		return append([]string{"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
			"-o", "ConnectTimeout=10", "-i", key, "-b", bind, "-p", port, "-l", "postern"}, append(extra, host)...)
	}
	for name, extra := range map[string][]string{
		"shell":        {"-T"},
		"exec":         {},
		"forward -W":   {"-W", a.addr["ldap"]},
		"forward -W 2": {"-W", "127.0.0.1:22"},
		"remote -R":    {"-N", "-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:1"},
	} {
		args := sshArgs(keyFile, "127.0.0.3", extra...)
		if name == "exec" {
			args = append(args, "id")
		}
		out, err := tool(t, nil, "", sshBin, args...)
		if err == nil {
			t.Fatalf("ssh %s with the cluster key succeeded:\n%s", name, out)
		}
	}
	// -N -L to a forbidden destination: the forwarded connection is refused.
	lport := freePort(t, "127.0.0.1")
	fwd := startSSH(t, sshBin, sshArgs(keyFile, "127.0.0.3", "-N", "-L", lport+":"+a.addr["admin"])...)
	if got := readForwarded(t, lport); got != "" {
		t.Fatalf("-L to %s through the cluster key carried data: %q", a.addr["admin"], got)
	}
	fwd()
	// A member's device key opens its tunnel to LDAP, but nothing else.
	bKey := filepath.Join(b.data, "ssh_host_ed25519_key")
	if out, err := tool(t, nil, "", sshBin, sshArgs(bKey, "127.0.0.3", "-W", a.addr["admin"])...); err == nil {
		t.Fatalf("-W to the admin port with a device key succeeded:\n%s", out)
	}
	// The cluster key from a disallowed IP: refused, and told the command.
	out, err = tool(t, nil, "", sshBin, sshArgs(keyFile, "127.0.0.5", "-T")...)
	if err == nil || !hasLine(out, "protect --add 127.0.0.5") || !hasLine(out, "Permission denied") {
		t.Fatalf("ssh with the cluster key from a disallowed IP: %v\n%s", err, out)
	}
	// A member's device key from another IP (it moved, issue 12): it
	// authenticates the member wherever it is; its LDAP tunnel opens.
	out, err = tool(t, nil, "", sshBin, sshArgs(bKey, "127.0.0.5", "-W", a.addr["ldap"])...)
	if strings.Contains(out, "Permission denied") {
		t.Fatalf("a member's device key from a new IP: %v\n%s", err, out)
	}

	// Injection: b may inject on a, c may not.
	if out, err := b.cli("cluster", "inject", "--backends", aID); err != nil || !hasLine(out, aID) {
		t.Fatalf("inject: %v\n%s", err, out)
	}
	eventually(t, 20*time.Second, "b's injection list replicated to a", func() string {
		return injectSMTP(t, b, a, "127.0.0.3", "")
	})
	if got := injectSMTP(t, c, a, "127.0.0.4", ""); !strings.HasPrefix(got, "550 ") || !strings.Contains(got, "5.7.1") {
		t.Fatalf("injection by c (not allowed): %s", got)
	}
	a.waitLog(t, "injection refused")
	eventually(t, 10*time.Second, "injected mail in a's queue", func() string {
		out, _ := a.cli("queue", "list")
		if !hasLine(out, "rcpt@elsewhere.example") {
			return out
		}
		return ""
	})

	// kill -9 of c: its error shows on a within 30 s; it recovers.
	c.kill9()
	eventually(t, 30*time.Second, "c's failure in a's status", func() string {
		for _, m := range a.clusterStatus(t).Members {
			if m.DeviceID == cID && !m.OK && m.Status != "" {
				return ""
			}
		}
		return fmt.Sprintf("%+v", a.clusterStatus(t).Members)
	})
	c.restart(append(common, "--hostname", "charlie")...)
	eventually(t, 40*time.Second, "c recovers in a's status", func() string {
		for _, m := range a.clusterStatus(t).Members {
			if m.DeviceID == cID && strings.HasPrefix(m.Status, "OK (") {
				return ""
			}
		}
		return fmt.Sprintf("%+v", a.clusterStatus(t).Members)
	})

	// Another firmware version and a stepped clock: refused, both reasons.
	other := filepath.Join(t.TempDir(), "postern-other")
	if err := buildBinary(other, "9.9.8-other"); err != nil {
		t.Fatal(err)
	}
	d := &appliance{t: t, bin: other, ip: "127.0.0.5", data: filepath.Join(t.TempDir(), "var"), addr: map[string]string{}}
	for _, n := range []string{"ldap", "ldaps", "smtp", "admin", "cluster", "metrics"} {
		d.addr[n] = freePort(t, d.ip)
	}
	d.start(common...)
	t.Cleanup(d.stop)
	if out, err := a.cli("cluster", "prepare", "--password-file", pw, "--out", idFile, "--allow", "127.0.0.5"); err != nil {
		t.Fatalf("prepare again: %v\n%s", err, out)
	}
	ntp.offset.Store(int64(5 * time.Second))
	out, err = join(d)
	if err == nil || !hasLine(out, "firmware versions differ: 9.9.8-other on this device, "+testVersion+" on the member") || !hasLine(out, "clock offset") {
		t.Fatalf("join from another firmware with a stepped clock: %v\n%s", err, out)
	}
	ntp.offset.Store(0)
	// the members measured the stepped clock too and refused local writes
	// meanwhile; they accept them again once their clocks are back in bound
	for _, x := range []*appliance{a, b} {
		eventually(t, 10*time.Second, "writes accepted again after the clock step", func() string {
			if st := x.clusterStatus(t); st.NTP.WritesRefused {
				return fmt.Sprintf("%+v", st.NTP)
			}
			return ""
		})
	}

	// remove c: revoked everywhere, its clusterid.txt and device key are useless.
	if out, err := a.cli("cluster", "remove", cID); err != nil {
		t.Fatalf("remove: %v\n%s", err, out)
	}
	eventually(t, 20*time.Second, "c standalone after removal", func() string {
		if st := c.clusterStatus(t); st.Member {
			return "c still a member"
		}
		return ""
	})
	cKey := filepath.Join(c.data, "ssh_host_ed25519_key")
	eventually(t, 20*time.Second, "c's device key refused on b", func() string {
		out, err := tool(t, nil, "", sshBin, sshArgsFor(b, cKey, "127.0.0.4", "-W", b.addr["ldap"])...)
		if err == nil {
			return out
		}
		return ""
	})
	out, err = join(c)
	if err == nil || !hasLine(out, "refused the cluster key") {
		t.Fatalf("removed member joins with its old clusterid.txt: %v\n%s", err, out)
	}
	eventually(t, 20*time.Second, "b sees two members", func() string {
		if st := b.clusterStatus(t); len(st.Members) != 2 {
			return fmt.Sprintf("%+v", st.Members)
		}
		return ""
	})

	// leave: b becomes standalone with its data.
	if out, err := b.cli("cluster", "leave"); err != nil {
		t.Fatalf("leave: %v\n%s", err, out)
	}
	if st := b.clusterStatus(t); st.Member || countPeople(t, b, "(cn=base*)") != 1200 {
		t.Fatalf("b after leave: member=%v", st.Member)
	}
	// No cluster configuration is left behind on the standalone device.
	out = mustTool(t, nil, "", "ldapsearch", "-x", "-LLL", "-H", b.ldapURL(), "-D", adminDN, "-w", adminPassword, "-b", "ou=cluster,"+suffix, "1.1")
	if strings.TrimSpace(out) != "dn: ou=cluster,"+suffix {
		t.Fatalf("b keeps cluster entries after leave:\n%s", out)
	}
	eventually(t, 20*time.Second, "a sees one member", func() string {
		if st := a.clusterStatus(t); len(st.Members) != 1 {
			return fmt.Sprintf("%+v", st.Members)
		}
		return ""
	})
}

func sshArgsFor(x *appliance, key, bind string, extra ...string) []string {
	host, port, _ := net.SplitHostPort(x.addr["cluster"])
	return append([]string{"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "ConnectTimeout=10", "-i", key, "-b", bind, "-p", port, "-l", "postern"}, append(extra, host)...)
}

func countPeople(t *testing.T, x *appliance, f string) int {
	t.Helper()
	out := mustTool(t, nil, "", "ldapsearch", "-x", "-H", x.ldapURL(), "-D", adminDN, "-w", adminPassword, "-b", "ou=people,"+suffix, "-z", "0", f, "1.1")
	return strings.Count(out, "\ndn: ")
}

// clusterKeyFile decrypts the cluster key into an unencrypted OpenSSH key
// file for ssh -i.
func clusterKeyFile(t *testing.T, idFile, pw string) string {
	t.Helper()
	b, err := os.ReadFile(idFile)
	if err != nil {
		t.Fatal(err)
	}
	id, err := cluster.ParseIdentifier(b)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ssh.ParseRawPrivateKeyWithPassphrase(id.Key, []byte(pw))
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(raw, "")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cluster_key")
	if err := os.WriteFile(p, pemEncode(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type lockHolder struct{ release func() }

// holdJoinLock takes the cluster-wide join lock as a joiner (the cluster
// key) named device would, and keeps it until release.
func holdJoinLock(t *testing.T, idFile, pw, member, fromIP, device string) *lockHolder {
	t.Helper()
	b, _ := os.ReadFile(idFile)
	id, err := cluster.ParseIdentifier(b)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := id.Signer(pw)
	if err != nil {
		t.Fatal(err)
	}
	cl := sshClient(t, member, fromIP, signer)
	call := func(m *cluster.Message) *cluster.Message {
		ch, reqs, err := cl.OpenChannel(cluster.ControlChannel, nil)
		if err != nil {
			t.Fatal(err)
		}
		go ssh.DiscardRequests(reqs)
		defer ch.Close()
		if err := cluster.WriteMessage(ch, m); err != nil {
			t.Fatal(err)
		}
		ans, err := cluster.ReadMessage(ch)
		if err != nil {
			t.Fatal(err)
		}
		return ans
	}
	if ans := call(&cluster.Message{Type: "lock", Device: device}); ans.Type != "ok" {
		t.Fatalf("lock: %+v", ans)
	}
	return &lockHolder{release: func() {
		call(&cluster.Message{Type: "unlock", Device: device})
		cl.Close()
	}}
}

func sshClient(t *testing.T, addr, fromIP string, signer ssh.Signer) *ssh.Client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(fromIP)}, Timeout: 10 * time.Second}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	sc, chans, reqs, err := ssh.NewClientConn(nc, addr, &ssh.ClientConfig{User: "postern", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("ssh to %s from %s: %v", addr, fromIP, err)
	}
	return ssh.NewClient(sc, chans, reqs)
}

// injectSMTP sends a message from member from to target through from's
// tunnel (its device key) and returns "" on 250 or the failure.
func injectSMTP(t *testing.T, from, target *appliance, fromIP, _ string) string {
	t.Helper()
	kb, err := os.ReadFile(filepath.Join(from.data, "ssh_host_ed25519_key"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(kb)
	if err != nil {
		t.Fatal(err)
	}
	cl := sshClient(t, target.addr["cluster"], fromIP, signer)
	defer cl.Close()
	conn, err := cl.Dial("tcp", target.addr["smtp"])
	if err != nil {
		return "tunnel: " + err.Error()
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	sc, err := smtp.NewClient(conn, "peer")
	if err != nil {
		return err.Error()
	}
	defer sc.Close()
	if err := sc.Mail("sender@example.org"); err != nil {
		return err.Error()
	}
	if err := sc.Rcpt("rcpt@elsewhere.example"); err != nil {
		return err.Error()
	}
	w, err := sc.Data()
	if err != nil {
		return err.Error()
	}
	fmt.Fprintf(w, "Subject: injected\r\n\r\nhello\r\n")
	if err := w.Close(); err != nil {
		return err.Error()
	}
	sc.Quit()
	return ""
}
