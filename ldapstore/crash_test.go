package ldapstore

import (
	"bufio"
	"context"
	"fmt"
	bolt "go.etcd.io/bbolt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const crashEnv = "POSTERN_LDAPSTORE_CRASH_CHILD"

// crashChild is the child of TestCrashDurability: it modifies entries
// from several goroutines and prints "ack <uid> <n>" after each Modify
// returned nil, until it is killed.
func crashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Println("open error:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	if n, _ := s.Count(ctx); n == 0 {
		seed(t, s)
		for w := 0; w < 8; w++ {
			must(t, s.Add(ctx, person(fmt.Sprintf("crash%d", w)), admin))
		}
	}
	fmt.Println("ready")
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			dn := fmt.Sprintf("uid=crash%d,ou=people,dc=postern,dc=local", w)
			for i := 1; ; i++ {
				err := s.Modify(ctx, dn, []Modification{{Op: ModReplace, Attr: Attribute{Type: "description", Vals: []string{strconv.Itoa(i)}}}}, admin)
				if err != nil {
					fmt.Println("modify error:", err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(out, "ack crash%d %d\n", w, i)
				out.Flush()
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
}

// TestCrashDurability kills a writing child with SIGKILL and checks that
// every acknowledged modify is in the reopened store.
func TestCrashDurability(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		crashChild(t) // this process is the child the test started
		return
	}
	if os.Getenv(crashEnv) != "" {
		return
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDurability$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+path)
		stdout, err := cmd.StdoutPipe()
		must(t, err)
		cmd.Stderr = os.Stderr
		must(t, cmd.Start())
		acked := map[string]int{}
		sc := bufio.NewScanner(stdout)
		lines := 0
		deadline := time.Now().Add(10 * time.Second)
		killAfter := 300 + round*200
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 3 && f[0] == "ack" {
				n, _ := strconv.Atoi(f[2])
				acked[f[1]] = max(acked[f[1]], n)
				lines++
			} else if f[0] != "ready" {
				t.Fatalf("child: %s", sc.Text())
			}
			if lines == killAfter || time.Now().After(deadline) {
				must(t, cmd.Process.Signal(syscall.SIGKILL))
				break
			}
		}
		// the child may have acknowledged more in the pipe; read them too
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 3 && f[0] == "ack" {
				n, _ := strconv.Atoi(f[2])
				acked[f[1]] = max(acked[f[1]], n)
			}
		}
		cmd.Wait()
		if lines < killAfter {
			t.Fatalf("round %d: child acknowledged only %d modifies", round, lines)
		}
		// bbolt's own consistency check, before anything writes again
		db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
		must(t, err)
		must(t, db.View(checkTx))
		must(t, db.Close())
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		ctx := context.Background()
		for uid, n := range acked {
			e, err := s.Get(ctx, "uid="+uid+",ou=people,dc=postern,dc=local")
			must(t, err)
			got, _ := strconv.Atoi(e.First("description"))
			if got < n {
				t.Fatalf("round %d: %s has description %d, but %d was acknowledged", round, uid, got, n)
			}
		}
		if c, _ := s.Count(ctx); c != 13 {
			t.Fatalf("round %d: count %d", round, c)
		}
		must(t, s.Close())
		t.Logf("round %d: %d acknowledged modifies verified", round, lines)
	}
}
