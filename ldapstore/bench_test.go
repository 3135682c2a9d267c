package ldapstore

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchStore loads n people in chunks of 5000 through AddBatch.
func benchStore(b *testing.B, n int) *Store {
	b.Helper()
	s := openTest(b, Options{})
	seed(b, s)
	ctx := context.Background()
	for start := 0; start < n; start += 5000 {
		es := make([]*Entry, 0, 5000)
		for i := start; i < min(n, start+5000); i++ {
			es = append(es, person(fmt.Sprintf("user%06d", i)))
		}
		must(b, s.AddBatch(ctx, es, admin))
	}
	return s
}

// BenchmarkSearchEqualityUID is the store side of the ldapsearch
// "(uid=userNNNNNN)" benchmark against slapd, at 1, 8 and 32 clients.
func BenchmarkSearchEqualityUID(b *testing.B) {
	const n = 20000
	s := benchStore(b, n)
	ctx := context.Background()
	for _, clients := range []int{1, 8, 32} {
		b.Run("clients="+strconv.Itoa(clients), func(b *testing.B) {
			var seq atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			runClients(b, clients, func() {
				{
					i := seq.Add(7919) % n
					f := mustFilter(b, "(uid=user"+fmt.Sprintf("%06d", i)+")")
					found := 0
					err := s.Search(ctx, &SearchRequest{BaseDN: "dc=postern,dc=local", Scope: ScopeSub, Filter: f}, func(*Entry) error {
						found++
						return nil
					})
					if err != nil || found != 1 {
						b.Fatalf("found %d, %v", found, err)
					}
				}
			})
		})
	}
}

// BenchmarkModifyParallel replaces one attribute of random entries from
// many goroutines; group commit lets them share fsyncs.
func BenchmarkModifyParallel(b *testing.B) {
	const n = 2000
	s := benchStore(b, n)
	ctx := context.Background()
	for _, clients := range []int{1, 8, 32} {
		b.Run("clients="+strconv.Itoa(clients), func(b *testing.B) {
			var seq atomic.Int64
			before := s.Stats()
			b.ReportAllocs()
			b.ResetTimer()
			runClients(b, clients, func() {
				{
					i := seq.Add(1)
					dn := fmt.Sprintf("uid=user%06d,ou=people,dc=postern,dc=local", i%n)
					err := s.Modify(ctx, dn, []Modification{{Op: ModReplace, Attr: Attribute{Type: "description", Vals: []string{strconv.FormatInt(i, 10)}}}}, admin)
					if err != nil {
						b.Fatal(err)
					}
				}
			})
			after := s.Stats()
			if c := after.Commits - before.Commits; c > 0 {
				b.ReportMetric(float64(after.Writes-before.Writes)/float64(c), "writes/commit")
			}
		})
	}
}

// runClients runs fn b.N times in total from exactly clients goroutines
// (RunParallel would run a multiple of GOMAXPROCS).
func runClients(b *testing.B, clients int, fn func()) {
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				fn()
			}
		}()
	}
	wg.Wait()
}

// BenchmarkAddBatch measures bulk loading (LDIF import) in chunks of 1000.
func BenchmarkAddBatch(b *testing.B) {
	s := openTest(b, Options{})
	seed(b, s)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 1000 {
		es := make([]*Entry, 0, 1000)
		for j := i; j < min(b.N, i+1000); j++ {
			es = append(es, person(fmt.Sprintf("bulk%08d", j)))
		}
		must(b, s.AddBatch(ctx, es, admin))
	}
}

// BenchmarkLoad100k loads 100,000 people in chunks of 5000 (an LDIF
// import), then searches every one by uid and scans the whole tree; it
// reports the load rate, the file size and the process's peak RSS (the
// appliance budget is 150 MB with 100k entries).
func BenchmarkLoad100k(b *testing.B) {
	for b.Loop() {
		start := time.Now()
		s := benchStore(b, 100000)
		b.ReportMetric(100000/time.Since(start).Seconds(), "entries/s")
		ctx := context.Background()
		for i := 0; i < 100000; i += 7 {
			f := mustFilter(b, fmt.Sprintf("(uid=user%06d)", i))
			n := 0
			must(b, s.Search(ctx, &SearchRequest{BaseDN: "dc=postern,dc=local", Scope: ScopeSub, Filter: f}, func(*Entry) error { n++; return nil }))
			if n != 1 {
				b.Fatalf("uid %d found %d times", i, n)
			}
		}
		n := 0
		must(b, s.Search(ctx, &SearchRequest{BaseDN: "dc=postern,dc=local", Scope: ScopeSub}, func(*Entry) error { n++; return nil }))
		if n != 100005 {
			b.Fatalf("scan found %d", n)
		}
		if st, err := os.Stat(s.db.Path()); err == nil {
			b.ReportMetric(float64(st.Size())/(1<<20), "file_MB")
		}
		b.ReportMetric(peakRSSMB(), "peak_rss_MB")
	}
}

// peakRSSMB reads VmHWM (peak resident set) from /proc/self/status.
func peakRSSMB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
