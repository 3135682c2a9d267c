package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"postern/ldapstore"
)

// dialFrom opens a TCP connection to addr from the local address ip.
func dialFrom(t *testing.T, ip, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// whoAmIWorks sends a WhoAmI on c and reports whether a response came.
func whoAmIWorks(t *testing.T, c net.Conn) bool {
	t.Helper()
	if _, err := c.Write(msg(1, extendedOp(OIDWhoAmI))); err != nil {
		return false
	}
	id, op := readMessageNoFail(c)
	return op != nil && id == 1 && op.Tag == appExtendedResponse
}

// readMessageNoFail is readMessage that returns a nil op on an error.
func readMessageNoFail(r io.Reader) (int64, *ber.Packet) {
	p, err := ber.ReadPacket(r)
	if err != nil || len(p.Children) < 2 {
		return 0, nil
	}
	id, _ := p.Children[0].Value.(int64)
	return id, p.Children[1]
}

// TestConnectionCaps (issue 9, item 9): the server caps connections in all
// and per client address; one over a cap gets a Notice of Disconnection
// (unavailable) and is closed, and a freed slot is usable again.
func TestConnectionCaps(t *testing.T) {
	ts := newTestServer(t, testOption(func(c *Config) { c.MaxConnections = 3; c.MaxConnectionsPerIP = 2 }))
	a1 := dialFrom(t, "127.0.30.3", ts.addr)
	a2 := dialFrom(t, "127.0.30.3", ts.addr)
	for _, c := range []net.Conn{a1, a2} {
		if !whoAmIWorks(t, c) {
			t.Fatal("connection under the caps not served")
		}
	}
	wantUnavailable := func(c net.Conn, what string) {
		t.Helper()
		id, op := readMessage(t, c)
		if id != 0 || op.Tag != appExtendedResponse || resultCode(t, op) != int64(ldap.LDAPResultUnavailable) {
			t.Fatalf("%s: got id %d tag %d, want a Notice of Disconnection (unavailable)", what, id, op.Tag)
		}
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("%s: connection not closed: %v", what, err)
		}
	}
	wantUnavailable(dialFrom(t, "127.0.30.3", ts.addr), "third connection from one address")
	b1 := dialFrom(t, "127.0.30.4", ts.addr)
	if !whoAmIWorks(t, b1) {
		t.Fatal("connection from another address not served")
	}
	wantUnavailable(dialFrom(t, "127.0.30.5", ts.addr), "fourth connection in all")
	a1.Close()
	// the slot is freed when the server sees the close
	for i := 0; ; i++ {
		c := dialFrom(t, "127.0.30.5", ts.addr)
		if whoAmIWorks(t, c) {
			break
		}
		if i == 50 {
			t.Fatal("freed slot never reused")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// two refusals above, and one per retry while the server had not yet
	// seen the close
	if got, _ := strconv.Atoi(strings.TrimSpace(gather(t, ts.reg, "postern_ldap_connections_refused_total"))); got < 2 {
		t.Errorf("refused counter %d, want at least 2", got)
	}
}

// TestAnonymousIdleTimeout: a connection that has not bound is closed
// after AnonymousIdleTimeout; a bound one keeps the (long) IdleTimeout.
func TestAnonymousIdleTimeout(t *testing.T) {
	ts := newTestServer(t, testOption(func(c *Config) { c.AnonymousIdleTimeout = 200 * time.Millisecond }))
	c := ts.raw()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("idle anonymous connection: read %v, want EOF", err)
	}
	// a failed bind leaves the connection anonymous
	l := ts.dial()
	wantCode(t, l.Bind(testUserDN, "wrong"), ldap.LDAPResultInvalidCredentials)
	root := ts.root()
	time.Sleep(time.Second)
	if _, err := root.Search(ldap.NewSearchRequest(testSuffix, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", nil, nil)); err != nil {
		t.Fatalf("bound connection closed after 1 s: %v", err)
	}
	if _, err := l.WhoAmI(nil); err == nil {
		t.Fatal("anonymous connection still open after its bind failed and 1 s passed")
	}
}

const emfileChildEnv = "POSTERN_TEST_EMFILE_CHILD"

// TestAcceptEMFILERecovers (issue 9, item 9): when accept fails with
// EMFILE (no file descriptor left) the listener waits and retries instead
// of ending; a client that connected meanwhile is served once descriptors
// are free again. The server runs in a child process (this test binary
// again, emfileChild) whose RLIMIT_NOFILE is lowered and whose
// descriptors are used up, so the parent keeps its own.
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
	c, err := net.DialTimeout("tcp", addr, 5*time.Second) // the kernel completes it; accept fails
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(msg(1, extendedOp(OIDWhoAmI))); err != nil {
		t.Fatal(err)
	}
	wait("too many open files")
	fmt.Fprintln(stdin, "release")
	wait("child: released")
	id, op := readMessageNoFail(c)
	if op == nil || id != 1 || op.Tag != appExtendedResponse {
		t.Fatalf("the connection made during EMFILE was not served after recovery (id %d):\n%s", id, strings.Join(log, "\n"))
	}
	// and new connections are served too
	c2, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(10 * time.Second))
	if !whoAmIWorks(t, c2) {
		t.Fatal("new connection after recovery not served")
	}
	t.Logf("child log:\n%s", strings.Join(log, "\n"))
}

// emfileChild is the server side of TestAcceptEMFILERecovers; it does
// nothing unless started by it.
func emfileChild(t *testing.T) {
	st, err := ldapstore.Open(filepath.Join(t.TempDir(), "ldap.db"), ldapstore.Options{Suffix: testSuffix})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv, err := New(Config{Store: st, Logger: slog.New(slog.NewTextHandler(os.Stdout, nil))})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.30.6:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	go func() {
		err := <-served
		fmt.Printf("child: serve ended: %v\n", err)
	}()
	fmt.Printf("child: listening %s\n", l.Addr())
	lim := syscall.Rlimit{Cur: 128, Max: 128}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	lim.Max = old.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	var held []*os.File
	for i := 0; i < 1000; i++ {
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
	srv.Close()
}
