package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"postern/ldapstore"
)

const emfileChildEnv = "POSTERN_TEST_CLUSTER_EMFILE_CHILD"

// reportingListener prints every Accept error, so that the parent knows the
// real EMFILE reached the agent's accept loop.
type reportingListener struct{ net.Listener }

func (l reportingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		fmt.Printf("child: accept error: %v\n", err)
	}
	return c, err
}

// TestAcceptEMFILERecovers (issue 9, item 9): when accept fails with
// EMFILE the agent's SSH accept loop waits and retries instead of ending;
// the member that connected meanwhile gets the SSH server's version line
// once descriptors are free. The agent runs in a child process (this test
// binary again) whose descriptors are used up under a lowered
// RLIMIT_NOFILE.
func TestAcceptEMFILERecovers(t *testing.T) {
	if os.Getenv(emfileChildEnv) == "1" {
		emfileChild(t) // this process is the child the test started
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestAcceptEMFILERecovers$", "-test.v")
	cmd.Env = append(os.Environ(), emfileChildEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	defer func() {
		stdin.Close()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var log []string
	wait := func(prefix string) string {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("child ended before %q:\n%s", prefix, strings.Join(log, "\n"))
				}
				log = append(log, l)
				if strings.HasPrefix(l, "child: serve ended") {
					t.Fatalf("the listener ended: %s\n%s", l, strings.Join(log, "\n"))
				}
				if i := strings.Index(l, prefix); i >= 0 {
					return l[i+len(prefix):]
				}
			case <-timeout:
				t.Fatalf("no %q from the child in 30 s:\n%s", prefix, strings.Join(log, "\n"))
			}
		}
	}
	addr := strings.TrimSpace(wait("child: listening "))
	wait("child: descriptors exhausted")
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	wait("too many open files")
	fmt.Fprintln(stdin, "release")
	wait("child: released")
	greeting, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(greeting, "SSH-2.0-") {
		t.Fatalf("no greeting on the connection made during EMFILE: %q %v\n%s", greeting, err, strings.Join(log, "\n"))
	}
	t.Logf("greeting after recovery: %q", strings.TrimSpace(greeting))
}

// emfileChild is the agent side of TestAcceptEMFILERecovers.
func emfileChild(t *testing.T) {
	dir := t.TempDir()
	st, err := ldapstore.Open(filepath.Join(dir, "ldap.db"), ldapstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	g, err := New(Config{DataDir: dir, Store: st, DeviceID: "emfile", UUID: "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
		RootDN: "cn=admin,dc=postern,dc=local", Heartbeat: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	l, err := net.Listen("tcp", "127.0.30.9:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		err := g.Serve(reportingListener{l})
		fmt.Printf("child: serve ended: %v\n", err)
	}()
	fmt.Printf("child: listening %s\n", l.Addr())
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 128, Max: old.Max}); err != nil {
		t.Fatal(err)
	}
	var held []*os.File
	for range 1000 {
		f, err := os.Open(os.DevNull)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				t.Fatal(err)
			}
			break
		}
		held = append(held, f)
	}
	fmt.Println("child: descriptors exhausted")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "release" {
			for _, f := range held {
				f.Close()
			}
			held = nil
			syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
			fmt.Println("child: released")
		}
	}
}
