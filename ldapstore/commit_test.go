package ldapstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"postern/ldapstore/csn"
)

func TestGroupCommit(t *testing.T) {
	s := openTest(t, Options{})
	seed(t, s)
	ctx := context.Background()
	const writers, each = 32, 20
	before := s.Stats()
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				e := person(fmt.Sprintf("w%02d-%03d", w, i))
				errs <- s.Add(ctx, e, admin)
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	after := s.Stats()
	writes, commits := after.Writes-before.Writes, after.Commits-before.Commits
	if writes != writers*each {
		t.Fatalf("writes %d", writes)
	}
	if commits >= writes {
		t.Fatalf("no group commit: %d commits for %d writes", commits, writes)
	}
	t.Logf("%d writes in %d commits", writes, commits)
	if n, _ := s.Count(ctx); n != 5+writers*each {
		t.Fatalf("count %d", n)
	}
}

// TestBatchIsolation runs refused and accepted writes in one transaction:
// each gets its own result and the refused ones leave no trace.
func TestBatchIsolation(t *testing.T) {
	s := openTest(t, Options{})
	seed(t, s)
	ctx := context.Background()
	release := make(chan struct{})
	// hold the writer so that the following ops queue up into one batch
	go s.submit(ctx, false, func(w *wtx) error { <-release; return nil })
	time.Sleep(20 * time.Millisecond)
	type res struct {
		i   int
		err error
	}
	out := make(chan res, 6)
	ops := []func() error{
		func() error { return s.Add(ctx, person("ok1"), admin) },
		func() error { return s.Add(ctx, person("ok1"), admin) }, // duplicate of the first, same batch
		func() error {
			return s.Modify(ctx, "uid=nobody,ou=people,dc=postern,dc=local", []Modification{{Op: ModAdd, Attr: Attribute{Type: "cn", Vals: []string{"x"}}}}, admin)
		},
		func() error { return s.Add(ctx, person("ok2"), admin) },
		func() error { return s.Delete(ctx, "ou=people,dc=postern,dc=local", admin) },
		func() error { return s.Add(ctx, person("ok3"), admin) },
	}
	for i, f := range ops {
		go func(i int, f func() error) { out <- res{i, f()} }(i, f)
		time.Sleep(2 * time.Millisecond) // keep queue order
	}
	commitsBefore := s.Stats().Commits
	close(release)
	got := map[int]error{}
	for range ops {
		r := <-out
		got[r.i] = r.err
	}
	want := []ResultCode{Success, EntryAlreadyExists, NoSuchObject, Success, NotAllowedOnNonLeaf, Success}
	for i, c := range want {
		if CodeOf(got[i]) != c {
			t.Errorf("op %d: %v, want code %d", i, got[i], c)
		}
	}
	if c := s.Stats().Commits - commitsBefore; c > 2 {
		t.Errorf("%d commits: ops did not share a transaction", c)
	}
	if n, _ := s.Count(ctx); n != 8 {
		t.Fatalf("count %d", n)
	}
	var changes []Change
	must(t, s.ChangesSince(ctx, nil, func(c Change) error { changes = append(changes, c); return nil }))
	if len(changes) != 8 {
		t.Fatalf("changelog has %d records, want 8", len(changes))
	}
}

// TestCSNClockStepsBack steps the store's clock back: entryCSNs keep
// increasing and the changelog stays in CSN order.
func TestCSNClockStepsBack(t *testing.T) {
	var mu sync.Mutex
	clock := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	s := openTest(t, Options{ServerID: 5, Now: now})
	seed(t, s)
	ctx := context.Background()
	var last csn.CSN
	for i := 0; i < 20; i++ {
		mu.Lock()
		if i%5 == 4 {
			clock = clock.Add(-time.Hour)
		} else {
			clock = clock.Add(time.Millisecond)
		}
		mu.Unlock()
		e := person(fmt.Sprintf("c%02d", i))
		must(t, s.Add(ctx, e, admin))
		got, _ := s.Get(ctx, e.DN)
		c, err := csn.Parse(got.First("entryCSN"))
		must(t, err)
		if c.Compare(last) <= 0 || c.SID != 5 {
			t.Fatalf("entry %d CSN %v not after %v", i, c, last)
		}
		last = c
	}
	if s.ContextCSN()[5].Compare(last) != 0 {
		t.Fatalf("context CSN %v, last %v", s.ContextCSN()[5], last)
	}
}

func TestChangelogTombstonesPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dir.db")
	s, err := Open(path, Options{})
	must(t, err)
	seed(t, s)
	ctx := context.Background()
	must(t, s.Add(ctx, person("eve"), admin))
	e, _ := s.Get(ctx, "uid=eve,ou=people,dc=postern,dc=local")
	uuidEve := e.First("entryUUID")
	must(t, s.Modify(ctx, e.DN, []Modification{{Op: ModReplace, Attr: Attribute{Type: "cn", Vals: []string{"Eve"}}}}, admin))
	must(t, s.ModifyDN(ctx, e.DN, "uid=eve2", true, "", admin))
	must(t, s.Delete(ctx, "uid=eve2,ou=people,dc=postern,dc=local", admin))
	ctxCSN := s.ContextCSN()
	must(t, s.Close())

	s, err = Open(path, Options{})
	must(t, err)
	defer s.Close()
	if s.ContextCSN().String() != ctxCSN.String() {
		t.Fatalf("context CSN %v after reopen, want %v", s.ContextCSN(), ctxCSN)
	}
	if n, _ := s.Count(ctx); n != 5 {
		t.Fatalf("count %d after reopen", n)
	}
	var kinds []ChangeKind
	var lastCSN csn.CSN
	must(t, s.ChangesSince(ctx, nil, func(c Change) error {
		if c.CSN.Compare(lastCSN) <= 0 {
			t.Fatalf("changelog out of order")
		}
		lastCSN = c.CSN
		if c.EntryUUID == uuidEve {
			kinds = append(kinds, c.Kind)
		}
		return nil
	}))
	if fmt.Sprint(kinds) != fmt.Sprint([]ChangeKind{ChangeAdd, ChangeModify, ChangeModDN, ChangeDelete}) {
		t.Fatalf("changes of eve: %v", kinds)
	}
	ts, ok, err := s.Tombstone(ctx, uuidEve)
	must(t, err)
	if !ok || ts.DN != "uid=eve2,ou=people,dc=postern,dc=local" || ts.CSN.Compare(lastCSN) != 0 {
		t.Fatalf("tombstone %+v %v", ts, ok)
	}
	// since = everything up to the modify: only the moddn and delete remain
	var since csn.Vector
	n := 0
	must(t, s.ChangesSince(ctx, csn.Vector{}, func(c Change) error {
		n++
		if n == 7 { // seed (5) + add + modify
			since = csn.Vector{c.CSN.SID: c.CSN}
		}
		return nil
	}))
	var rest []ChangeKind
	must(t, s.ChangesSince(ctx, since, func(c Change) error { rest = append(rest, c.Kind); return nil }))
	if fmt.Sprint(rest) != fmt.Sprint([]ChangeKind{ChangeModDN, ChangeDelete}) {
		t.Fatalf("since %v: %v", since, rest)
	}
	// the CSN generator continues after the stored context CSN
	must(t, s.Add(ctx, person("frank"), admin))
	f, _ := s.Get(ctx, "uid=frank,ou=people,dc=postern,dc=local")
	if c, _ := csn.Parse(f.First("entryCSN")); c.Compare(lastCSN) <= 0 {
		t.Fatalf("CSN after reopen %v not after %v", c, lastCSN)
	}
}

// TestChangelogInSameTransaction checks in the file that every entry write
// came with its changelog record and context CSN.
func TestChangelogInSameTransaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dir.db")
	s, err := Open(path, Options{})
	must(t, err)
	seed(t, s)
	must(t, s.Close())
	db, err := bolt.Open(path, 0o600, nil)
	must(t, err)
	defer db.Close()
	must(t, db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bEntries).Stats().KeyN; n != 5 {
			return fmt.Errorf("entries %d", n)
		}
		if n := tx.Bucket(bChangelog).Stats().KeyN; n != 5 {
			return fmt.Errorf("changelog %d", n)
		}
		last, _ := tx.Bucket(bChangelog).Cursor().Last()
		vec, err := decodeVector(tx.Bucket(bMeta).Get(mCtxCSN))
		if err != nil {
			return err
		}
		if string(vec[1].Key()) != string(last) {
			return errors.New("context CSN is not the last changelog CSN")
		}
		return nil
	}))
}

func TestPrune(t *testing.T) {
	var mu sync.Mutex
	clock := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	s := openTest(t, Options{Now: now, TombstoneRetention: time.Hour})
	seed(t, s)
	ctx := context.Background()
	must(t, s.Add(ctx, person("old"), admin))
	old, _ := s.Get(ctx, "uid=old,ou=people,dc=postern,dc=local")
	must(t, s.Delete(ctx, old.DN, admin))
	mu.Lock()
	clock = clock.Add(2 * time.Hour)
	mu.Unlock()
	must(t, s.Add(ctx, person("new"), admin))
	n, err := s.Prune()
	must(t, err)
	if n != 7 {
		t.Fatalf("pruned %d records, want 7", n)
	}
	if _, ok, _ := s.Tombstone(ctx, old.First("entryUUID")); ok {
		t.Fatal("old tombstone kept")
	}
	var left []Change
	must(t, s.ChangesSince(ctx, s.ContextCSN(), func(c Change) error { left = append(left, c); return nil }))
	if len(left) != 0 {
		t.Fatalf("changes newer than the context CSN: %v", left)
	}
	if err := s.ChangesSince(ctx, nil, func(Change) error { return nil }); !errors.Is(err, ErrChangelogTrimmed) {
		t.Fatalf("ChangesSince(nil) after prune: %v", err)
	}
}

func TestNotify(t *testing.T) {
	s := openTest(t, Options{})
	ch, cancel := s.Notify()
	defer cancel()
	seed(t, s)
	select {
	case <-ch:
	case <-time.After(time.Second):
		t.Fatal("no notification")
	}
	cancel()
	if _, ok := <-ch; ok {
		// a pending signal may remain; the next receive must see the close
		if _, ok := <-ch; ok {
			t.Fatal("channel open after cancel")
		}
	}
}

// TestNotifyExcept: a subscriber that leaves out server ID 2 is not woken
// by a commit of nothing but sid-2 changes (a member's replication stream
// applied here), and is woken by a local write; a plain subscriber sees
// both.
func TestNotifyExcept(t *testing.T) {
	ctx := context.Background()
	a := openTest(t, Options{ServerID: 1})
	b := openTest(t, Options{ServerID: 2})
	seed(t, b)
	must(t, b.Add(ctx, person("from-b"), admin))
	except, cancel := a.NotifyExcept(2)
	defer cancel()
	all, cancelAll := a.Notify()
	defer cancelAll()
	got := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		case <-time.After(100 * time.Millisecond):
			return false
		}
	}
	pull(t, b, a)
	if !got(all) {
		t.Fatal("Notify: no signal for the applied sid-2 changes")
	}
	if got(except) {
		t.Fatal("NotifyExcept(2): woken by a commit of sid-2 changes only")
	}
	must(t, a.Add(ctx, person("local"), admin))
	if !got(except) || !got(all) {
		t.Fatal("no signal for a local write")
	}
}

func TestAddBatchAtomic(t *testing.T) {
	s := openTest(t, Options{})
	seed(t, s)
	ctx := context.Background()
	es := []*Entry{person("b1"), person("b2"), person("b1")}
	err := s.AddBatch(ctx, es, admin)
	wantCode(t, err, EntryAlreadyExists)
	if n, _ := s.Count(ctx); n != 5 {
		t.Fatalf("failed batch left %d entries", n)
	}
	es = []*Entry{entry("ou=new,dc=postern,dc=local", "objectClass", "organizationalUnit", "ou", "new"), entry("cn=c,ou=new,dc=postern,dc=local", "objectClass", "person", "cn", "c", "sn", "c")}
	must(t, s.AddBatch(ctx, es, admin))
	if n, _ := s.Count(ctx); n != 7 {
		t.Fatalf("count %d", n)
	}
}

func TestApplyReplicated(t *testing.T) {
	s := openTest(t, Options{ServerID: 1})
	seed(t, s)
	ctx := context.Background()
	const id = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
	e := person("rep")
	e.Set("entryUUID", id)
	e.Set("entryCSN", "20300101000000.000000Z#000000#002#000000")
	e.Set("createTimestamp", "20300101000000Z")
	e.Set("creatorsName", "cn=peer")
	must(t, s.ApplyEntry(ctx, e))
	got, err := s.GetByUUID(ctx, id)
	must(t, err)
	if got.First("entryCSN") != "20300101000000.000000Z#000000#002#000000" || got.First("creatorsName") != "cn=peer" || got.First("createTimestamp") != "20300101000000Z" {
		t.Fatalf("operational values not kept: %+v", got.Attributes)
	}
	if s.ContextCSN()[2].String() != "20300101000000.000000Z#000000#002#000000" {
		t.Fatalf("context CSN %v", s.ContextCSN())
	}
	// older state is refused, newer replaces and may rename
	e.Set("entryCSN", "20290101000000.000000Z#000000#002#000000")
	if err := s.ApplyEntry(ctx, e); !errors.Is(err, ErrStale) {
		t.Fatalf("older apply: %v", err)
	}
	e.Set("entryCSN", "20300101000001.000000Z#000000#002#000000")
	e.DN = "uid=rep2,ou=people,dc=postern,dc=local"
	e.Set("uid", "rep2")
	must(t, s.ApplyEntry(ctx, e))
	got, err = s.Get(ctx, e.DN)
	must(t, err)
	if got.First("entryUUID") != id {
		t.Fatal("renamed entry lost its UUID")
	}
	// a local write after a peer's future CSN still gets a newer CSN
	must(t, s.Modify(ctx, e.DN, []Modification{{Op: ModReplace, Attr: Attribute{Type: "cn", Vals: []string{"x"}}}}, admin))
	got, _ = s.Get(ctx, e.DN)
	if got.First("entryCSN") <= "20300101000001.000000Z#000000#002#000000" {
		t.Fatalf("local CSN %s not after the peer's", got.First("entryCSN"))
	}
	// delete at an older CSN loses; a newer one wins and leaves a tombstone
	old, _ := csn.Parse("20300101000000.500000Z#000000#002#000000")
	if err := s.ApplyDelete(ctx, id, old); !errors.Is(err, ErrStale) {
		t.Fatalf("stale delete: %v", err)
	}
	newer := csn.CSN{Time: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC), SID: 2}
	must(t, s.ApplyDelete(ctx, id, newer))
	if _, err := s.GetByUUID(ctx, id); CodeOf(err) != NoSuchObject {
		t.Fatalf("after delete: %v", err)
	}
	// an add older than the tombstone stays deleted
	if err := s.ApplyEntry(ctx, e); !errors.Is(err, ErrStale) {
		t.Fatalf("add after newer delete: %v", err)
	}
}

// TestFailureAfterWrites makes one op of a batch fail after it wrote: the
// batch is replayed op by op, the failed op leaves nothing, the others
// commit.
func TestFailureAfterWrites(t *testing.T) {
	s := openTest(t, Options{})
	seed(t, s)
	ctx := context.Background()
	release := make(chan struct{})
	go s.submit(ctx, false, func(w *wtx) error { <-release; return nil })
	time.Sleep(20 * time.Millisecond)
	errs := make(chan error, 3)
	go func() { errs <- s.Add(ctx, person("before"), admin) }()
	time.Sleep(2 * time.Millisecond)
	bad := errors.New("boom")
	go func() {
		errs <- s.submit(ctx, false, func(w *wtx) error {
			b := w.buckets()
			w.put(b.dn, []byte("garbage"), []byte("x"))
			return bad
		})
	}()
	time.Sleep(2 * time.Millisecond)
	go func() { errs <- s.Add(ctx, person("after"), admin) }()
	time.Sleep(2 * time.Millisecond)
	close(release)
	var got []error
	for range 3 {
		got = append(got, <-errs)
	}
	nbad := 0
	for _, err := range got {
		if errors.Is(err, bad) {
			nbad++
		} else {
			must(t, err)
		}
	}
	if nbad != 1 {
		t.Fatalf("results %v", got)
	}
	must(t, s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bDN).Get([]byte("garbage")) != nil {
			return errors.New("failed op's write committed")
		}
		return nil
	}))
	for _, uid := range []string{"before", "after"} {
		if _, err := s.Get(ctx, "uid="+uid+",ou=people,dc=postern,dc=local"); err != nil {
			t.Fatal(err)
		}
	}
}
