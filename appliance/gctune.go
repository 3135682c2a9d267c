package appliance

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// MinHeapGoal is the smallest heap goal `postern serve` lets the garbage
// collector aim for (TuneGC). With it the heap of an appliance with a
// small live heap stays near 16 MiB; the resident-memory budget
// (bench/ldap.sh: at most 150 MB with 100,000 users) holds it.
const MinHeapGoal = 16 << 20

var tuneOnce sync.Once

// TuneGC keeps the garbage collector's heap goal at least min bytes for
// the rest of the process, and leaves GOGC's proportional rule (100) in
// force above it. Postern's data lives in the memory-mapped store, so its
// live Go heap is a few MB: with GOGC=100 alone the runtime collects every
// 4 MB allocated — every 30 ms while a member applies a replication stream
// and answers searches — and each cycle's stop-the-world pauses, longer on
// a loaded machine, land on writes and replication (the p99 of
// bench/replication.sh). After every collection the tuner sets the GC
// percentage so that the next goal is about max(min, 2 × live heap). A GOGC set
// in the environment is left alone. Calls after the first do nothing.
func TuneGC(min uint64) {
	if os.Getenv("GOGC") != "" {
		return
	}
	tuneOnce.Do(func() {
		t := &gcTuner{min: min, last: -1, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
		t.adjust()
		t.arm()
	})
}

// gcTuner runs after each collection (a finalizer of an object allocated
// for the purpose; finalizers run one at a time, so its fields need no lock).
type gcTuner struct {
	min    uint64
	last   int
	sample []metrics.Sample
}

// sentinel is garbage as soon as it is made: its finalizer runs after the
// next collection. It is larger than the tiny allocator's 16 bytes, whose
// objects may share a block and never be finalized.
type sentinel struct{ _ [32]byte }

func (t *gcTuner) arm() {
	runtime.SetFinalizer(&sentinel{}, func(*sentinel) {
		t.adjust()
		t.arm()
	})
}

func (t *gcTuner) adjust() {
	metrics.Read(t.sample)
	var live uint64
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		live = t.sample[0].Value.Uint64()
	}
	if p := gcPercentFor(live, t.min); p != t.last {
		debug.SetGCPercent(p)
		t.last = p
	}
}

// gcPercentFor is the smallest GC percentage p (at least 100) whose heap
// goal reaches goal. The runtime's goal for p is the larger of live × (1 +
// p/100) and its minimum heap, 4 MiB × p/100, so p is the smaller of the
// two percentages that bring either term to goal. A live heap of 0 (no
// collection yet) leaves the minimum-heap term alone.
func gcPercentFor(live, goal uint64) int {
	const runtimeMinHeap = 4 << 20 // the runtime's minimum heap at GOGC=100
	if live*2 >= goal {
		return 100
	}
	p := goal * 100 / runtimeMinHeap
	if live > 0 {
		p = min(p, (goal-live)*100/live)
	}
	return int(max(p, 100))
}
