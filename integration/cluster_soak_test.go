package integration

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestClusterSoak runs a three-member cluster of processes through random
// writes (adds, modifies, deletes, renames of parents with children)
// against random members, while members are killed with SIGKILL, frozen
// with SIGSTOP, and one is restored from an older copy of its ldap.db.
// Every member ends with the same tree, and status was never wrong: no
// row ever said "diverged", a killed member's row turned from OK within
// seconds, and at the end every row is OK. POSTERN_SOAK sets the duration
// (default 25s; the soak ran 10m), POSTERN_SOAK_SEED the seed.
func TestClusterSoak(t *testing.T) {
	dur := 25 * time.Second
	if v := os.Getenv("POSTERN_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("POSTERN_SOAK: %v", err)
		}
		dur = d
	}
	f := newClusterFixture(t)
	xs := f.formCluster("127.0.0.25", "127.0.0.26", "127.0.0.27")
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("POSTERN_SOAK_SEED"); v != "" {
		if _, err := fmt.Sscan(v, &seed); err != nil {
			t.Fatalf("POSTERN_SOAK_SEED: %v", err)
		}
	}
	t.Logf("seed %d (POSTERN_SOAK_SEED repeats the sequence of operations)", seed)
	rng := rand.New(rand.NewPCG(seed, 10))

	for i := range 3 {
		xs[0].ldapModify(t, fmt.Sprintf("dn: ou=grp%d,%s\nchangetype: add\nobjectClass: organizationalUnit\nou: grp%d\n", i, suffix, i))
	}
	waitEqualTrees(t, 20*time.Second, xs...)

	// status watcher: no row may ever say diverged
	var wmu sync.Mutex
	var wrong []string
	stopWatch := make(chan struct{})
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(700 * time.Millisecond):
			}
			for _, x := range xs {
				out, err := x.cli("cluster", "status", "--json")
				if err != nil {
					continue // stopped or frozen
				}
				if strings.Contains(out, `"state": "diverged"`) {
					wmu.Lock()
					wrong = append(wrong, x.ip+": "+out)
					wmu.Unlock()
				}
			}
		}
	}()

	down := map[int]bool{}
	groups := []string{"grp0", "grp1", "grp2"} // current names, as last renamed
	var counts = map[string]int{}
	restored := false
	backup := ""
	deadline := time.Now().Add(dur)
	for n := 0; time.Now().Before(deadline) && n < 5000; n++ {
		i := rng.IntN(len(xs))
		x := xs[i]
		switch op := rng.IntN(100); {
		case op < 3 && len(down) == 0:
			// kill -9, write elsewhere, check the row turns, restart
			x.kill9()
			down[i] = true
			counts["kill"]++
			other := xs[(i+1)%3]
			eventually(t, 15*time.Second, "killed member shown down", func() string {
				status, state := other.memberRow(t, x.ip)
				if state == "ok" {
					return status
				}
				return ""
			})
			time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
			x.restart()
			delete(down, i)
		case op < 6 && len(down) == 0:
			x.signal(t, syscall.SIGSTOP)
			counts["freeze"]++
			time.Sleep(time.Duration(300+rng.IntN(1500)) * time.Millisecond)
			x.signal(t, syscall.SIGCONT)
		case op < 8 && !restored && len(down) == 0:
			if backup == "" {
				x = xs[1]
				x.stop()
				backup = filepath.Join(t.TempDir(), "ldap.db")
				copyTo(t, filepath.Join(x.data, "ldap.db"), backup)
				x.restart()
				counts["backup"]++
			} else if counts["write"] > 50 {
				x = xs[1]
				x.stop()
				copyTo(t, backup, filepath.Join(x.data, "ldap.db"))
				x.restart()
				restored = true
				counts["restore"]++
			}
		case op < 14:
			g := rng.IntN(len(groups))
			name := fmt.Sprintf("grp%d-%d", g, n)
			if soakModify(x, fmt.Sprintf("dn: ou=%s,%s\nchangetype: modrdn\nnewrdn: ou=%s\ndeleteoldrdn: 1\n", groups[g], suffix, name)) {
				groups[g] = name
				counts["rename parent"]++
			}
		default:
			g := groups[rng.IntN(len(groups))]
			uid := fmt.Sprintf("s%d", rng.IntN(60))
			var ldif string
			switch rng.IntN(4) {
			case 0, 1:
				ldif = fmt.Sprintf("dn: uid=%s,ou=%s,%s\nchangetype: add\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: v%d\n", uid, g, suffix, uid, uid, n)
			case 2:
				ldif = fmt.Sprintf("dn: uid=%s,ou=%s,%s\nchangetype: modify\nreplace: sn\nsn: v%d\n", uid, g, suffix, n)
			default:
				ldif = fmt.Sprintf("dn: uid=%s,ou=%s,%s\nchangetype: delete\n", uid, g, suffix)
			}
			if soakModify(x, ldif) {
				counts["write"]++
			}
		}
	}
	close(stopWatch)
	watch.Wait()
	tree := waitEqualTrees(t, 60*time.Second, xs...)
	for _, x := range xs {
		x.waitAllOK(t, 3)
	}
	t.Logf("soak of %s: %v; converged on %d entries", dur, counts, strings.Count(tree, "\n")+1)
	out, err := xs[0].cli("cluster", "compare", "--attrs")
	if err != nil {
		t.Fatalf("cluster compare --attrs after the soak: %v\n%s", err, out)
	}
	t.Logf("cluster compare --attrs: %s", lastLine(out))
	if len(wrong) > 0 {
		t.Fatalf("status said diverged %d times, first:\n%s", len(wrong), wrong[0])
	}
}

// soakModify applies ldif on x and reports whether it succeeded (a write
// that names a gone entry or lands on a refusing member simply fails).
func soakModify(x *appliance, ldif string) bool {
	_, err := tool(x.t, nil, ldif, "ldapmodify", "-x", "-H", x.ldapURL(), "-D", adminDN, "-w", adminPassword, "-o", "nettimeout=5")
	return err == nil
}
