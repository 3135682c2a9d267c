package server

import (
	"context"
	"sync"
)

// budget is a byte budget shared by goroutines: a weighted semaphore that
// serves waiters in order. A request larger than the whole budget is
// granted when nothing else is held, so one oversized entry cannot wait
// forever (it may then exceed the budget by itself alone).
type budget struct {
	mu      sync.Mutex
	size    int64
	used    int64
	waiters []*budgetWaiter
}

type budgetWaiter struct {
	n     int64
	ready chan struct{}
}

func newBudget(size int64) *budget { return &budget{size: size} }

// fits reports whether n can be granted now; b.mu is held.
func (b *budget) fits(n int64) bool { return b.used+n <= b.size || b.used == 0 }

// acquire takes n bytes, waiting for them within ctx.
func (b *budget) acquire(ctx context.Context, n int64) error {
	b.mu.Lock()
	if len(b.waiters) == 0 && b.fits(n) {
		b.used += n
		b.mu.Unlock()
		return nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		select {
		case <-w.ready:
			// granted meanwhile: give it back
			b.used -= n
			b.grant()
		default:
			for i, x := range b.waiters {
				if x == w {
					b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
					break
				}
			}
			b.grant()
		}
		b.mu.Unlock()
		return ctx.Err()
	}
}

// tryAcquire takes n bytes if they are free now, without waiting.
func (b *budget) tryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.waiters) > 0 || b.used+n > b.size {
		return false
	}
	b.used += n
	return true
}

// release returns n bytes.
func (b *budget) release(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	b.grant()
	b.mu.Unlock()
}

// grant wakes the waiters at the head of the queue that fit; b.mu is held.
func (b *budget) grant() {
	for len(b.waiters) > 0 && b.fits(b.waiters[0].n) {
		w := b.waiters[0]
		b.waiters = b.waiters[1:]
		b.used += w.n
		close(w.ready)
	}
}

// held returns the bytes granted now (for tests and metrics).
func (b *budget) held() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// resultBuffer is a connection's ldapstore.Reserver: the memory of search
// results read from the store and not yet sent to the client counts
// against the connection's budget and the server's, so a client that sends
// searches and never reads holds at most its connection's budget, and all
// of them together at most the server's (issue 9, item 10).
type resultBuffer struct {
	conn, global *budget
}

// Reserve takes n bytes from the connection's budget, then the server's.
func (r resultBuffer) Reserve(ctx context.Context, n int64) error {
	if err := r.conn.acquire(ctx, n); err != nil {
		return err
	}
	if err := r.global.acquire(ctx, n); err != nil {
		r.conn.release(n)
		return err
	}
	return nil
}

// Release returns n bytes to both budgets.
func (r resultBuffer) Release(n int64) {
	r.global.release(n)
	r.conn.release(n)
}
