package server

import (
	"sync"
	"time"
)

// workerIdle is how long an operation goroutine waits for the next
// operation before it exits.
const workerIdle = 5 * time.Second

// workers runs operations on reused goroutines: a goroutine that finished
// an operation waits a while for the next, so the stack it grew is not
// grown again for every request (a fresh goroutine per operation spent
// about a tenth of the server's time copying stacks).
type workers struct {
	ch   chan func()
	quit chan struct{}
	wg   sync.WaitGroup
}

func newWorkers() *workers {
	return &workers{ch: make(chan func()), quit: make(chan struct{})}
}

// run starts f on an idle worker or a new one; it never blocks.
func (w *workers) run(f func()) {
	select {
	case w.ch <- f:
	default:
		w.wg.Add(1)
		go w.loop(f)
	}
}

func (w *workers) loop(f func()) {
	defer w.wg.Done()
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		f()
		t.Reset(workerIdle)
		select {
		case f = <-w.ch:
		case <-t.C:
			return
		case <-w.quit:
			return
		}
	}
}

// stop ends the idle workers and waits for all of them; call it when no
// more operations can start.
func (w *workers) stop() {
	close(w.quit)
	w.wg.Wait()
}
