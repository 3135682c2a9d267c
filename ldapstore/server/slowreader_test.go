package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"postern/ldapstore"
)

const slowChildEnv = "POSTERN_TEST_SLOW_READER_CHILD"

// Slow-reader load (issue 9, item 10): 4 connections, each sends 64
// subtree searches of 2000 entries of 32 KiB and never reads. Before the
// result buffer budget, every search held a chunk of 128 decoded entries
// (4 MiB) while it waited to write: 4 × 64 × 4 MiB, over 1 GiB.
const (
	slowConns    = 4
	slowSearches = 64
	slowEntries  = 2000
	slowPhoto    = 32 << 10
	// slowRSSLimit is the bound the server's anonymous RSS must stay under:
	// the Go runtime and the store's caches, plus the 64 MiB result budget
	// and the garbage of the searches.
	slowRSSLimit = 300 << 20
)

// TestSlowReadersMemoryBounded: the memory a server holds for search
// results its clients do not read is bounded: by the per-connection and
// global budgets (a measured byte counter) and in the server process's RSS
// (RssAnon of a child process running the server).
func TestSlowReadersMemoryBounded(t *testing.T) {
	if os.Getenv(slowChildEnv) == "1" {
		slowReaderChild(t) // this process is the child the test started
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSlowReadersMemoryBounded$", "-test.v")
	cmd.Env = append(os.Environ(), slowChildEnv+"=1")
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
		case <-time.After(30 * time.Second):
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
		timeout := time.After(120 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("child ended before %q:\n%s", prefix, strings.Join(log, "\n"))
				}
				log = append(log, l)
				if i := strings.Index(l, prefix); i >= 0 {
					return l[i+len(prefix):]
				}
			case <-timeout:
				t.Fatalf("no %q from the child:\n%s", prefix, strings.Join(log, "\n"))
			}
		}
	}
	addr := strings.TrimSpace(wait("child: listening "))
	for range slowConns {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.(*net.TCPConn).SetReadBuffer(4096)
		c.Write(msg(1, bindOp(testRootDN, testRootPW)))
		if id, op := readMessageNoFail(c); op == nil || id != 1 {
			t.Fatal("bind failed")
		}
		for i := range slowSearches {
			c.Write(msg(int64(2+i), searchOp(testSuffix, "objectClass")))
		}
	}
	// Sample until every search is running or waiting and the memory held
	// for them has stopped changing, keeping the largest RSS seen.
	var maxRSS, held, ops int64
	stable := 0
	for i := 0; i < 300 && stable < 10; i++ {
		time.Sleep(200 * time.Millisecond)
		fmt.Fprintln(stdin, "stat")
		f := strings.Fields(wait("child: stat "))
		vals := map[string]int64{}
		for _, kv := range f {
			k, v, _ := strings.Cut(kv, "=")
			vals[k], _ = strconv.ParseInt(v, 10, 64)
		}
		maxRSS = max(maxRSS, vals["rssanon"])
		if vals["ops"] == slowConns*slowSearches && vals["held"] == held {
			stable++
		} else {
			stable = 0
		}
		held, ops = vals["held"], vals["ops"]
		if vals["held"] > vals["limit"] {
			t.Fatalf("result buffer holds %d octets, over its limit %d", vals["held"], vals["limit"])
		}
	}
	t.Logf("searches outstanding %d, result buffer held %d KiB, largest RssAnon %d MiB (limit %d MiB)", ops, held>>10, maxRSS>>20, slowRSSLimit>>20)
	if stable < 10 {
		t.Fatalf("the server never settled: %d searches outstanding, %d octets held", ops, held)
	}
	if maxRSS > slowRSSLimit {
		t.Fatalf("server RssAnon reached %d MiB with slow readers, over %d MiB", maxRSS>>20, slowRSSLimit>>20)
	}
	// A client that reads is still served meanwhile.
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	c.Write(msg(1, bindOp(testRootDN, testRootPW)))
	readMessageNoFail(c)
	c.Write(msg(2, searchOp("ou=people,"+testSuffix, "objectClass")))
	n := 0
	for {
		id, op := readMessageNoFail(c)
		if op == nil || id != 2 {
			t.Fatalf("reading client: response %d after %d entries", id, n)
		}
		if op.Tag == appSearchDone {
			break
		}
		n++
	}
	if n != slowEntries+3 { // and ou=people, alice, bob
		t.Fatalf("reading client got %d entries, want %d", n, slowEntries+3)
	}
}

// slowReaderChild is the server of TestSlowReadersMemoryBounded; it
// does nothing unless started by it.
func slowReaderChild(t *testing.T) {
	st, err := ldapstore.Open(filepath.Join(t.TempDir(), "ldap.db"), ldapstore.Options{Suffix: testSuffix})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	for _, e := range baseEntries() {
		if err := st.Add(ctx, e, testRootDN); err != nil {
			t.Fatal(err)
		}
	}
	photo := strings.Repeat("\xff\xd8 photo ", slowPhoto/8)
	var batch []*ldapstore.Entry
	for i := range slowEntries {
		uid := fmt.Sprintf("p%05d", i)
		batch = append(batch, entry("uid="+uid+",ou=people,"+testSuffix, "objectClass", "inetOrgPerson", "uid", uid,
			"cn", uid, "sn", uid, "jpegPhoto", photo+uid))
		if len(batch) == 200 {
			if err := st.AddBatch(ctx, batch, testRootDN); err != nil {
				t.Fatal(err)
			}
			batch = nil
		}
	}
	hash, _ := ldapstore.HashPassword(testRootPW)
	srv, err := New(Config{Store: st, RootDN: testRootDN, RootPassword: hash, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.30.7:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	fmt.Printf("child: listening %s\n", l.Addr())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		ops := 0
		srv.mu.Lock()
		for c := range srv.conns {
			ops += c.outstanding()
		}
		srv.mu.Unlock()
		fmt.Printf("child: stat ops=%d held=%d limit=%d rssanon=%d\n", ops, srv.results.held(), srv.cfg.MaxResultBuffer, rssAnon())
	}
}

// rssAnon returns the process's anonymous resident memory in octets.
func rssAnon() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "RssAnon:") {
			f := strings.Fields(l)
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n << 10
		}
	}
	return -1
}
