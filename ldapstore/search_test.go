package ldapstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

func loadPeople(t testing.TB, s *Store, n int) {
	t.Helper()
	es := make([]*Entry, n)
	for i := range es {
		es[i] = person(fmt.Sprintf("user%05d", i))
		if i%10 == 0 {
			es[i].Set("objectClass", "inetOrgPerson", "extensibleObject")
			es[i].Set("description", "tenth")
		}
	}
	must(t, s.AddBatch(context.Background(), es, admin))
}

func search(t testing.TB, s *Store, base string, scope Scope, f string) []string {
	t.Helper()
	var out []string
	req := &SearchRequest{BaseDN: base, Scope: scope}
	if f != "" {
		req.Filter = mustFilter(t, f)
	}
	must(t, s.Search(context.Background(), req, func(e *Entry) error {
		out = append(out, e.DN)
		return nil
	}))
	sort.Strings(out)
	return out
}

func TestSearchPlans(t *testing.T) {
	s := openTest(t, Options{})
	seed(t, s)
	loadPeople(t, s, 500)
	suffix := "dc=postern,dc=local"
	for _, tc := range []struct {
		name     string
		base     string
		scope    Scope
		filter   string
		want     int
		maxExam  uint64 // entries decoded at most
		wantScan bool
	}{
		{"uid eq", suffix, ScopeSub, "(uid=user00042)", 1, 1, false},
		{"mail eq case", suffix, ScopeSub, "(mail=USER00042@example.com)", 1, 1, false},
		{"and: index picks uid", suffix, ScopeSub, "(&(objectClass=inetOrgPerson)(uid=user00042))", 1, 1, false},
		{"and with unindexed", suffix, ScopeSub, "(&(uid=user00042)(description=*))", 0, 1, false},
		{"or of indexed", suffix, ScopeSub, "(|(uid=user00001)(mail=user00002@example.com)(cn=user user00003))", 3, 3, false},
		{"or with unindexed scans", suffix, ScopeSub, "(|(uid=user00001)(description=tenth))", 51, 600, true},
		{"not scans", suffix, ScopeSub, "(!(uid=user00001))", 504, 600, true},
		{"presence scans", suffix, ScopeSub, "(objectClass=*)", 505, 600, true},
		{"entryUUID", suffix, ScopeSub, "", 0, 0, false}, // filled below
		{"index outside scope", "ou=domains," + suffix, ScopeSub, "(uid=user00042)", 0, 1, false},
		{"one level", "ou=people," + suffix, ScopeOne, "(uid=user0000*)", 10, 600, true},
		{"base", "uid=user00007,ou=people," + suffix, ScopeBase, "(uid=user00007)", 1, 1, false},
		{"base mismatch", "uid=user00007,ou=people," + suffix, ScopeBase, "(uid=other)", 0, 1, false},
		{"undefined attr", suffix, ScopeSub, "(shoeSize=9)", 0, 0, false},
		// An inetOrgPerson is a person and an organizationalPerson too, in
		// the index and in the matcher (RFC 4512 §2.4.1).
		{"superclass from index", suffix, ScopeSub, "(objectClass=person)", 500, 500, false},
		{"superclass and uid", suffix, ScopeSub, "(&(objectClass=organizationalPerson)(uid=user00042))", 1, 1, false},
		{"superclass in matcher", suffix, ScopeSub, "(&(!(uid=user00001))(objectClass=person))", 499, 500, false},
		{"superclass or scan", suffix, ScopeSub, "(|(objectClass=person)(description=nothing))", 500, 600, true},
		{"empty base means suffix", "", ScopeSub, "(uid=user00042)", 1, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.filter
			if tc.name == "entryUUID" {
				e, _ := s.Get(context.Background(), "uid=user00009,ou=people,"+suffix)
				f = "(entryUUID=" + e.First("entryUUID") + ")"
				tc.want, tc.maxExam = 1, 1
			}
			before := s.Stats()
			got := search(t, s, tc.base, tc.scope, f)
			after := s.Stats()
			if len(got) != tc.want {
				t.Fatalf("got %d entries, want %d", len(got), tc.want)
			}
			if ex := after.EntriesExamined - before.EntriesExamined; ex > tc.maxExam {
				t.Fatalf("examined %d entries, want at most %d", ex, tc.maxExam)
			}
			if scanned := after.ScopeScans > before.ScopeScans; scanned != tc.wantScan {
				t.Fatalf("scope scan = %v, want %v", scanned, tc.wantScan)
			}
		})
	}
}

func TestSearchLimitsAndErrors(t *testing.T) {
	s := openTest(t, Options{})
	seed(t, s)
	loadPeople(t, s, 300)
	ctx := context.Background()
	n := 0
	err := s.Search(ctx, &SearchRequest{BaseDN: "dc=postern,dc=local", Scope: ScopeSub, SizeLimit: 7}, func(*Entry) error { n++; return nil })
	wantCode(t, err, SizeLimitExceeded)
	if n != 7 {
		t.Fatalf("got %d entries before sizeLimitExceeded", n)
	}
	// exactly SizeLimit matches is success
	n = 0
	must(t, s.Search(ctx, &SearchRequest{BaseDN: "dc=postern,dc=local", Scope: ScopeSub, Filter: mustFilter(t, "(uid=user00001)"), SizeLimit: 1}, func(*Entry) error { n++; return nil }))

	tctx, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	err = s.Search(tctx, &SearchRequest{BaseDN: "dc=postern,dc=local", Scope: ScopeSub}, func(*Entry) error {
		time.Sleep(time.Millisecond)
		return nil
	})
	wantCode(t, err, TimeLimitExceeded)

	err = s.Search(ctx, &SearchRequest{BaseDN: "ou=x,ou=people,dc=postern,dc=local", Scope: ScopeSub}, func(*Entry) error { return nil })
	wantCode(t, err, NoSuchObject)
	if err.(*Error).MatchedDN != "ou=people,dc=postern,dc=local" {
		t.Fatalf("matched %q", err.(*Error).MatchedDN)
	}
	err = s.Search(ctx, &SearchRequest{BaseDN: "dc=example,dc=com", Scope: ScopeSub}, func(*Entry) error { return nil })
	wantCode(t, err, NoSuchObject)

	// a search larger than one chunk sees every entry once
	seen := map[string]bool{}
	must(t, s.Search(ctx, &SearchRequest{BaseDN: "ou=people,dc=postern,dc=local", Scope: ScopeOne}, func(e *Entry) error {
		if seen[e.DN] {
			t.Fatalf("duplicate %s", e.DN)
		}
		seen[e.DN] = true
		return nil
	}))
	if len(seen) != 300 {
		t.Fatalf("one-level saw %d", len(seen))
	}
}

// TestLongIndexedValues indexes values longer than maxIndexValue by hash;
// lookups still find exactly the right entries.
func TestLongIndexedValues(t *testing.T) {
	s := openTest(t, Options{})
	seed(t, s)
	ctx := context.Background()
	long := func(c byte) string { return strings.Repeat(string(c), 300) }
	a := person("longa")
	a.Set("cn", "User longa", long('a'))
	b := person("longb")
	b.Set("cn", "User longb", long('a')+"b")
	must(t, s.Add(ctx, a, admin))
	must(t, s.Add(ctx, b, admin))
	if got := search(t, s, "dc=postern,dc=local", ScopeSub, "(cn="+strings.ToUpper(long('a'))+")"); len(got) != 1 || got[0] != a.DN {
		t.Fatalf("got %v", got)
	}
	must(t, s.Modify(ctx, a.DN, []Modification{{Op: ModDelete, Attr: Attribute{Type: "cn", Vals: []string{long('a')}}}}, admin))
	if got := search(t, s, "dc=postern,dc=local", ScopeSub, "(cn="+long('a')+")"); len(got) != 0 {
		t.Fatalf("stale index: %v", got)
	}
}

// TestWriteContext: a write whose context ends while it waits in the queue
// is not applied.
func TestWriteContext(t *testing.T) {
	s := openTest(t, Options{})
	seed(t, s)
	release := make(chan struct{})
	go s.submit(context.Background(), false, func(w *wtx) error { <-release; return nil })
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err := s.Add(ctx, person("late"), admin)
	wantCode(t, err, TimeLimitExceeded)
	close(release)
	// a later write is committed after the canceled one would have been
	must(t, s.Add(context.Background(), person("later"), admin))
	_, err = s.Get(context.Background(), "uid=late,ou=people,dc=postern,dc=local")
	wantCode(t, err, NoSuchObject)
}

// TestSearchBaseAfterDelete: a search base resolved before (and kept by the
// base cache) is looked up again in every search, so a deleted base is
// noSuchObject and a re-added one is found.
func TestSearchBaseAfterDelete(t *testing.T) {
	s := openTest(t, Options{})
	seed(t, s)
	ctx := context.Background()
	base := "ou=tmp,dc=postern,dc=local"
	must(t, s.Add(ctx, entry(base, "objectClass", "organizationalUnit", "ou", "tmp"), admin))
	if got := search(t, s, "OU=Tmp, dc=postern,dc=local", ScopeBase, ""); len(got) != 1 {
		t.Fatalf("before delete: %v", got)
	}
	must(t, s.Delete(ctx, base, admin))
	err := s.Search(ctx, &SearchRequest{BaseDN: "OU=Tmp, dc=postern,dc=local", Scope: ScopeBase}, func(*Entry) error { return nil })
	wantCode(t, err, NoSuchObject)
	must(t, s.Add(ctx, entry(base, "objectClass", "organizationalUnit", "ou", "tmp", "description", "again"), admin))
	if got := search(t, s, "OU=Tmp, dc=postern,dc=local", ScopeSub, "(description=again)"); len(got) != 1 {
		t.Fatalf("after re-add: %v", got)
	}
}

// countingReserver is a Reserver that records what is held.
type countingReserver struct {
	held, peak, calls int64
}

func (r *countingReserver) Reserve(ctx context.Context, n int64) error {
	r.held += n
	r.calls++
	r.peak = max(r.peak, r.held)
	return nil
}

func (r *countingReserver) Release(n int64) {
	r.held -= n
	if r.held < 0 {
		panic("released more than reserved")
	}
}

// TestSearchBuffer (issue 9, item 10): a search holds at most about one
// chunk of searchChunkBytes of entries it has not handed to fn, reserved
// through SearchRequest.Buffer, and gives all of it back however it ends.
func TestSearchBuffer(t *testing.T) {
	s := openTest(t, Options{})
	seed(t, s)
	ctx := context.Background()
	big := strings.Repeat("x", 20<<10)
	for i := range 100 {
		p := person(fmt.Sprintf("u%03d", i))
		p.Set("jpegPhoto", big)
		must(t, s.Add(ctx, p, admin))
	}
	huge := person("huge")
	huge.Set("jpegPhoto", strings.Repeat("y", 2*searchChunkBytes))
	must(t, s.Add(ctx, huge, admin))
	for _, f := range []string{"(objectClass=inetOrgPerson)", "(|(uid=u0*)(uid=huge))", "(jpegPhoto=*)"} {
		r := &countingReserver{}
		n := 0
		var peakUnsent int64
		err := s.Search(ctx, &SearchRequest{BaseDN: "dc=postern,dc=local", Scope: ScopeSub, Filter: mustFilter(t, f), Buffer: r}, func(e *Entry) error {
			n++
			peakUnsent = max(peakUnsent, r.held)
			return nil
		})
		must(t, err)
		if r.held != 0 {
			t.Errorf("%s: %d octets still reserved after the search", f, r.held)
		}
		// one chunk, or the one entry larger than a chunk
		if r.peak > 2*searchChunkBytes+8<<10 {
			t.Errorf("%s: peak reservation %d", f, r.peak)
		}
		if n == 0 || r.calls < 2 {
			t.Errorf("%s: %d entries in %d chunks", f, n, r.calls)
		}
	}
	// an fn error and a size limit give everything back too
	r := &countingReserver{}
	stop := errors.New("stop")
	err := s.Search(ctx, &SearchRequest{BaseDN: "dc=postern,dc=local", Scope: ScopeSub, Buffer: r}, func(*Entry) error { return stop })
	if err != stop || r.held != 0 {
		t.Fatalf("fn error: %v, %d held", err, r.held)
	}
	err = s.Search(ctx, &SearchRequest{BaseDN: "dc=postern,dc=local", Scope: ScopeSub, SizeLimit: 5, Buffer: r}, func(*Entry) error { return nil })
	if CodeOf(err) != SizeLimitExceeded || r.held != 0 {
		t.Fatalf("size limit: %v, %d held", err, r.held)
	}
	// the base entry larger than a chunk
	err = s.Search(ctx, &SearchRequest{BaseDN: huge.DN, Scope: ScopeBase, Buffer: r}, func(*Entry) error { return nil })
	if err != nil || r.held != 0 {
		t.Fatalf("base: %v, %d held", err, r.held)
	}
}

// TestSearchSubtreeParentsFirst: a subtree search hands out every entry
// after its parent, across chunks and with names that sort around each
// other (a sibling whose RDN extends another's, escaped characters, a
// rename that moves a subtree): a join's copy (cluster dump) streams the
// tree in this order without sorting it.
func TestSearchSubtreeParentsFirst(t *testing.T) {
	s := openTest(t, Options{})
	seed(t, s)
	ctx := context.Background()
	suffix := "dc=postern,dc=local"
	var es []*Entry
	for _, ou := range []string{"a", "a-b", "a\\,b", "A0", "z"} {
		es = append(es, entry("ou="+ou+",ou=domains,"+suffix, "objectClass", "organizationalUnit", "ou", strings.ReplaceAll(ou, "\\", "")))
		for i := range 150 {
			uid := fmt.Sprintf("u%03d", i)
			es = append(es, entry("uid="+uid+",ou="+ou+",ou=domains,"+suffix, "objectClass", "inetOrgPerson", "uid", uid, "cn", uid, "sn", uid))
		}
	}
	must(t, s.AddBatch(ctx, es, admin))
	// a subtree added later under an entry that sorts first
	must(t, s.Add(ctx, entry("ou=late,uid=u000,ou=a,ou=domains,"+suffix, "objectClass", "organizationalUnit", "ou", "late"), admin))
	must(t, s.ModifyDN(ctx, "ou=a-b,ou=domains,"+suffix, "ou=0first", true, "", admin))
	seen := map[string]bool{}
	n := 0
	must(t, s.Search(ctx, &SearchRequest{BaseDN: suffix, Scope: ScopeSub}, func(e *Entry) error {
		key := strings.ToLower(e.DN)
		if key != suffix {
			i := 0
			for i < len(key) && key[i] != ',' {
				if key[i] == '\\' {
					i++
				}
				i++
			}
			parent := key[i+1:]
			if !seen[parent] {
				return fmt.Errorf("%s before its parent %s", e.DN, parent)
			}
		}
		seen[key] = true
		n++
		return nil
	}))
	if want := 5 + len(es) + 1; n != want {
		t.Fatalf("%d entries, want %d", n, want)
	}
}

// TestSearchLongScan: an unindexed search calls LongScan once, after
// LongScanEntries candidates, even when it returns nothing; an indexed one
// that examines a few entries never calls it.
func TestSearchLongScan(t *testing.T) {
	s := openTest(t, Options{})
	seed(t, s)
	loadPeople(t, s, 3*LongScanEntries)
	for _, tc := range []struct {
		filter string
		calls  int
	}{
		{"(description=nobody has this)", 1}, // unindexed, matches nothing
		{"(description=tenth)", 1},           // unindexed, a few matches
		{"(uid=user00042)", 0},               // indexed
	} {
		calls := 0
		req := &SearchRequest{BaseDN: "dc=postern,dc=local", Scope: ScopeSub, Filter: mustFilter(t, tc.filter), LongScan: func() { calls++ }}
		must(t, s.Search(context.Background(), req, func(*Entry) error { return nil }))
		if calls != tc.calls {
			t.Errorf("%s: LongScan called %d times, want %d", tc.filter, calls, tc.calls)
		}
	}
}
