package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// frontendStatus is the part of `cluster status --json` on a frontend the
// tests read.
type frontendStatus struct {
	Frontend *struct {
		Number   string `json:"number"`
		Backends []struct {
			DeviceID string `json:"device_id"`
			IP, Port string
			Status   string `json:"status"`
			OK       bool   `json:"ok"`
			InUse    bool   `json:"in_use"`
		} `json:"backends"`
	} `json:"frontend"`
	Member   bool   `json:"member"`
	DeviceID string `json:"device_id"`
}

func (x *appliance) frontendStatus(t *testing.T) frontendStatus {
	t.Helper()
	st, err := x.tryFrontendStatus()
	if err != "" {
		t.Fatalf("cluster status: %s", err)
	}
	return st
}

// tryFrontendStatus is frontendStatus for eventually: the appliance may
// be restarting in its new role.
func (x *appliance) tryFrontendStatus() (frontendStatus, string) {
	var st frontendStatus
	out, err := x.cli("cluster", "status", "--json")
	if err != nil {
		return st, fmt.Sprintf("%v\n%s", err, out)
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Sprintf("%v\n%s", err, out)
	}
	return st, ""
}

// attach runs `cluster frontend attach` on x to backend via.
func (f *clusterFixture) attach(x, via *appliance, idFile string, extra ...string) (string, error) {
	return x.cli(append([]string{"cluster", "frontend", "attach", "--id", idFile, "--password-file", f.pw, "--backend", via.addr["cluster"], "--self", x.addr["cluster"]}, extra...)...)
}

// smtpReply sends one message with swaks and returns the last reply line
// of the transaction (its code tells 250, 4xx, 5xx).
func smtpReply(t *testing.T, x *appliance, to, subject string) string {
	t.Helper()
	out, _ := swaks(t, x, "--from", "sender@remote.test", "--to", to, "--header", "Subject: "+subject, "--timeout", "10")
	last := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "<** ") || strings.HasPrefix(l, "<~* ") || strings.HasPrefix(l, "<-  250") || strings.HasPrefix(l, "<-  451") || strings.HasPrefix(l, "<-  4") || strings.HasPrefix(l, "<-  5") {
			last = strings.TrimSpace(strings.TrimLeft(l, "<*~- "))
		}
	}
	if last == "" {
		last = strings.TrimSpace(out)
	}
	return last
}

// TestFrontends is issue 13: two backends and two frontends as processes.
// A refused attach lists every problem at once; frontends attach, keep no
// directory, see a domain added on a backend within 2 s, deliver mail, fail
// over to the next backend when the one in use is killed (never a 5xx
// caused by it), answer 451 4.4.3 when no backend answers, refuse writes
// on their LDAP listener, read through it without userPassword; backends
// are added and removed; a frontend detaches and is standalone with an
// empty directory, its key refused.
func TestFrontends(t *testing.T) {
	f := newClusterFixture(t)
	b1, b2 := f.start("127.0.0.70"), f.start("127.0.0.71")
	id := f.prepare(b1, "127.0.0.71", "127.0.0.72", "127.0.0.73")
	if out, err := f.join(b2, b1, id); err != nil {
		t.Fatalf("join: %v\n%s", err, out)
	}
	b1.waitAllOK(t, 2)
	// the frontends' temporary directory is watched: nothing may land there
	feTmp := []string{t.TempDir(), t.TempDir()}
	f1, f2 := f.start("127.0.0.72", "TMPDIR="+feTmp[0]), f.start("127.0.0.73", "TMPDIR="+feTmp[1])
	sink := startSink(t, "127.0.0.74")
	// an identifier pins the host key of the member it was made on: f2
	// attaches to b2 with one made there
	id2 := f.prepare(b2, "127.0.0.73")

	// a refused attach names every problem at once
	bad := writePassword(t, "not the cluster password")
	f2.cli("system", "set", "--ntp-server", "127.0.0.1:1")
	out, err := f2.cli("cluster", "frontend", "attach", "--id", id2, "--password-file", bad, "--backend", b2.addr["cluster"], "--self", f2.addr["cluster"])
	if err == nil || !strings.Contains(out, "attach refused (2 problem(s))") || !strings.Contains(out, "wrong cluster password") || !strings.Contains(out, "NTP") {
		t.Fatalf("attach with a wrong password and another NTP server: %v\n%s", err, out)
	}
	t.Logf("refused attach:\n%s", out)
	f2.cli("system", "set", "--ntp-server", f.ntp.addr)

	// f1 holds a domain of its own: the attach would delete it, so it is
	// refused (with the other checks passing) until --discard-local
	if out, err := f1.cli("domain", "add", "mine.example", "--deliver-to", sink.addr); err != nil {
		t.Fatalf("domain add on f1: %v\n%s", err, out)
	}
	out, err = f.attach(f1, b1, id)
	if err == nil || !strings.Contains(out, "attach refused (1 problem(s))") || !strings.Contains(out, "entries of its own (cn=mine.example,ou=domains,") || !strings.Contains(out, "--discard-local") {
		t.Fatalf("attach over f1's own entries: %v\n%s", err, out)
	}
	if out, err := f.attach(f1, b1, id, "unexpected"); exitCode(err) != 2 {
		t.Fatalf("attach with an extra argument: exit %d\n%s", exitCode(err), out)
	}
	for _, p := range []struct {
		fe, be *appliance
		id     string
		extra  []string
	}{{f1, b1, id, []string{"--discard-local"}}, {f2, b2, id2, nil}} {
		out, err := f.attach(p.fe, p.be, p.id, p.extra...)
		if err != nil || !strings.Contains(out, "is now a frontend") {
			t.Fatalf("attach %s to %s: %v\n%s", p.fe.ip, p.be.ip, err, out)
		}
		p.fe.waitLog(t, "restarting in the new role")
		eventually(t, 20*time.Second, p.fe.ip+" a frontend with its backend OK", func() string {
			st, err := p.fe.tryFrontendStatus()
			if err != "" {
				return err
			}
			if st.Frontend == nil || len(st.Frontend.Backends) != 1 || !st.Frontend.Backends[0].OK {
				return fmt.Sprintf("%+v", st.Frontend)
			}
			return ""
		})
	}
	if out, err := f1.cli("cluster", "backend", "add", b2.addr["cluster"]); err != nil {
		t.Fatalf("backend add: %v\n%s", err, out)
	}
	// each side's commands say where they belong
	if out, err := b1.cli("cluster", "backend", "add", b2.addr["cluster"]); exitCode(err) != 1 || !strings.Contains(out, "not a cluster frontend (it is a cluster member (backend))") {
		t.Fatalf("backend add on a backend: exit %d\n%s", exitCode(err), out)
	}
	if out, err := f.attach(f2, b2, id2); exitCode(err) != 1 || !strings.Contains(out, "already a cluster frontend") {
		t.Fatalf("a second attach: exit %d\n%s", exitCode(err), out)
	}
	if out, err := f1.cli("keys", "list"); exitCode(err) != 1 || !strings.Contains(out, "keeps no directory: this command needs one; run it on a backend:") {
		t.Fatalf("keys list on a frontend: exit %d\n%s", exitCode(err), out)
	}
	st := f1.frontendStatus(t)
	if st.Frontend.Number != "F(1,2)" || len(st.Frontend.Backends) != 2 {
		t.Fatalf("f1 after backend add: %+v", st.Frontend)
	}
	out, _ = f1.cli("cluster", "status")
	t.Logf("f1's Remote LDAP server table:\n%s", out)
	eventually(t, 20*time.Second, "the backends list the frontends", func() string {
		out, _ := b1.cli("cluster", "status")
		if !strings.Contains(out, "F(1,2)") || !strings.Contains(out, "F(2)") {
			return out
		}
		return ""
	})
	if bst := b1.clusterStatus(t); len(bst.Members) != 2 {
		t.Fatalf("Cluster members lists frontends: %+v", bst.Members)
	}

	// a domain added on backend 1 is in force on both frontends within 2 s
	added := time.Now()
	if out, err := b1.cli("domain", "add", "example.com", "--deliver-to", sink.addr, "--tls", "none"); err != nil {
		t.Fatalf("domain add: %v\n%s", err, out)
	}
	for _, fe := range []*appliance{f1, f2} {
		for !strings.HasPrefix(smtpReply(t, fe, "alice@example.com", "seen?"), "250") {
			if time.Since(added) > 2*time.Second {
				t.Fatalf("%s: the new domain not in force 2 s after it was added", fe.ip)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("domain in force on both frontends %s after it was added on a backend", time.Since(added).Round(10*time.Millisecond))
	sink.wait(t, 2, 30*time.Second)
	if out, err := b2.cli("domain", "remove", "example.com"); err != nil {
		t.Fatalf("domain remove: %v\n%s", err, out)
	}
	eventually(t, 2*time.Second, "the removed domain refused on both frontends", func() string {
		for _, fe := range []*appliance{f1, f2} {
			if r := smtpReply(t, fe, "alice@example.com", "still?"); !strings.HasPrefix(r, "554") {
				return fe.ip + ": " + r
			}
		}
		return ""
	})
	b1.cli("domain", "add", "example.com", "--deliver-to", sink.addr, "--tls", "none")
	eventually(t, 5*time.Second, "domain back", func() string {
		if r := smtpReply(t, f1, "alice@example.com", "back"); !strings.HasPrefix(r, "250") {
			return r
		}
		return ""
	})

	// writes refused, reads through the backend without userPassword
	b1.ldapModify(t, "dn: uid=carol,ou=people,"+suffix+"\nchangetype: add\nobjectClass: inetOrgPerson\nuid: carol\ncn: Carol\nsn: C\nmail: carol@example.com\nuserPassword: carol-secret-pw\n")
	eventually(t, 5*time.Second, "carol readable through f1", func() string {
		out, err := tool(t, nil, "", "ldapsearch", "-x", "-LLL", "-H", f1.ldapURL(), "-D", "uid=carol,ou=people,"+suffix, "-w", "carol-secret-pw", "-b", "ou=people,"+suffix, "(uid=carol)", "mail")
		if err != nil || !strings.Contains(out, "mail: carol@example.com") {
			return fmt.Sprintf("%v %s", err, out)
		}
		return ""
	})
	out, err = tool(t, nil, "dn: uid=carol,ou=people,"+suffix+"\nchangetype: modify\nreplace: sn\nsn: X\n", "ldapmodify", "-x", "-H", f1.ldapURL(), "-D", "uid=carol,ou=people,"+suffix, "-w", "carol-secret-pw")
	if exitCode(err) != 53 || !strings.Contains(out, "frontend") {
		t.Fatalf("a write on a frontend: exit %d\n%s", exitCode(err), out)
	}
	out, err = tool(t, nil, "", "ldapwhoami", "-x", "-H", f1.ldapURL(), "-D", adminDN, "-w", adminPassword)
	if err == nil {
		t.Fatalf("the backend's root DN bound through a frontend:\n%s", out)
	}

	// a frontend's own tunnel to a backend's LDAP: read-only, no
	// userPassword, not even asked for by name or in a filter (the LDAP
	// tools always bind: as carol here, whose own password stays hidden)
	fwd := forwardTunnel(t, f1, b1, "127.0.0.72", b1.addr["ldap"], "127.0.0.75")
	carol := []string{"-D", "uid=carol,ou=people," + suffix, "-w", "carol-secret-pw"}
	out, err = tool(t, nil, "", "ldapsearch", append(append([]string{"-x", "-LLL", "-H", "ldap://" + fwd}, carol...), "-b", "ou=people,"+suffix, "(uid=carol)", "userPassword", "mail")...)
	if err != nil || !strings.Contains(out, "mail: carol@example.com") || strings.Contains(out, "userPassword") {
		t.Fatalf("a frontend tunnel reading carol: %v\n%s", err, out)
	}
	out, _ = tool(t, nil, "", "ldapsearch", append(append([]string{"-x", "-LLL", "-H", "ldap://" + fwd}, carol...), "-b", "ou=people,"+suffix, "(userPassword=carol-secret-pw)", "dn")...)
	if strings.Contains(out, "uid=carol") {
		t.Fatalf("a frontend tunnel matched a filter on userPassword:\n%s", out)
	}
	out, err = tool(t, nil, "dn: uid=carol,ou=people,"+suffix+"\nchangetype: modify\nreplace: sn\nsn: Tunnel\n", "ldapmodify", append([]string{"-x", "-H", "ldap://" + fwd}, carol...)...)
	if exitCode(err) == 0 {
		t.Fatalf("a frontend tunnel wrote on the backend:\n%s", out)
	}
	t.Logf("a write through a frontend's tunnel: exit %d: %s", exitCode(err), strings.TrimSpace(out))
	out, _ = tool(t, nil, "", "ldapsearch", "-x", "-LLL", "-H", "ldap://"+fwd, "-D", adminDN, "-w", adminPassword, "-b", "ou=cluster,"+suffix, "(objectClass=*)", "posternClusterPublicKey", "posternRevokedKey")
	if strings.Contains(out, "posternClusterPublicKey:") || strings.Contains(out, "posternRevokedKey:") {
		t.Fatalf("a frontend tunnel read the cluster's keys:\n%s", out)
	}

	// Allow mail injection: f1 may inject on b1 (not b2); b1 may inject on
	// f1, b2 may not
	b1ID := b1.clusterStatus(t).DeviceID
	f1ID := f1.frontendStatus(t).DeviceID
	if out, err := f1.cli("cluster", "inject", "--backends", b1ID); err != nil || !strings.Contains(out, b1ID) {
		t.Fatalf("inject on a frontend: %v\n%s", err, out)
	}
	if out, err := f1.cli("cluster", "inject", "--backends", "PST-NOSUCH"); err == nil {
		t.Fatalf("inject on an unknown backend accepted:\n%s", out)
	}
	if out, err := b1.cli("cluster", "inject", "--frontends", f1ID); err != nil || !strings.Contains(out, f1ID) {
		t.Fatalf("inject --frontends on a backend: %v\n%s", err, out)
	}
	eventually(t, 20*time.Second, "f1 injects on b1", func() string { return injectSMTP(t, f1, b1, "127.0.0.72", "") })
	if got := injectSMTP(t, f1, b2, "127.0.0.72", ""); !strings.Contains(got, "550") || !strings.Contains(got, "5.7.1") {
		t.Fatalf("f1 injecting on b2 (not allowed): %s", got)
	}
	eventually(t, 20*time.Second, "b1 injects on f1", func() string { return injectSMTP(t, b1, f1, "127.0.0.70", "") })
	if got := injectSMTP(t, b2, f1, "127.0.0.71", ""); !strings.Contains(got, "550") || !strings.Contains(got, "5.7.1") {
		t.Fatalf("b2 injecting on f1 (not allowed): %s", got)
	}
	out, _ = f1.cli("cluster", "inject")
	t.Logf("injection: f1 on b1 250, on b2 550 5.7.1; b1 on f1 250, b2 on f1 550 5.7.1; f1 says: %s", strings.TrimSpace(out))

	// secure mail through a frontend: carol's key and the partner's
	// certificate are on the backends; f1 signs and encrypts with them,
	// asking its backend per message, and keeps nothing of them
	for _, args := range [][]string{{"ca", "init"}, {"keys", "generate", "carol@example.com", "--smime"},
		{"policy", "set", "--user", "carol@example.com", "--sign", "always"},
		{"relay", "networks", "127.0.0.0/8"}, {"relay", "smarthost", sink.addr}} {
		if out, err := b1.cli(args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	keyDir := t.TempDir()
	bobKey, bobCert := filepath.Join(keyDir, "bob.key"), filepath.Join(keyDir, "bob.pem")
	mustTool(t, nil, "", "openssl", "req", "-x509", "-newkey", "rsa:3072", "-nodes", "-keyout", bobKey, "-out", bobCert,
		"-subj", "/CN=Bob Partner", "-addext", "subjectAltName=email:bob@partner.org", "-addext", "keyUsage=digitalSignature,keyEncipherment", "-days", "30")
	if out, err := b1.cli("keys", "import", bobCert); err != nil {
		t.Fatalf("keys import: %v\n%s", err, out)
	}
	caOut, err := b1.cli("keys", "export", "internal-ca")
	if err != nil {
		t.Fatalf("keys export internal-ca: %v\n%s", err, caOut)
	}
	caPEM := filepath.Join(keyDir, "ca.pem")
	os.WriteFile(caPEM, []byte(caOut), 0o600)
	eventually(t, 10*time.Second, "the relay networks in force on f1", func() string {
		if r := smtpReply(t, f1, "bob@partner.org", "relay?"); !strings.HasPrefix(r, "250") {
			return r
		}
		return ""
	})
	sink.waitFor(t, "bob@partner.org", 30*time.Second) // the probe, also signed and encrypted
	mustSend(t, f1.addr["smtp"], "carol@example.com", []string{"bob@partner.org"}, plainMessage("carol@example.com", "bob@partner.org", "via the frontend", "signed and sealed in the DMZ"))
	got := sink.waitFor(t, "bob@partner.org", 30*time.Second)
	if !strings.Contains(got.Data, "smime-type=enveloped-data") || strings.Contains(got.Data, "sealed in the DMZ") {
		t.Fatalf("mail through f1 not encrypted:\n%s", got.Data)
	}
	encFile := filepath.Join(keyDir, "out.eml")
	os.WriteFile(encFile, []byte(got.Data), 0o600)
	dec := mustTool(t, nil, "", "openssl", "cms", "-decrypt", "-in", encFile, "-recip", bobCert, "-inkey", bobKey)
	decFile := filepath.Join(keyDir, "dec.eml")
	os.WriteFile(decFile, []byte(dec), 0o600)
	ver := mustTool(t, nil, "", "openssl", "cms", "-verify", "-in", decFile, "-CAfile", caPEM, "-purpose", "smimesign")
	if !strings.Contains(ver, "Verification successful") || !strings.Contains(ver, "signed and sealed in the DMZ") {
		t.Fatalf("openssl cms -verify of f1's message:\n%s", ver)
	}
	t.Logf("mail from carol through f1: encrypted for bob, signed with carol's key; openssl cms: %s", lineOf(ver, "Verification"))
	if strings.Contains(f1.out.String(), "PRIVATE KEY") {
		t.Fatal("f1's log holds key material")
	}
	// the sealed private keys are the root DN's alone, on a backend too
	out, _ = tool(t, nil, "", "ldapsearch", append(append([]string{"-x", "-LLL", "-H", b1.ldapURL()}, carol...), "-b", suffix, "(|(posternPrivateKey=*)(cn=carol@example.com)(uid=carol))", "posternPrivateKey", "posternClusterPublicKey")...)
	if strings.Contains(out, "posternPrivateKey") || strings.Contains(out, "posternClusterPublicKey") {
		t.Fatalf("carol reads sealed keys on b1:\n%s", out)
	}
	if out, _ := tool(t, nil, "", "ldapsearch", "-x", "-LLL", "-H", b1.ldapURL(), "-D", adminDN, "-w", adminPassword, "-b", suffix, "(posternPrivateKey=*)", "dn"); !strings.Contains(out, "dn: ") {
		t.Fatalf("the root DN finds no sealed key on b1:\n%s", out)
	}
	// a policy change on the other backend is in force on f1 at once (its
	// cached answers follow the sync): carol's mail leaves unsigned
	if out, err := b2.cli("policy", "set", "--user", "carol@example.com", "--sign", "never"); err != nil {
		t.Fatalf("policy set on b2: %v\n%s", err, out)
	}
	changed := time.Now()
	for i := 0; ; i++ {
		mustSend(t, f1.addr["smtp"], "carol@example.com", []string{"bob@partner.org"}, plainMessage("carol@example.com", "bob@partner.org", fmt.Sprintf("unsigned %d", i), "no signature now"))
		got := sink.waitFor(t, "bob@partner.org", 30*time.Second)
		os.WriteFile(encFile, []byte(got.Data), 0o600)
		dec := mustTool(t, nil, "", "openssl", "cms", "-decrypt", "-in", encFile, "-recip", bobCert, "-inkey", bobKey)
		if !strings.Contains(dec, "pkcs7-signature") && !strings.Contains(dec, "signed-data") {
			t.Logf("the policy set on b2 in force on f1 after %s (%d message(s) still signed before)", time.Since(changed).Round(10*time.Millisecond), i)
			break
		}
		if time.Since(changed) > 2*time.Second {
			t.Fatalf("2 s after the policy change on b2, f1 still signs carol's mail")
		}
	}

	// the text of delivered mail leaves f1's queue files within seconds
	eventually(t, 5*time.Second, "the delivered mail's text gone from f1's queue", func() string {
		held := ""
		filepath.WalkDir(filepath.Join(f1.data, "queue"), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if b, _ := os.ReadFile(p); strings.Contains(string(b), "signed and sealed in the DMZ") {
					held = p
				}
			}
			return nil
		})
		return held
	})

	// nothing of the directory on a frontend's disk, after lookups and
	// mail: only the machine-local files, no temporary files
	for i, fe := range []*appliance{f1, f2} {
		entries, _ := os.ReadDir(fe.data)
		for _, e := range entries {
			switch e.Name() {
			case "identity.json", "system.json", "tls.crt", "tls.key", "admin.hash", "admin_tokens.json", "control.sock", "lock",
				"ssh_host_ed25519_key", "frontend.json", "queue":
			default:
				t.Errorf("%s: unexpected file %s in a frontend's data directory", fe.ip, e.Name())
			}
		}
		filepath.WalkDir(filepath.Join(fe.data, "queue"), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.Contains(strings.ToLower(filepath.Base(p)), "ldap") {
				t.Errorf("%s: %s in the queue directory", fe.ip, p)
			}
			return nil
		})
		// no key material but its own host key and certificate key, after
		// it signed and encrypted with carol's key (f1)
		filepath.WalkDir(fe.data, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Type()&os.ModeSocket != 0 {
				return nil
			}
			switch filepath.Base(p) {
			case "ssh_host_ed25519_key", "tls.key":
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, bad := range []string{"PRIVATE KEY", "kek1:", "posternPrivateKey"} {
				if strings.Contains(string(b), bad) {
					t.Errorf("%s: %s holds %q", fe.ip, p, bad)
				}
			}
			return nil
		})
		if tmp, _ := os.ReadDir(feTmp[i]); len(tmp) > 0 {
			t.Errorf("%s: %d files in its temporary directory, first %s", fe.ip, len(tmp), tmp[0].Name())
		}
	}

	// a frontend whose record is deleted comes back with its heartbeat
	if out, err := b2.cli("cluster", "forget", f1ID); err != nil {
		t.Fatalf("forget f1: %v\n%s", err, out)
	}
	forgot := time.Now()
	eventually(t, 60*time.Second, "f1's record back on both backends", func() string {
		for _, b := range []*appliance{b1, b2} {
			if out, _ := b.cli("cluster", "status"); !strings.Contains(out, f1ID) {
				return b.ip + ":\n" + out
			}
		}
		return ""
	})
	t.Logf("f1's deleted record back on both backends after %s", time.Since(forgot).Round(10*time.Millisecond))

	// kill -9 the backend in use while mail flows: 250 or 4xx, never a 5xx
	// (carol is now the domain's only known recipient: the directory
	// answers recipient verification through the frontend)
	if r := smtpReply(t, f1, "alice@example.com", "unknown"); !strings.HasPrefix(r, "550 5.1.1") {
		t.Fatalf("an unknown recipient through f1: %s", r)
	}
	done := make(chan []string)
	go func() {
		var replies []string
		for i := range 40 {
			replies = append(replies, smtpReply(t, f1, "carol@example.com", "during failover "+strconv.Itoa(i)))
			time.Sleep(100 * time.Millisecond)
		}
		done <- replies
	}()
	time.Sleep(time.Second)
	b1.kill9()
	switched := make(chan time.Duration, 1)
	go func() {
		t0 := time.Now()
		for time.Since(t0) < 30*time.Second {
			if st, err := f1.tryFrontendStatus(); err == "" && st.Frontend != nil {
				for _, b := range st.Frontend.Backends {
					if b.InUse && b.IP == "127.0.0.71" {
						switched <- time.Since(t0)
						return
					}
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		switched <- -1
	}()
	replies := <-done
	if d := <-switched; d < 0 || d > 5*time.Second {
		t.Errorf("f1's lookups moved to b2 %s after b1 was killed (want within 5 s; -1: never)", d)
	} else {
		t.Logf("f1's lookups on b2 %s after b1 was killed", d.Round(10*time.Millisecond))
	}
	n250 := 0
	for _, r := range replies {
		switch {
		case strings.HasPrefix(r, "250"):
			n250++
		case strings.HasPrefix(r, "4"):
		default:
			t.Errorf("during the failover: %s", r)
		}
	}
	t.Logf("during the failover: %d of %d messages 250, the rest 4xx", n250, len(replies))
	// every 250 is delivered (the frontend's own queue delivers to the sink)
	eventually(t, 60*time.Second, "the failover's accepted messages delivered", func() string {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		n := 0
		for _, m := range sink.msgs {
			if strings.Contains(m.Data, "Subject: during failover ") {
				n++
			}
		}
		if n < n250 {
			return fmt.Sprintf("%d of %d delivered", n, n250)
		}
		return ""
	})
	eventually(t, 10*time.Second, "f1 on b2", func() string {
		for _, b := range f1.frontendStatus(t).Frontend.Backends {
			if b.InUse && b.IP == "127.0.0.71" {
				return ""
			}
		}
		return "not on b2"
	})
	if r := smtpReply(t, f1, "carol@example.com", "after failover"); !strings.HasPrefix(r, "250") {
		t.Fatalf("mail through f1 after the failover: %s", r)
	}

	// b1 returns while b2 serves: f1 goes back to b1, its first backend,
	// once b1 has answered for 10 s (no flapping)
	back := time.Now()
	b1.restart()
	eventually(t, 40*time.Second, "f1 back on b1", func() string {
		st, err := f1.tryFrontendStatus()
		if err != "" {
			return err
		}
		for _, b := range st.Frontend.Backends {
			if b.InUse && b.IP == "127.0.0.70" {
				return ""
			}
		}
		return "not on b1"
	})
	if d := time.Since(back); d < 8*time.Second {
		t.Errorf("f1 went back to b1 %s after b1 returned: before it answered for 10 s", d)
	}
	t.Logf("f1 back on b1 %s after it returned", time.Since(back).Round(100*time.Millisecond))

	// no backend answers: 451 4.4.3; at once (in the failover's grace the
	// cache accepts what it knows, but refuses nothing)
	b2.stop()
	if r := smtpReply(t, f2, "nobody@example.com", "just gone"); !strings.HasPrefix(r, "4") {
		t.Errorf("an unknown user right after f2's last backend stopped: %s (want 4xx, not a refusal for good)", r)
	}
	eventually(t, 15*time.Second, "451 4.4.3 with no backend", func() string {
		// a known user, an unknown one, a domain to relay to: nothing is
		// decided from what the frontend last knew
		for _, rcpt := range []string{"carol@example.com", "nobody@example.com", "someone@elsewhere.example"} {
			if r := smtpReply(t, f2, rcpt, "no backend"); !strings.Contains(r, "451 4.4.3") {
				return rcpt + ": " + r
			}
		}
		return ""
	})
	b2.restart()
	eventually(t, 20*time.Second, "f2 serves again", func() string {
		if r := smtpReply(t, f2, "carol@example.com", "again"); !strings.HasPrefix(r, "250") {
			return r
		}
		return ""
	})

	// metrics: each backend's reachability, lookup latency, cache hits/misses
	resp, err := http.Get("http://" + f1.addr["metrics"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"postern_frontend_backend_up{device_id=", "postern_frontend_lookup_seconds_bucket", `postern_frontend_cache_lookups_total{result="hit"}`, "postern_frontend_backend_switches_total "} {
		if !strings.Contains(string(body), want) {
			t.Errorf("f1's metrics lack %s", want)
		}
	}
	if strings.Contains(string(body), "postern_frontend_backend_switches_total 0\n") {
		t.Error("f1's metrics count no backend switch after the failover")
	}

	// b1 moves to another cluster port: f1 follows it, told by b2
	b1.stop()
	b1.addr["cluster"] = freePort(t, b1.ip)
	b1.restart()
	_, newPort, _ := net.SplitHostPort(b1.addr["cluster"])
	eventually(t, 40*time.Second, "f1 follows b1 to its new port", func() string {
		st, err := f1.tryFrontendStatus()
		if err != "" {
			return err
		}
		for _, b := range st.Frontend.Backends {
			if b.IP == "127.0.0.70" && b.Port == newPort && b.OK {
				return ""
			}
		}
		return fmt.Sprintf("%+v", st.Frontend.Backends)
	})

	// backend remove, then detach: standalone, an empty directory, its key refused
	if out, err := f1.cli("cluster", "backend", "remove", b2.addr["cluster"]); err != nil {
		t.Fatalf("backend remove: %v\n%s", err, out)
	}
	if st := f1.frontendStatus(t); len(st.Frontend.Backends) != 1 || st.Frontend.Backends[0].IP != "127.0.0.70" || st.Frontend.Number != "F(1)" {
		t.Fatalf("f1 after backend remove: %+v", st.Frontend)
	}
	if out, err := f1.cli("cluster", "backend", "remove", b1.addr["cluster"]); err == nil || !strings.Contains(out, "only backend") {
		t.Fatalf("removing f1's last backend: %v\n%s", err, out)
	}
	if out, err := f1.cli("cluster", "backend", "remove", "127.0.0.99:1"); err == nil || !strings.Contains(out, "not a backend") {
		t.Fatalf("removing a backend f1 does not have: %v\n%s", err, out)
	}

	// several entry points: killing one frontend changes nothing for the other
	f1.kill9()
	if r := smtpReply(t, f2, "carol@example.com", "f1 is gone"); !strings.HasPrefix(r, "250") {
		t.Fatalf("f2 with f1 killed: %s", r)
	}
	if out, err := f2.cli("cluster", "frontend", "detach"); err != nil || !strings.Contains(out, "detached") {
		t.Fatalf("detach: %v\n%s", err, out)
	}
	f2.waitLog(t, "restarting in the new role")
	eventually(t, 10*time.Second, "f2 standalone", func() string {
		st, err := f2.tryFrontendStatus()
		if err != "" {
			return err
		}
		if st.Frontend != nil || st.Member {
			return "still a member"
		}
		return ""
	})
	out, err = tool(t, nil, "", "ldapsearch", "-x", "-LLL", "-H", f2.ldapURL(), "-D", adminDN, "-w", adminPassword, "-b", suffix, "(uid=*)", "dn")
	if err != nil || strings.Contains(out, "uid=") {
		t.Fatalf("f2's directory after detach: %v\n%s", err, out)
	}
	f2Key := filepath.Join(f2.data, "ssh_host_ed25519_key")
	out, err = tool(t, nil, "", sshBin(t), sshArgsFor(b1, f2Key, "127.0.0.73", "-W", b1.addr["ldap"])...)
	if err == nil {
		t.Fatalf("a detached frontend's key opened a tunnel:\n%s", out)
	}
}

func sshBin(t *testing.T) string { return requireTool(t, "ssh") }

// forwardTunnel opens an SSH connection from member from (its device key,
// from fromIP) to target and forwards a local port on listenIP to dest
// through it (what `ssh -L` does); it returns the local address.
func forwardTunnel(t *testing.T, from, target *appliance, fromIP, dest, listenIP string) string {
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
	l, err := net.Listen("tcp", listenIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(); cl.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r, err := cl.Dial("tcp", dest)
				if err != nil {
					return
				}
				defer r.Close()
				go io.Copy(r, c)
				io.Copy(c, r)
			}()
		}
	}()
	return l.Addr().String()
}
