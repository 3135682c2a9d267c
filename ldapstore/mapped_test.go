package ldapstore

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rssFileKB reads this process's file-backed resident memory (Linux, the
// appliance's only platform).
func rssFileKB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// TestReleaseMapped: the pages a full read mapped in leave the process's
// resident memory, and every entry reads back the same afterwards.
func TestReleaseMapped(t *testing.T) {
	s := openTest(t, Options{MappedBudget: -1})
	seed(t, s)
	loadPeople(t, s, 20000)
	ctx := context.Background()
	readAll := func() int {
		n := 0
		must(t, s.Search(ctx, &SearchRequest{BaseDN: "ou=people,dc=postern,dc=local", Scope: ScopeOne}, func(e *Entry) error {
			if e.First("uid") == "" || !strings.HasSuffix(e.First("mail"), "@example.com") {
				t.Fatalf("entry %s read back without its attributes", e.DN)
			}
			n++
			return nil
		}))
		return n
	}
	if n := readAll(); n != 20000 {
		t.Fatalf("%d entries, want 20000", n)
	}
	st, err := os.Stat(s.db.Path())
	must(t, err)
	before := rssFileKB(t)
	must(t, s.ReleaseMapped())
	after := rssFileKB(t)
	// the search mapped in most of the file; at least a quarter of it goes
	if drop := before - after; drop < int(st.Size()/1024/4) {
		t.Fatalf("file-backed RSS %d kB -> %d kB after ReleaseMapped, the store file is %d kB", before, after, st.Size()/1024)
	}
	if n := readAll(); n != 20000 {
		t.Fatalf("%d entries after ReleaseMapped, want 20000", n)
	}
	must(t, s.Modify(ctx, "uid=user00001,ou=people,dc=postern,dc=local", []Modification{{Op: ModReplace, Attr: Attribute{Type: "description", Vals: []string{"after"}}}}, admin))
	e, err := s.Get(ctx, "uid=user00001,ou=people,dc=postern,dc=local")
	must(t, err)
	if e.First("description") != "after" {
		t.Fatalf("description %q after a write, want after", e.First("description"))
	}
}

// TestMappedBudget: reads that map more of the file than the budget leave
// the process with its file-backed resident memory back under it, and
// every entry still reads back whole. The budget is what the test binary
// maps of its own files before the store opens, plus 8 MiB for the store.
func TestMappedBudget(t *testing.T) {
	budget := int64(rssFileKB(t))<<10 + 8<<20
	s := openTest(t, Options{MappedBudget: budget, MappedCheck: 10 * time.Millisecond})
	seed(t, s)
	loadPeople(t, s, 20000)
	ctx := context.Background()
	for range 3 {
		n := 0
		must(t, s.Search(ctx, &SearchRequest{BaseDN: "ou=people,dc=postern,dc=local", Scope: ScopeOne}, func(e *Entry) error {
			if e.First("uid") == "" || !strings.HasSuffix(e.First("mail"), "@example.com") {
				t.Fatalf("entry %s read back without its attributes", e.DN)
			}
			n++
			return nil
		}))
		if n != 20000 {
			t.Fatalf("%d entries, want 20000", n)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for int64(rssFileKB(t))<<10 > budget {
		if time.Now().After(deadline) {
			t.Fatalf("file-backed RSS %d kB, budget %d kB, %d releases", rssFileKB(t), budget>>10, s.Stats().MappedReleases)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s.Stats().MappedReleases == 0 {
		t.Fatal("under the budget without a release: the test read too little to exercise it")
	}
}
