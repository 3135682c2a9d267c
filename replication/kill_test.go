package replication

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"postern/ldapstore"
)

// TestConsumerKilledMidRefresh: a consumer in a child process (this test
// binary re-executed) is killed with SIGKILL in the middle of a refresh,
// twice: during its initial full refresh (present phase) and during a
// delta refresh from its cookie. Each time the restarted consumer resumes
// and the trees converge; the delta refresh resumes from the checkpoint
// cookie stored with the last committed batch instead of starting over.
func TestConsumerKilledMidRefresh(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, 1, "")
	seedTree(t, a.store)
	const users = 6000
	batch := make([]*ldapstore.Entry, 0, 1000)
	for i := range users {
		batch = append(batch, person(fmt.Sprintf("k%05d", i), "description", "v0"))
		if len(batch) == cap(batch) {
			must(t, a.store.AddBatch(ctx, batch, rootDN))
			batch = batch[:0]
		}
	}
	dir := t.TempDir()
	total := users + 3

	// 1: killed during the initial refresh
	child := runChild(t, a.addr, dir, total, "v0")
	child.waitFor(t, func(s childStatus) bool { return s.local > 500 && s.local < total-500 })
	child.kill(t)
	child = runChild(t, a.addr, dir, total, "v0")
	child.waitExit(t)

	// 2: killed during a delta refresh of 6000 modifies
	for i := range users {
		d := person(fmt.Sprintf("k%05d", i)).DN
		must(t, a.store.Modify(ctx, d, []ldapstore.Modification{{Op: ldapstore.ModReplace, Attr: ldapstore.Attribute{Type: "description", Vals: []string{"v1"}}}}, rootDN))
	}
	child = runChild(t, a.addr, dir, total, "v1")
	child.waitFor(t, func(s childStatus) bool { return s.applied > 1000 && s.applied < users-1000 })
	child.kill(t)
	child = runChild(t, a.addr, dir, total, "v1")
	last := child.waitExit(t)
	if last.applied >= users-500 {
		t.Errorf("resumed delta refresh applied %d changes: it restarted instead of resuming from its checkpoint", last.applied)
	}

	b, err := ldapstore.Open(filepath.Join(dir, "ldap.db"), ldapstore.Options{ServerID: 2})
	must(t, err)
	defer b.Close()
	if dump(t, b) != dump(t, a.store) {
		t.Fatalf("trees differ after the kills:\n%s", diffHint(dump(t, a.store), dump(t, b)))
	}
}

type childStatus struct {
	phase          string
	local, applied int
}

type child struct {
	cmd   *exec.Cmd
	lines chan childStatus
	exit  chan error
}

func runChild(t *testing.T, addr, dir string, want int, desc string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestConsumerChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "REPL_CHILD_ADDR="+addr, "REPL_CHILD_DIR="+dir, "REPL_CHILD_WANT="+strconv.Itoa(want), "REPL_CHILD_DESC="+desc)
	out, err := cmd.StdoutPipe()
	must(t, err)
	cmd.Stderr = os.Stderr
	must(t, cmd.Start())
	c := &child{cmd: cmd, lines: make(chan childStatus, 1024), exit: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 4 && f[0] == "status" {
				l, _ := strconv.Atoi(f[2])
				ap, _ := strconv.Atoi(f[3])
				select {
				case c.lines <- childStatus{phase: f[1], local: l, applied: ap}:
				default:
				}
			}
		}
		close(c.lines)
		c.exit <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
	})
	return c
}

func (c *child) waitFor(t *testing.T, ok func(childStatus) bool) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case s, more := <-c.lines:
			if !more {
				t.Fatalf("child exited before the moment to kill it: %v", <-c.exit)
			}
			if ok(s) {
				t.Logf("killing the consumer at %+v", s)
				return
			}
		case <-timeout:
			t.Fatal("child made no progress")
		}
	}
}

func (c *child) kill(t *testing.T) {
	t.Helper()
	must(t, c.cmd.Process.Signal(syscall.SIGKILL))
	for range c.lines {
	}
	<-c.exit
}

func (c *child) waitExit(t *testing.T) childStatus {
	t.Helper()
	var last childStatus
	timeout := time.After(90 * time.Second)
	for {
		select {
		case s, more := <-c.lines:
			if !more {
				if err := <-c.exit; err != nil {
					t.Fatalf("child failed: %v", err)
				}
				t.Logf("consumer done at %+v", last)
				return last
			}
			last = s
		case <-timeout:
			t.Fatal("child did not converge")
		}
	}
}

// TestConsumerChild is the consumer process of TestConsumerKilledMidRefresh;
// without its environment it has nothing to do. It syncs with small batches
// (many commits, so a kill lands mid-refresh), prints its status, and exits
// once it is persisting with the wanted number of entries.
func TestConsumerChild(t *testing.T) {
	addr := os.Getenv("REPL_CHILD_ADDR")
	if addr == "" {
		return
	}
	want, _ := strconv.Atoi(os.Getenv("REPL_CHILD_WANT"))
	st, err := ldapstore.Open(filepath.Join(os.Getenv("REPL_CHILD_DIR"), "ldap.db"), ldapstore.Options{ServerID: 2})
	must(t, err)
	defer st.Close()
	n := &node{sid: 2, store: st}
	c, stop := consume(t, n, 1, "a", addr, func(c *ConsumerConfig) { c.BatchSize = 25 })
	defer stop()
	desc := os.Getenv("REPL_CHILD_DESC")
	for {
		s := c.Status()
		fmt.Printf("status %s %d %d\n", s.Phase, s.LocalEntries, s.Applied)
		if s.Phase == PhasePersist && s.LocalEntries == want {
			e, err := st.Get(context.Background(), person(fmt.Sprintf("k%05d", want-4)).DN)
			if err == nil && e.First("description") == desc {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}
