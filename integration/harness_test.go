package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"postern/internal/testnet"
)

// binary is the postern binary built once for the whole package.
var binary string

// testVersion is the firmware version the test binary is built with.
const testVersion = "9.9.9-test"

const adminPassword = "Sekr1t-admin-pw"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "postern-it-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "postern")
	if err := buildBinary(binary, testVersion); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildBinary builds postern with the given firmware version.
func buildBinary(out, version string) error {
	cmd := exec.Command("go", "build", "-o", out,
		"-ldflags", "-X postern/firmware.Version="+version+" -X postern/firmware.Build=integration", "postern")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build postern: %w", err)
	}
	return nil
}

// requireTool fails the test when a third-party peer is missing: make test
// installs them, so a missing one is a broken environment, not a skip.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		for _, d := range []string{"/usr/sbin", "/usr/bin"} {
			if _, serr := os.Stat(filepath.Join(d, name)); serr == nil {
				return filepath.Join(d, name)
			}
		}
		t.Fatalf("%s is not installed; `make test` installs it (apt-get)", name)
	}
	return p
}

// freePort returns a free TCP address on ip.
func freePort(t *testing.T, ip string) string {
	t.Helper()
	return testnet.FreePort(t, ip)
}

// appliance is one postern process.
type appliance struct {
	t       *testing.T
	bin     string
	ip      string
	data    string
	addr    map[string]string // listener name → address
	env     []string          // extra environment of the next start
	extra   []string          // the options of the last start
	cmd     *exec.Cmd
	out     *syncBuffer
	exited  chan struct{}
	exitErr error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startAppliance starts postern serve on ip with fresh ports and a fresh
// data directory, and waits until it says ready.
func startAppliance(t *testing.T, ip string, extra ...string) *appliance {
	t.Helper()
	return startApplianceEnv(t, ip, nil, extra...)
}

// startApplianceEnv is startAppliance with env added to the process's
// environment (kept for its restarts).
func startApplianceEnv(t *testing.T, ip string, env []string, extra ...string) *appliance {
	t.Helper()
	a := &appliance{t: t, bin: binary, ip: ip, data: filepath.Join(t.TempDir(), "var"), addr: map[string]string{}, env: env}
	for _, n := range []string{"ldap", "ldaps", "smtp", "admin", "cluster", "metrics"} {
		a.addr[n] = freePort(t, ip)
	}
	a.start(extra...)
	t.Cleanup(a.stop)
	return a
}

func (a *appliance) args(extra ...string) []string {
	args := []string{"serve", "--data", a.data}
	for _, n := range []string{"ldap", "ldaps", "smtp", "admin", "cluster", "metrics"} {
		args = append(args, "--"+n, a.addr[n])
	}
	return append(args, extra...)
}

func (a *appliance) start(extra ...string) {
	a.t.Helper()
	a.extra = extra
	a.out = &syncBuffer{}
	a.cmd = exec.Command(a.bin, a.args(extra...)...)
	a.cmd.Env = append(append(os.Environ(), "POSTERN_ADMIN_PASSWORD="+adminPassword), a.env...)
	pr, pw := io.Pipe()
	a.cmd.Stdout = io.MultiWriter(a.out, pw)
	a.cmd.Stderr = a.out
	if err := a.cmd.Start(); err != nil {
		a.t.Fatalf("start postern: %v", err)
	}
	a.exited = make(chan struct{})
	go func() {
		a.exitErr = a.cmd.Wait()
		pw.Close()
		close(a.exited)
	}()
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		ok := false
		for sc.Scan() {
			if sc.Text() == "ready" && !ok {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case ok := <-ready:
		if !ok {
			a.t.Fatalf("postern exited before ready: %v\n%s", a.exitErr, a.out)
		}
	case <-time.After(30 * time.Second):
		a.t.Fatalf("postern not ready after 30s:\n%s", a.out)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (a *appliance) stop() {
	if a.cmd == nil || a.cmd.Process == nil {
		return
	}
	select {
	case <-a.exited:
		return
	default:
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
		if a.exitErr != nil {
			a.t.Errorf("postern exited uncleanly after SIGTERM: %v\n%s", a.exitErr, a.out)
		}
	case <-time.After(20 * time.Second):
		a.cmd.Process.Kill()
		<-a.exited
		a.t.Errorf("postern did not stop within 20s of SIGTERM:\n%s", a.out)
	}
}

// waitLog waits until the appliance's output holds line: what it logs
// reaches the test through a pipe, after the reply a client already got.
func (a *appliance) waitLog(t *testing.T, line string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(a.out.String(), line) {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not log %q within 10s:\n%s", a.ip, line, a.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill9 kills the appliance without warning.
func (a *appliance) kill9() {
	a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.exited
}

// restart starts the appliance again on the same data and ports, with the
// options of the last start when none are given.
func (a *appliance) restart(extra ...string) {
	if len(extra) == 0 {
		extra = a.extra
	}
	a.start(extra...)
}

// cli runs a postern CLI command against this appliance's data directory.
func (a *appliance) cli(args ...string) (string, error) {
	return a.cliIn(nil, args...)
}

func (a *appliance) cliIn(stdin io.Reader, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, a.bin, args...)
	cmd.Env = append(os.Environ(), "POSTERN_DATA="+a.data)
	cmd.Stdin = stdin
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.String(), err
}

func (a *appliance) ldapURL() string  { return "ldap://" + a.addr["ldap"] }
func (a *appliance) ldapsURL() string { return "ldaps://" + a.addr["ldaps"] }

// tool runs a third-party command with a timeout and returns its combined
// output.
func tool(t *testing.T, env []string, stdin string, name string, args ...string) (string, error) {
	t.Helper()
	p := requireTool(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, p, args...)
	cmd.Env = append(os.Environ(), env...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustTool is tool that fails the test on a non-zero exit.
func mustTool(t *testing.T, env []string, stdin string, name string, args ...string) string {
	t.Helper()
	out, err := tool(t, env, stdin, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// exitCode returns the exit status of a finished command's error.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
