package integration

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestEmbeddedDefault is the README's first step: `postern serve` with no
// arguments in an empty directory creates ./var, prints a generated admin
// password once and the listeners, and ldapsearch with that password lists
// the tree on 127.0.0.1:3389.
//
// The appliance runs in a network namespace of its own (unshare -n, with
// only its loopback up), so the default 127.0.0.1 ports it binds are not
// the ones of an appliance the user runs with `make run` beside make test;
// the clients enter that namespace with nsenter.
func TestEmbeddedDefault(t *testing.T) {
	dir := t.TempDir()
	unshare := requireTool(t, "unshare")
	var pid int
	// inNS runs a client inside the appliance's network namespace.
	inNS := func(name string, args ...string) (string, error) {
		t.Helper()
		return tool(t, nil, "", "nsenter", append([]string{"-t", strconv.Itoa(pid), "-n", "--", requireTool(t, name)}, args...)...)
	}
	run := func() (string, func()) {
		// unshare execs the shell, which execs postern: pid is postern's
		cmd := exec.Command(unshare, "-n", "--", "sh", "-c", `ip link set lo up && exec "$0" serve`, binary)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "POSTERN_ADMIN_PASSWORD=", "POSTERN_DATA=")
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pid = cmd.Process.Pid
		// the reader goes on after "ready" (the process keeps printing):
		// it hands over what it has read so far
		type seen struct {
			ok  bool
			out string
		}
		done := make(chan seen, 1)
		go func() {
			var printed strings.Builder
			sc := bufio.NewScanner(stdout)
			sent := false
			for sc.Scan() {
				printed.WriteString(sc.Text() + "\n")
				if sc.Text() == "ready" && !sent {
					done <- seen{true, printed.String()}
					sent = true
				}
			}
			if !sent {
				done <- seen{false, printed.String()}
			}
		}()
		var printed string
		select {
		case r := <-done:
			if printed = r.out; !r.ok {
				t.Fatalf("serve exited before ready:\n%s", printed)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("serve not ready:\n%s", (<-done).out)
		}
		return printed, func() {
			cmd.Process.Signal(syscall.SIGTERM)
			if err := cmd.Wait(); err != nil {
				t.Errorf("serve after SIGTERM: %v", err)
			}
		}
	}
	out, stop := run()
	for _, want := range []string{"ldap listening on 127.0.0.1:3389", "ldaps listening on 127.0.0.1:3636", "metrics listening on 127.0.0.1:9464"} {
		if !strings.Contains(out, want) {
			t.Errorf("start-up report lacks %q:\n%s", want, out)
		}
	}
	m := regexp.MustCompile(`admin password \(shown once\): (\S+)`).FindStringSubmatch(out)
	if m == nil {
		stop()
		t.Fatalf("no generated admin password printed:\n%s", out)
	}
	res, err := inNS("ldapsearch", "-x", "-H", "ldap://127.0.0.1:3389", "-D", adminDN, "-w", m[1], "-b", suffix)
	if err != nil {
		t.Errorf("ldapsearch in the appliance's namespace: %v\n%s", err, res)
	}
	if !strings.Contains(res, "dn: ou=people,"+suffix) || !strings.Contains(res, "numEntries: 5") {
		t.Errorf("ldapsearch of the default tree:\n%s", res)
	}
	for _, f := range []string{"identity.json", "tls.crt", "tls.key", "admin.hash", "ldap.db", "control.sock"} {
		if _, err := os.Stat(filepath.Join(dir, "var", f)); err != nil {
			t.Errorf("./var/%s: %v", f, err)
		}
	}
	// Secrets are readable by the owner only; the password is not stored in plain.
	for _, f := range []string{"tls.key", "admin.hash", "control.sock"} {
		if st, err := os.Stat(filepath.Join(dir, "var", f)); err == nil && st.Mode().Perm()&0o077 != 0 {
			t.Errorf("./var/%s has mode %v", f, st.Mode().Perm())
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "var", "admin.hash")); strings.Contains(string(b), m[1]) || !strings.HasPrefix(string(b), "{ARGON2}") {
		t.Errorf("admin.hash is not an argon2 hash: %q", b)
	}
	stop()
	// The second start keeps the password and does not print one.
	out, stop = run()
	defer stop()
	if strings.Contains(out, "admin password") {
		t.Errorf("password printed again on the second start:\n%s", out)
	}
	if res, err := inNS("ldapwhoami", "-x", "-H", "ldap://127.0.0.1:3389", "-D", adminDN, "-w", m[1]); err != nil {
		t.Errorf("ldapwhoami: %v\n%s", err, res)
	}
}
