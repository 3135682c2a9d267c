package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIBehaviour is issue 11's sixth item: usage errors exit 2 with one
// message and a suggestion for a typo, failures exit 1 without doubled
// prefixes, --help works on every subcommand, --version exists, inject
// without options only shows, a failed start leaves no admin password
// behind, `admin password` resets it, and a user without access to the
// control socket is told so.
func TestCLIBehaviour(t *testing.T) {
	a := startAppliance(t, "127.0.0.39")
	run := func(args ...string) (string, int) {
		t.Helper()
		out, err := a.cli(args...)
		return out, exitCode(err)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		wants []string
	}{
		{"typo of a command", []string{"clustr", "status"}, 2, []string{`unknown command "clustr" (did you mean "cluster"?)`}},
		{"typo of a subcommand", []string{"cluster", "stauts"}, 2, []string{`unknown subcommand of postern cluster "stauts" (did you mean "status"?)`}},
		{"version flag", []string{"--version"}, 0, []string{"postern " + testVersion}},
		{"help of a subcommand", []string{"cluster", "prepare", "--help"}, 0, []string{"usage: postern cluster prepare", "-password-file", "-valid"}},
		{"help of serve", []string{"serve", "-h"}, 0, []string{"usage: postern serve", "-ldap"}},
		{"unknown flag", []string{"cluster", "prepare", "--bogus"}, 2, []string{"flag provided but not defined: -bogus (see postern cluster prepare --help)"}},
		{"failure, no doubled prefix", []string{"cluster", "leave"}, 1, []string{"postern cluster: this device is not a cluster member"}},
		{"inject without options shows", []string{"cluster", "inject"}, 0, []string{"this device may inject mail on: (none)"}},
		{"missing argument", []string{"cluster", "remove"}, 2, []string{"want exactly one DEVICE-ID"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := run(tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d:\n%s", code, tc.code, out)
			}
			for _, w := range tc.wants {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "cluster: cluster:") || strings.Count(out, "flag provided") > 1 {
				t.Errorf("doubled message:\n%s", out)
			}
		})
	}

	// a start that cannot bind prints no password and stores none
	data := filepath.Join(t.TempDir(), "var")
	cmd := exec.Command(binary, "serve", "--data", data, "--ldap", a.addr["ldap"], "--ldaps", "off", "--smtp", "off",
		"--admin", "off", "--cluster", "off", "--metrics", "off")
	cmd.Env = append(os.Environ(), "POSTERN_ADMIN_PASSWORD=")
	out, err := cmd.CombinedOutput()
	if exitCode(err) != 1 || strings.Contains(string(out), "admin password") {
		t.Fatalf("serve on a taken port: exit %d\n%s", exitCode(err), out)
	}
	if _, err := os.Stat(filepath.Join(data, "admin.hash")); !os.IsNotExist(err) {
		t.Fatalf("a failed start stored an admin password: %v", err)
	}

	// admin password: generated and printed once, or from a file
	out2, code := run("admin", "password")
	pw := strings.TrimSpace(strings.TrimPrefix(out2, "new admin password (shown once): "))
	if code != 0 || pw == "" || strings.Contains(pw, " ") {
		t.Fatalf("admin password: exit %d\n%s", code, out2)
	}
	if _, err := tool(t, nil, "", "ldapwhoami", "-x", "-H", a.ldapURL(), "-D", adminDN, "-w", pw); err != nil {
		t.Fatalf("bind with the new admin password: %v", err)
	}
	if _, err := tool(t, nil, "", "ldapwhoami", "-x", "-H", a.ldapURL(), "-D", adminDN, "-w", adminPassword); exitCode(err) != 49 {
		t.Fatalf("the old admin password still binds: %v", err)
	}
	pwFile := writePassword(t, "short")
	if out, code := run("admin", "password", "--password-file", pwFile); code != 1 || !strings.Contains(out, "at least 12 characters") {
		t.Fatalf("short admin password: exit %d\n%s", code, out)
	}
	if out, code := run("admin", "password", "--password-file", writePassword(t, adminPassword)); code != 0 || !strings.Contains(out, "admin password changed") {
		t.Fatalf("admin password from a file: exit %d\n%s", code, out)
	}
	if b, _ := os.ReadFile(filepath.Join(a.data, "admin.hash")); strings.Contains(string(b), adminPassword) {
		t.Fatal("admin.hash holds the password in plain")
	}

	// another user: told that the socket is not theirs, not that nothing runs
	setpriv := requireTool(t, "setpriv")
	bin := filepath.Join(t.TempDir(), "postern")
	copyTo(t, binary, bin)
	os.Chmod(filepath.Dir(bin), 0o755)
	os.Chmod(bin, 0o755)
	os.Chmod(filepath.Dir(a.data), 0o755)
	os.Chmod(a.data, 0o755)
	out, err = exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", bin, "status", "--data", a.data).CombinedOutput()
	if exitCode(err) != 1 || !strings.Contains(string(out), "permission denied on the control socket") {
		t.Fatalf("status as another user: exit %d\n%s", exitCode(err), out)
	}
}
