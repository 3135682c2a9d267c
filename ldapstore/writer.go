package ldapstore

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"

	"postern/ldapstore/csn"
)

// op is one queued write. fn validates against the transaction state first
// and writes only when the write is valid, so a refused op leaves the
// shared transaction untouched; an error from bbolt itself while writing
// marks the transaction dirty and the batch is replayed op by op.
type op struct {
	fn    func(w *wtx) error
	alone bool // run in a transaction of its own (bulk loads)
	state atomic.Int32
	err   error
	done  chan struct{}
}

const (
	opQueued int32 = iota
	opStarted
	opCanceled
)

// wtx is the state of one write transaction shared by a batch of ops.
type wtx struct {
	s       *Store
	tx      *bolt.Tx
	err     error // first bbolt write error: the tx is dirty
	count   int64 // live entries delta
	ctx     csn.Vector
	changes int
	writes  int // puts and deletes so far
	b       buckets
	// newNames are the numbers given out in this transaction (names.go).
	newNames map[string]uint64
}

// errDirty reports that bbolt failed while an op was writing.
var errDirty = errors.New("ldapstore: write failed inside a transaction")

func (w *wtx) put(b *bolt.Bucket, k, v []byte) {
	w.writes++
	if w.err == nil {
		if err := b.Put(k, v); err != nil {
			w.err = fmt.Errorf("%w: put: %v", errDirty, err)
		}
	}
}

func (w *wtx) del(b *bolt.Bucket, k []byte) {
	w.writes++
	if w.err == nil {
		if err := b.Delete(k); err != nil {
			w.err = fmt.Errorf("%w: delete: %v", errDirty, err)
		}
	}
}

// submit queues fn and waits for its result. The write is durable when
// submit returns nil.
func (s *Store) submit(ctx context.Context, alone bool, fn func(w *wtx) error) error {
	o := &op{fn: fn, alone: alone, done: make(chan struct{})}
	s.submitMu.RLock()
	if s.closed.Load() {
		s.submitMu.RUnlock()
		return &Error{Code: Unavailable, Message: "directory is shutting down"}
	}
	// Nothing queued and no transaction running: commit on this goroutine
	// instead of handing the op to the writer and waiting to be handed it
	// back (two goroutine switches on every write of a quiet store, among
	// them each change a replication consumer applies). Writes that arrive
	// meanwhile queue up and the writer commits them together after it.
	if len(s.queue) == 0 && s.commitMu.TryLock() {
		if len(s.queue) == 0 {
			o.state.Store(opStarted)
			s.runStarted([]*op{o})
			s.commitMu.Unlock()
			s.submitMu.RUnlock()
			return o.err
		}
		s.commitMu.Unlock()
	}
	select {
	case s.queue <- o:
		s.submitMu.RUnlock()
	case <-ctx.Done():
		s.submitMu.RUnlock()
		return ctxError(ctx)
	}
	select {
	case <-o.done:
		return o.err
	case <-ctx.Done():
		if o.state.CompareAndSwap(opQueued, opCanceled) {
			return ctxError(ctx)
		}
		<-o.done // already running: its outcome is the truth
		return o.err
	}
}

func ctxError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &Error{Code: TimeLimitExceeded, Message: "time limit exceeded"}
	}
	return &Error{Code: Canceled, Message: "operation canceled"}
}

// writer is the single goroutine that runs write transactions: it takes
// every op queued while the previous commit was being fsynced and commits
// them together (group commit).
func (s *Store) writer() {
	defer s.wg.Done()
	batch := make([]*op, 0, s.opts.MaxBatch)
	for {
		var first *op
		select {
		case first = <-s.queue:
		case <-s.quit:
			// drain what was queued before Close
			for {
				select {
				case o := <-s.queue:
					s.commitMu.Lock()
					s.runBatch([]*op{o})
					s.commitMu.Unlock()
				default:
					return
				}
			}
		}
		// Wait for an inline commit (submit) to end before gathering:
		// what queues meanwhile joins this batch.
		s.commitMu.Lock()
		batch = append(batch[:0], first)
		if !first.alone {
		fill:
			for len(batch) < s.opts.MaxBatch {
				select {
				case o := <-s.queue:
					if o.alone {
						s.runBatch(batch)
						batch = append(batch[:0], o)
						break fill
					}
					batch = append(batch, o)
				default:
					break fill
				}
			}
		}
		s.runBatch(batch)
		s.commitMu.Unlock()
	}
}

// runBatch commits ops in one transaction; the caller holds commitMu
// (taken before the ops are marked started, so that they stay cancellable
// while an inline commit runs). Every op gets its own result.
func (s *Store) runBatch(ops []*op) {
	live := ops[:0:0]
	for _, o := range ops {
		if o.state.CompareAndSwap(opQueued, opStarted) {
			live = append(live, o)
		} else {
			close(o.done)
		}
	}
	if len(live) == 0 {
		return
	}
	s.runStarted(live)
}

// runStarted commits live (ops already marked started); the caller holds
// commitMu.
func (s *Store) runStarted(live []*op) {
	w, err := s.commit(live)
	if errors.Is(err, errDirty) && len(live) > 1 {
		s.log.Warn("ldapstore: batch write failed, replaying ops one by one", errAttr(err))
		for _, o := range live {
			s.runOne(o)
		}
		return
	}
	s.finish(live, w, err)
}

func (s *Store) runOne(o *op) {
	w, err := s.commit([]*op{o})
	s.finish([]*op{o}, w, err)
}

// commit runs the ops in one bbolt transaction. An op's own error is kept
// in o.err and does not abort the others, except for an op alone in its
// transaction, whose error rolls the transaction back.
func (s *Store) commit(ops []*op) (*wtx, error) {
	var w *wtx
	err := s.db.Update(func(tx *bolt.Tx) error {
		w = &wtx{s: s, tx: tx, ctx: csn.Vector{}}
		for _, o := range ops {
			before := w.writes
			o.err = o.fn(w)
			if w.err != nil {
				return w.err
			}
			if o.err != nil && w.writes != before {
				// refused after it began writing: its writes cannot be
				// taken back alone, so the whole batch is replayed
				return fmt.Errorf("%w: op failed after writing: %v", errDirty, o.err)
			}
			if o.err != nil && len(ops) == 1 {
				return o.err
			}
		}
		if w.changes == 0 {
			return nil
		}
		return s.writeMeta(w)
	})
	if err == nil {
		s.publishNames(w)
		s.stats.commits.Add(1)
	}
	return w, err
}

// writeMeta stores the entry count and context CSN changed by the batch.
func (s *Store) writeMeta(w *wtx) error {
	meta := w.tx.Bucket(bMeta)
	s.mu.Lock()
	vec := s.ctxCSN.Clone()
	s.mu.Unlock()
	for _, c := range w.ctx {
		vec.Update(c)
	}
	n := s.count.Load() + w.count
	var b [8]byte
	putUint64(b[:], uint64(n))
	if err := meta.Put(mCount, b[:]); err != nil {
		return fmt.Errorf("%w: %v", errDirty, err)
	}
	if err := meta.Put(mCtxCSN, encodeVector(vec)); err != nil {
		return fmt.Errorf("%w: %v", errDirty, err)
	}
	return nil
}

// finish publishes a committed batch and wakes the callers.
func (s *Store) finish(ops []*op, w *wtx, err error) {
	if err != nil {
		for _, o := range ops {
			if o.err == nil {
				o.err = fmt.Errorf("ldapstore: commit: %w", err)
			}
		}
	} else if w != nil && w.changes > 0 {
		s.count.Add(w.count)
		s.mu.Lock()
		for _, c := range w.ctx {
			s.ctxCSN.Update(c)
		}
		s.mu.Unlock()
	}
	for _, o := range ops {
		if err == nil && o.err == nil {
			s.stats.writes.Add(1)
		}
		close(o.done)
	}
	// The change feed is signalled last: of the goroutines woken here the
	// last one runs first (the scheduler's runnext), and a provider
	// streaming the change is on the way to every other member, while an
	// acknowledgement goes to one client. (After an inline commit the
	// committing goroutine answers its client first.)
	if err == nil && w != nil && w.changes > 0 {
		s.mu.Lock()
		for _, sub := range s.subs {
			sub.signal(w.ctx)
		}
		s.mu.Unlock()
	}
}
