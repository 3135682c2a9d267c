package replication

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"postern/ldapstore"
)

// TestMeshUnderFaults: three members in a full mesh (each consumes from
// the other two) through fault-injecting proxies that cut and restore links
// at random, while all three make bounded random concurrent adds, modifies,
// renames and deletes, plus the same DNs added on all three at once and
// adds below a parent deleted elsewhere. Afterwards (links restored) the
// three trees are equal entry by entry, entryCSN included; no deleted entry
// came back; every concurrent add is accounted for (one winner, the others
// visible conflict entries); every orphan is in lost+found.
func TestMeshUnderFaults(t *testing.T) {
	ctx := context.Background()
	const members = 3
	nodes := make([]*node, members)
	for i := range nodes {
		nodes[i] = startNode(t, i+1, "")
	}
	seedTree(t, nodes[0].store)
	var proxies []*faultProxy
	for to := range nodes {
		for from := range nodes {
			if from == to {
				continue
			}
			p := newProxy(t, nodes[from].addr)
			proxies = append(proxies, p)
			consume(t, nodes[to], 10*(to+1)+from+1, fmt.Sprintf("sid%d", from+1), p.addr())
		}
	}
	stores := []*ldapstore.Store{nodes[0].store, nodes[1].store, nodes[2].store}
	// one container per worker: its worker renames it while the others
	// add below the name they know (issue 10: a rename of a parent races
	// an add below its old DN)
	for w := range members {
		must(t, nodes[0].store.Add(ctx, entry(fmt.Sprintf("ou=team%d,%s", w, suffix), "objectClass", "organizationalUnit", "ou", fmt.Sprintf("team%d", w)), rootDN))
	}
	waitEqual(t, 20*time.Second, stores...)

	// chaos: cut and restore random links until the writers are done
	stopChaos := make(chan struct{})
	var chaos sync.WaitGroup
	var cuts atomic.Int64
	chaos.Add(1)
	go func() {
		defer chaos.Done()
		rng := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-stopChaos:
				return
			case <-time.After(time.Duration(20+rng.IntN(120)) * time.Millisecond):
			}
			p := proxies[rng.IntN(len(proxies))]
			down := rng.IntN(2) == 0
			if down {
				cuts.Add(1)
			}
			p.setDown(down)
		}
	}()

	var (
		mu      sync.Mutex
		deleted = map[string]string{} // entryUUID → DN when deleted
		dupAdds = map[string]int{}    // uid → successful adds
		orphans []string              // uids added below a parent deleted elsewhere
	)
	const rounds = 10
	barrier := make([]sync.WaitGroup, rounds)
	for i := range barrier {
		barrier[i].Add(members)
	}
	var workers sync.WaitGroup
	for w := range nodes {
		workers.Add(1)
		go func() {
			defer workers.Done()
			st := nodes[w].store
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			var mine []string // DNs of entries this worker made (may be gone)
			team := fmt.Sprintf("ou=team%d,%s", w, suffix)
			renames := 0
			for round := range rounds {
				for range 25 {
					time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
					if rng.IntN(8) == 0 {
						if rng.IntN(2) == 0 {
							// rename this worker's container, children and all
							renames++
							if st.ModifyDN(ctx, team, fmt.Sprintf("ou=team%d-%d", w, renames), true, "", rootDN) == nil {
								team = fmt.Sprintf("ou=team%d-%d,%s", w, renames, suffix)
							}
						} else {
							// add below another worker's container by the name first known
							other := (w + 1 + rng.IntN(members-1)) % members
							uid := fmt.Sprintf("in%d-%d-%d", other, w, rng.IntN(100000))
							st.Add(ctx, entry("uid="+uid+fmt.Sprintf(",ou=team%d,%s", other, suffix), "objectClass", "inetOrgPerson", "uid", uid, "cn", uid, "sn", uid), rootDN)
						}
						continue
					}
					switch op := rng.IntN(10); {
					case op < 4 || len(mine) == 0:
						uid := fmt.Sprintf("r%d-%d", w, len(mine))
						e := person(uid)
						if st.Add(ctx, e, rootDN) == nil {
							mine = append(mine, e.DN)
						}
					case op < 7:
						d := mine[rng.IntN(len(mine))]
						st.Modify(ctx, d, []ldapstore.Modification{{Op: ldapstore.ModReplace,
							Attr: ldapstore.Attribute{Type: "description", Vals: []string{fmt.Sprintf("w%d %d", w, rng.IntN(1000))}}}}, rootDN)
					case op < 8:
						// modify an entry another worker made (concurrent modifies)
						other := (w + 1 + rng.IntN(members-1)) % members
						d := fmt.Sprintf("uid=r%d-%d,ou=people,%s", other, rng.IntN(5), suffix)
						st.Modify(ctx, d, []ldapstore.Modification{{Op: ldapstore.ModReplace,
							Attr: ldapstore.Attribute{Type: "sn", Vals: []string{fmt.Sprintf("by %d", w)}}}}, rootDN)
					case op < 9:
						i := rng.IntN(len(mine))
						uid := fmt.Sprintf("r%d-%dx%d", w, i, rng.IntN(1000))
						if st.ModifyDN(ctx, mine[i], "uid="+uid, false, "", rootDN) == nil {
							mine[i] = fmt.Sprintf("uid=%s,ou=people,%s", uid, suffix)
						}
					default:
						i := rng.IntN(len(mine))
						if e, err := st.Get(ctx, mine[i]); err == nil && st.Delete(ctx, mine[i], rootDN) == nil {
							mu.Lock()
							deleted[e.First("entryUUID")] = e.DN
							mu.Unlock()
						}
					}
				}
				// the same DN added on every member at once
				uid := fmt.Sprintf("dup%d", round)
				barrier[round].Done()
				barrier[round].Wait()
				if st.Add(ctx, person(uid), rootDN) == nil {
					mu.Lock()
					dupAdds[uid]++
					mu.Unlock()
				}
			}
		}()
	}
	workers.Wait()

	// an add below a parent that another member deletes meanwhile
	for i := range 2 {
		parent := fmt.Sprintf("ou=proj%d,%s", i, suffix)
		must(t, nodes[0].store.Add(ctx, entry(parent, "objectClass", "organizationalUnit", "ou", fmt.Sprintf("proj%d", i)), rootDN))
		waitEqual(t, 20*time.Second, stores...)
		for _, p := range proxies {
			p.setDown(true)
		}
		uid := fmt.Sprintf("orphan%d", i)
		must(t, nodes[1].store.Add(ctx, entry("uid="+uid+","+parent, "objectClass", "inetOrgPerson", "uid", uid, "cn", uid, "sn", uid), rootDN))
		e, err := nodes[2].store.Get(ctx, parent)
		must(t, err)
		must(t, nodes[2].store.Delete(ctx, parent, rootDN))
		deleted[e.First("entryUUID")] = parent
		orphans = append(orphans, uid)
		for _, p := range proxies {
			p.setDown(false)
		}
	}
	close(stopChaos)
	chaos.Wait()
	for _, p := range proxies {
		p.setDown(false)
	}
	tree := waitEqual(t, 60*time.Second, stores...)
	t.Logf("converged: %d entries, %d link cuts, %d deletes, concurrent adds %v", lineCount(tree), cuts.Load(), len(deleted), dupAdds)

	for id, d := range deleted {
		for i, st := range stores {
			if e, err := st.GetByUUID(ctx, id); err == nil {
				t.Errorf("member %d: deleted %s (%s) resurrected as %s", i+1, id, d, e.DN)
			}
		}
	}
	count := func(filter string) []*ldapstore.Entry {
		var out []*ldapstore.Entry
		for _, line := range strings.Split(tree, "\n") {
			if strings.Contains(line, " "+filter+" ") || strings.HasSuffix(line, " "+filter) {
				out = append(out, &ldapstore.Entry{DN: line})
			}
		}
		return out
	}
	for uid, n := range dupAdds {
		got := count("uid=" + uid)
		conflicts := 0
		for _, e := range got {
			if strings.Contains(e.DN, "posternreplconflict=") {
				conflicts++
			}
		}
		if len(got) != n || conflicts != n-1 {
			t.Errorf("%s added %d times: %d entries, %d marked as conflicts; want %d and %d", uid, n, len(got), conflicts, n, n-1)
		}
	}
	for _, uid := range orphans {
		got := count("uid=" + uid)
		if len(got) != 1 || !strings.Contains(got[0].DN, ",ou=lost\\+found,") {
			t.Errorf("orphan %s: %v, want one entry in lost+found", uid, got)
		}
	}
	for _, st := range stores {
		n := 0
		err := st.Search(ctx, &ldapstore.SearchRequest{BaseDN: suffix, Scope: ldapstore.ScopeSub,
			Filter: mustParseFilter(t, "(uid=in*)")}, func(e *ldapstore.Entry) error {
			if strings.Contains(strings.ToLower(e.DN), "lost\\+found") || e.First("posternReplConflict") != "" {
				t.Errorf("sid %d: an add below a renamed container became a conflict: %s", st.ServerID(), e.DN)
			}
			n++
			return nil
		})
		must(t, err)
		if st == stores[0] {
			t.Logf("%d entries added below other workers' containers survived their renames", n)
		}
	}

	// a fourth member joins (a full copy from the first) and at once
	// deletes entries the others wrote, before anyone syncs from it
	d := startNode(t, members+1, "")
	for from := range nodes {
		consume(t, d, 90+from, fmt.Sprintf("sid%d", from+1), nodes[from].addr)
	}
	waitEqual(t, 30*time.Second, append(stores, d.store)...)
	var gone []string
	err := d.store.Search(ctx, &ldapstore.SearchRequest{BaseDN: "ou=people," + suffix, Scope: ldapstore.ScopeOne,
		Filter: mustParseFilter(t, "(uid=r*)")}, func(e *ldapstore.Entry) error {
		if len(gone) < 5 {
			gone = append(gone, e.DN)
		}
		return nil
	})
	must(t, err)
	for _, dn := range gone {
		must(t, d.store.Delete(ctx, dn, rootDN))
	}
	for to := range nodes {
		consume(t, nodes[to], 80+to, "sid4", d.addr)
	}
	waitEqual(t, 30*time.Second, append(stores, d.store)...)
	for _, dn := range gone {
		for _, st := range stores {
			if _, err := st.Get(ctx, dn); ldapstore.CodeOf(err) != ldapstore.NoSuchObject {
				t.Errorf("sid %d: %s, deleted right after the join, is still there: %v", st.ServerID(), dn, err)
			}
		}
	}
}
