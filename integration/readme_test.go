package integration

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeBlocks returns the ```sh blocks of README.md in order, but for a
// block whose preceding line says "not run by the README test".
func readmeBlocks(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []string
	var cur []string
	in, skip, prev := false, false, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !in && strings.HasPrefix(line, "```sh"):
			in, cur = true, nil
			skip = strings.Contains(prev, "not run by the README test")
		case in && strings.HasPrefix(line, "```"):
			in = false
			if !skip {
				blocks = append(blocks, strings.Join(cur, "\n"))
			}
		case in:
			cur = append(cur, line)
		}
		if strings.TrimSpace(line) != "" {
			prev = line
		}
	}
	return blocks
}

// TestREADME is issue 11's seventh item: the README's command blocks run as
// written, in order, on a copy of the repository, offline: in a network
// namespace of their own (only loopback, nothing else reachable, no port
// of the user's `make run` taken), with the tools `make test` installed.
func TestREADME(t *testing.T) {
	blocks := readmeBlocks(t)
	if len(blocks) < 4 {
		t.Fatalf("README has %d runnable blocks", len(blocks))
	}
	// a copy of the repository as git sees it (committed or not)
	repo := t.TempDir()
	files, err := exec.Command("git", "-C", "..", "ls-files", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, f := range strings.Fields(string(files)) {
		if _, err := os.Stat(filepath.Join("..", f)); err != nil {
			continue // deleted in the work tree
		}
		if err := os.MkdirAll(filepath.Join(repo, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		copyTo(t, filepath.Join("..", f), filepath.Join(repo, f))
	}
	script := "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + strings.Join(blocks, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(repo, "readme.sh"), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, requireTool(t, "unshare"), "-n", "--", "bash", "-c", "ip link set lo up && exec bash -x readme.sh")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOFLAGS=-mod=readonly", "POSTERN_DATA=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	transcript := string(out)
	if err != nil {
		t.Fatalf("README blocks: %v\n%s", err, transcript)
	}
	for _, want := range []string{
		"dn: ou=people,dc=postern,dc=local", // the first ldapsearch
		"lab/mail/",                         // the message smtp-sink wrote
		"joined cluster",                    // the join's result
		"OK (",                              // cluster status
		"0 missing somewhere, 0 in different versions", // cluster compare
	} {
		if !strings.Contains(transcript, want) {
			t.Errorf("the README's run lacks %q", want)
		}
	}
	// Alice listed on both members, then on bravo after the restore
	if n := strings.Count(transcript, "\ndn: cn=Alice,ou=people,dc=postern,dc=local"); n != 3 {
		t.Errorf("Alice listed %d times, want 3", n)
	}
	for _, want := range []string{"paused: firmware 0.2.0 here, 0.1.0 there", "every member OK", "restored: 1 added", "device key replaced", "not a cluster member"} {
		if !strings.Contains(transcript, want) {
			t.Errorf("the README's Day 2 run lacks %q", want)
		}
	}
	// the frontend: attached, the table, no ldap.db, Bob read through it
	// without his password, both messages delivered, failover, detach
	for _, want := range []string{"is now a frontend", "Remote LDAP server", "F(1,2)", "mail: bob@example.com", "detached"} {
		if !strings.Contains(transcript, want) {
			t.Errorf("the README's frontend run lacks %q", want)
		}
	}
	if strings.Contains(transcript, "userPassword:") {
		t.Error("the README's frontend run shows a userPassword")
	}
	if n := strings.Count(transcript, "\nlab/mail/"); n < 3 {
		t.Errorf("%d messages found in lab/mail, want the README's first and the frontend's two", n)
	}
	if t.Failed() || os.Getenv("POSTERN_README_TRANSCRIPT") != "" {
		t.Logf("transcript:\n%s", transcript)
	}
}
