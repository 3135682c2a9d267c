package replication

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"postern/ldapstore"
)

// Issue 10's sequences, each a deterministic scenario on members that
// replicate over real sockets: every member ends with the same tree entry
// by entry (entryUUID, entryCSN and every attribute).

// mesh is a full mesh of members: each consumes from every other one.
type mesh struct {
	t     *testing.T
	nodes []*node
	links [][]*Consumer // links[to][from]
	stops [][]func()
}

func newMesh(t *testing.T, n int, opts ldapstore.Options) *mesh {
	t.Helper()
	m := &mesh{t: t}
	for i := range n {
		o := opts
		o.ServerID = i + 1
		m.nodes = append(m.nodes, startNodeOpts(t, "", o))
		m.links = append(m.links, make([]*Consumer, n))
		m.stops = append(m.stops, make([]func(), n))
	}
	return m
}

// link starts the consumers of member to (from every other member).
func (m *mesh) link(to int) {
	for from := range m.nodes {
		if from != to && m.stops[to][from] == nil {
			m.links[to][from], m.stops[to][from] = consume(m.t, m.nodes[to], 10*(to+1)+from+1, fmt.Sprintf("sid%d", from+1), m.nodes[from].addr)
		}
	}
}

// unlink stops the consumers of member to.
func (m *mesh) unlink(to int) {
	for from, stop := range m.stops[to] {
		if stop != nil {
			stop()
			m.stops[to][from] = nil
		}
	}
}

func (m *mesh) linkAll() {
	for i := range m.nodes {
		m.link(i)
	}
}

// down stops member i: its consumers and its server.
func (m *mesh) down(i int) {
	m.unlink(i)
	m.nodes[i].stop()
}

// up serves member i's directory again on its address and links it.
func (m *mesh) up(i int) {
	m.nodes[i] = serveNode(m.t, m.nodes[i].dir, m.nodes[i].opts, m.nodes[i].addr)
	m.link(i)
}

func (m *mesh) store(i int) *ldapstore.Store { return m.nodes[i].store }

func (m *mesh) stores() []*ldapstore.Store {
	var out []*ldapstore.Store
	for _, n := range m.nodes {
		out = append(out, n.store)
	}
	return out
}

func mod(attr string, vals ...string) []ldapstore.Modification {
	return []ldapstore.Modification{{Op: ldapstore.ModReplace, Attr: ldapstore.Attribute{Type: attr, Vals: vals}}}
}

func exists(t *testing.T, st *ldapstore.Store, d string) bool {
	t.Helper()
	_, err := st.Get(context.Background(), d)
	if ldapstore.CodeOf(err) == ldapstore.NoSuchObject {
		return false
	}
	must(t, err)
	return true
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	must(t, err)
	defer src.Close()
	dst, err := os.Create(to)
	must(t, err)
	_, err = io.Copy(dst, src)
	must(t, err)
	must(t, dst.Close())
}

// TestRestoredMemberGetsItsOwnChangesBack is issue 10's second fault: b is
// restored from a copy of its ldap.db taken before it added postB, deleted
// pre1 and modified pre2, and writes again at once. It gets its own later
// changes back from its peers (they hold them), no member deletes postB,
// and every tree ends equal.
func TestRestoredMemberGetsItsOwnChangesBack(t *testing.T) {
	ctx := context.Background()
	m := newMesh(t, 3, ldapstore.Options{})
	seedTree(t, m.store(0))
	must(t, m.store(0).Add(ctx, person("pre1"), rootDN))
	must(t, m.store(0).Add(ctx, person("pre2"), rootDN))
	m.linkAll()
	waitEqual(t, 10*time.Second, m.stores()...)

	const b = 1
	m.down(b)
	backup := filepath.Join(t.TempDir(), "ldap.db.copy")
	copyFile(t, filepath.Join(m.nodes[b].dir, "ldap.db"), backup)
	m.up(b)
	must(t, m.store(b).Add(ctx, person("postB"), rootDN))
	must(t, m.store(b).Delete(ctx, person("pre1").DN, rootDN))
	must(t, m.store(b).Modify(ctx, person("pre2").DN, mod("sn", "changed on b"), rootDN))
	waitEqual(t, 10*time.Second, m.stores()...)
	// a supersedes b's last change (pre2): b's own record of it never
	// comes back, only pre2's newer state
	must(t, m.store(0).Modify(ctx, person("pre2").DN, mod("description", "touched by a"), rootDN))
	waitEqual(t, 10*time.Second, m.stores()...)

	m.down(b)
	copyFile(t, backup, filepath.Join(m.nodes[b].dir, "ldap.db"))
	m.up(b)
	// the restored member writes at once: its context CSN moves past
	// the changes it lost
	must(t, m.store(b).Add(ctx, person("afterRestore"), rootDN))
	tree := waitEqual(t, 15*time.Second, m.stores()...)
	for _, s := range m.stores() {
		if !exists(t, s, person("postB").DN) || exists(t, s, person("pre1").DN) || !exists(t, s, person("afterRestore").DN) {
			t.Fatalf("sid %d: postB, afterRestore must exist and pre1 must not:\n%s", s.ServerID(), tree)
		}
		e, err := s.Get(ctx, person("pre2").DN)
		must(t, err)
		if e.First("sn") != "changed on b" {
			t.Fatalf("sid %d: pre2 sn = %q, want b's lost modify", s.ServerID(), e.First("sn"))
		}
	}
	if lost, c := m.nodes[b].provider.Behind(); lost {
		t.Fatalf("b still reports a lost change %s", c)
	}
}

// TestDeleteRightAfterJoin is issue 10's third fault: b copies a's tree
// (a join's full refresh) and deletes x1, written by a, and modifies x2
// before a has ever synced from b. a's first session with b is a present
// phase: the delete reaches a through b's tombstones (delete phase).
func TestDeleteRightAfterJoin(t *testing.T) {
	ctx := context.Background()
	m := newMesh(t, 2, ldapstore.Options{})
	seedTree(t, m.store(0))
	for _, u := range []string{"x1", "x2", "x3"} {
		must(t, m.store(0).Add(ctx, person(u), rootDN))
	}
	m.link(1) // b joins: full copy of a's tree
	waitEqual(t, 10*time.Second, m.stores()...)
	must(t, m.store(1).Delete(ctx, person("x1").DN, rootDN))
	must(t, m.store(1).Modify(ctx, person("x2").DN, mod("sn", "after join"), rootDN))
	m.link(0) // a's first session with b
	waitEqual(t, 10*time.Second, m.stores()...)
	if exists(t, m.store(0), person("x1").DN) {
		t.Fatal("x1, deleted on b right after the join, is still on a")
	}
}

// TestPastRetention is issue 10's fourth fault: b is switched off; a
// deletes e1 and e2 (last written by b) and, more than the retention
// later, prunes their tombstones. b comes back: its full refresh deletes
// them (a's pruning horizon vouches for it), so b's later edit cannot
// resurrect them; entries b holds that a has not seen stay.
func TestPastRetention(t *testing.T) {
	ctx := context.Background()
	var skew atomic.Int64 // the members' clock, stepped by the test
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	m := newMesh(t, 2, ldapstore.Options{Now: clock, TombstoneRetention: 7 * 24 * time.Hour})
	seedTree(t, m.store(0))
	m.linkAll()
	waitEqual(t, 10*time.Second, m.stores()...)
	for _, u := range []string{"e1", "e2", "e3"} {
		must(t, m.store(1).Add(ctx, person(u), rootDN))
	}
	waitEqual(t, 10*time.Second, m.stores()...)

	m.down(1)
	must(t, m.store(0).Delete(ctx, person("e1").DN, rootDN))
	must(t, m.store(0).Delete(ctx, person("e2").DN, rootDN))
	skew.Store(int64(8 * 24 * time.Hour))
	must(t, m.store(0).Add(ctx, person("later"), rootDN)) // a CSN after the step
	n, err := m.store(0).Prune()
	must(t, err)
	if n == 0 {
		t.Fatal("nothing pruned after the clock step")
	}
	if _, kept, _ := m.store(0).Tombstone(ctx, "x"); kept {
		t.Fatal("unexpected tombstone")
	}
	m.up(1)
	waitEqual(t, 10*time.Second, m.stores()...)
	for _, s := range m.stores() {
		if exists(t, s, person("e1").DN) || exists(t, s, person("e2").DN) || !exists(t, s, person("e3").DN) || !exists(t, s, person("later").DN) {
			t.Fatalf("sid %d after b's return:\n%s", s.ServerID(), dump(t, s))
		}
	}
	err = m.store(1).Modify(ctx, person("e1").DN, mod("sn", "resurrect?"), rootDN)
	if ldapstore.CodeOf(err) != ldapstore.NoSuchObject {
		t.Fatalf("modify of e1 on b after its return: %v, want noSuchObject", err)
	}
}

// TestPersistOutlivesTimeout is issue 10's sixth fault: a persist session
// with nothing to send lives on past the consumer's request Timeout (it
// used to end every Timeout with "ldap: connection timed out").
func TestPersistOutlivesTimeout(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, 1, "")
	b := startNode(t, 2, "")
	seedTree(t, a.store)
	c, _ := consume(t, b, 1, "a", a.addr, func(cfg *ConsumerConfig) {
		cfg.Timeout = 300 * time.Millisecond
		cfg.ProbeInterval = 100 * time.Millisecond
	})
	waitEqual(t, 10*time.Second, a.store, b.store)
	time.Sleep(1500 * time.Millisecond) // five timeouts with nothing to replicate
	s := c.Status()
	if !s.Connected || s.Phase != PhasePersist || s.Err != "" || s.Probed.IsZero() {
		t.Fatalf("after 5 timeouts idle: %+v", s)
	}
	must(t, a.store.Add(ctx, person("late"), rootDN))
	waitEqual(t, 10*time.Second, a.store, b.store)
	if s := c.Status(); s.Applied != 4 || !strings.HasPrefix(s.Text, "OK") {
		t.Fatalf("the same session carried on: %+v", s)
	}
}
