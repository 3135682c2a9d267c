package appliance

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	for _, tc := range []struct {
		live, min uint64
		want      int
	}{
		{2 << 20, 16 << 20, 400},  // the runtime's minimum heap, 4 MiB × 4, is the goal
		{0, 16 << 20, 400},        // no collection yet: the same
		{1, 16 << 20, 400},        // a tiny live heap: the same
		{6 << 20, 16 << 20, 166},  // 6 MiB × 2.66
		{8 << 20, 16 << 20, 100},  // twice the live heap reaches the goal
		{64 << 20, 16 << 20, 100}, // large heaps: GOGC's own rule
	} {
		if got := gcPercentFor(tc.live, tc.min); got != tc.want {
			t.Errorf("gcPercentFor(%d, %d) = %d, want %d", tc.live, tc.min, got, tc.want)
		}
	}
}

// TestTuneGC: after TuneGC and a collection, the runtime's heap goal is
// the minimum asked for (this test binary's live heap is far below it),
// not less and not much more.
func TestTuneGC(t *testing.T) {
	t.Setenv("GOGC", "")
	TuneGC(64 << 20)
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/heap/goal:bytes"}}
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // the finalizer goroutine runs the tuner
		metrics.Read(s)
		if g := s[1].Value.Uint64(); s[0].Value.Uint64() > 100 && g >= 60<<20 && g <= 72<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GC percent %d, heap goal %d after TuneGC(64 MiB)", s[0].Value.Uint64(), s[1].Value.Uint64())
		}
	}
}
