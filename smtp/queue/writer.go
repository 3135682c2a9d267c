package queue

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// segment is one append-only log file.
type segment struct {
	seq       uint64
	path      string
	f         *os.File
	size      int64
	dirty     bool  // holds records written without fdatasync (UpdateWritten)
	refs      int   // live messages with at least one record here
	liveBytes int64 // bytes of records of live messages
}

func segmentName(seq uint64) string { return fmt.Sprintf("%016x.seg", seq) }

type request struct {
	kind       byte
	id         string
	body       []byte // record type + payload
	contentOff int    // recMessage: content offset within body
	msg        *Message
	ups        []RecipientUpdate
	nosync     bool  // answer once written; the next fdatasync makes it durable
	off        int64 // set by the writer: record offset in the head segment
	err        error
	done       chan error
}

const (
	maxBatch      = 4096
	maxBatchBytes = 32 << 20
)

// submit hands r to the writer and waits for it to be durable. Once the
// writer has taken r, submit waits for the outcome even if ctx ends, so the
// caller never reports a failure for a record that was in fact stored.
func (q *Queue) submit(ctx context.Context, r *request) error {
	r.done = make(chan error, 1)
	select {
	case q.reqs <- r:
	case <-q.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-r.done
}

// run is the writer goroutine: it batches requests (group commit).
func (q *Queue) run() {
	defer q.wg.Done()
	buf := make([]byte, 0, 1<<20)
	var batch []*request
	tick := time.NewTicker(retireEvery)
	defer tick.Stop()
	for {
		batch = batch[:0]
		select {
		case r := <-q.reqs:
			batch = append(batch, r)
		case <-tick.C:
			if q.failed == nil {
				q.syncHead()
			}
			q.retireFinished()
			continue
		case <-q.done:
			if q.failed == nil {
				q.syncHead()
			}
			return
		}
		size := len(batch[0].body)
	gather:
		for len(batch) < maxBatch && size < maxBatchBytes {
			select {
			case r := <-q.reqs:
				batch = append(batch, r)
				size += len(r.body)
			default:
				break gather
			}
		}
		buf = q.commit(batch, buf)
		if cap(buf) > 8<<20 {
			buf = make([]byte, 0, 1<<20)
		}
	}
}

// commit writes and fsyncs one batch, then applies it to the index and
// answers the callers.
func (q *Queue) commit(batch []*request, buf []byte) []byte {
	head := q.segs[len(q.segs)-1]
	buf = buf[:0]
	var pending []*request
	sync := false
	for _, r := range batch {
		r.err = q.validate(r)
		if r.err != nil {
			r.done <- r.err
			continue
		}
		r.off = head.size + int64(len(buf))
		buf = frame(buf, r.body)
		pending = append(pending, r)
		sync = sync || !r.nosync
	}
	if len(pending) == 0 {
		return buf
	}
	if _, err := head.f.WriteAt(buf, head.size); err != nil {
		// Nothing was acknowledged: cut the partial write and fail the batch.
		head.f.Truncate(head.size)
		q.log.Error("queue: write failed", slog.String("segment", head.path), slog.String("err", err.Error()))
		for _, r := range pending {
			r.done <- fmt.Errorf("queue: write: %w", err)
		}
		return buf
	}
	if !sync {
		head.dirty = true
	} else if err := q.sync(head); err != nil {
		for _, r := range pending {
			r.done <- q.failed
		}
		return buf
	}
	head.size += int64(len(buf))

	q.mu.Lock()
	for _, r := range pending {
		q.apply(r, head)
	}
	q.mu.Unlock()
	for _, r := range pending {
		r.done <- nil
	}
	if head.size >= q.segBytes {
		q.rotate()
	}
	q.gc()
	return buf
}

// sync makes what was written to s durable (fdatasync). After a failed
// fdatasync the page cache state is unknown: the queue stops writing.
func (q *Queue) sync(s *segment) error {
	if err := datasync(s.f); err != nil {
		q.failed = fmt.Errorf("queue: fsync %s: %w", s.path, err)
		q.log.Error("queue: fsync failed, queue is read-only", slog.String("err", err.Error()))
		return q.failed
	}
	s.dirty = false
	return nil
}

// syncHead makes records written without fdatasync durable before the head
// segment stops being the head (only the last segment may end torn).
func (q *Queue) syncHead() error {
	if h := q.segs[len(q.segs)-1]; h.dirty {
		return q.sync(h)
	}
	return nil
}

// validate checks r against the index (owned by this goroutine).
func (q *Queue) validate(r *request) error {
	if q.failed != nil {
		return q.failed
	}
	_, exists := q.index[r.id]
	switch {
	case r.kind == recMessage && exists:
		return ErrDuplicate
	case r.kind != recMessage && !exists:
		return ErrNotFound
	}
	if r.kind == recUpdate {
		n := len(q.index[r.id].msg.Recipients)
		for _, u := range r.ups {
			if u.Index < 0 || u.Index >= n {
				return fmt.Errorf("queue: %s has no recipient %d", r.id, u.Index)
			}
		}
	}
	return nil
}

// apply updates the index after r's record at r.off in s is durable.
// Called with q.mu held.
func (q *Queue) apply(r *request, s *segment) {
	n := int64(headerSize + len(r.body))
	switch r.kind {
	case recMessage:
		e := &entry{msg: r.msg, seg: s, contentOff: r.off + headerSize + int64(r.contentOff)}
		if c := r.body[r.contentOff:]; q.cached+int64(len(c)) <= cacheBytes && len(c) > 0 {
			e.content = c[:len(c):len(c)]
			q.cached += int64(len(c))
		}
		e.touch(s, n)
		q.index[r.id] = e
	case recUpdate:
		e, ok := q.index[r.id]
		if !ok {
			return
		}
		for _, u := range r.ups {
			e.msg.Recipients[u.Index] = u.Recipient
		}
		e.touch(s, n)
		if e.msg.Done() {
			q.drop(r.id, e)
		}
	case recRemove:
		if e, ok := q.index[r.id]; ok {
			q.drop(r.id, e)
		}
	}
}

// drop removes a finished message from the index. Called with q.mu held.
func (q *Queue) drop(id string, e *entry) {
	e.release()
	q.cached -= int64(len(e.content))
	e.content = nil
	delete(q.index, id)
}

func (q *Queue) createSegment(seq uint64) (*segment, error) {
	p := filepath.Join(q.dir, segmentName(seq))
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("queue: create segment: %w", err)
	}
	if err := syncDir(q.dir); err != nil {
		f.Close()
		os.Remove(p)
		return nil, fmt.Errorf("queue: create segment: %w", err)
	}
	return &segment{seq: seq, path: p, f: f}, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// retireEvery is how often the writer looks for the text of finished
// messages in the queue's files: when there is any, it starts a new head
// segment, copies the live messages into it (compaction) and deletes the
// old segments, so that the text of delivered or deleted mail does not stay
// on disk (on a frontend in a DMZ above all) much longer than this. The
// copy is bounded by retireMaxLive: a queue holding more live data than
// that leaves it to the ordinary compaction at rotation.
const (
	retireEvery   = time.Second
	retireMaxLive = 16 << 20
)

// retireFinished does that (writer goroutine).
func (q *Queue) retireFinished() {
	if q.failed != nil {
		return
	}
	var live, size int64
	q.mu.RLock()
	for _, sg := range q.segs {
		live += sg.liveBytes
		size += sg.size
	}
	q.mu.RUnlock()
	if size == live || live > retireMaxLive {
		return // nothing finished on disk, or too much to copy each time
	}
	if q.syncHead() != nil {
		return
	}
	old := q.segs[len(q.segs)-1]
	ns, err := q.createSegment(old.seq + 1)
	if err != nil {
		q.log.Error("queue: retire", slog.String("err", err.Error()))
		return
	}
	q.mu.Lock()
	q.segs = append(q.segs, ns)
	q.mu.Unlock()
	for q.segs[0] != ns {
		q.gc()
		s := q.segs[0]
		if s == ns {
			break
		}
		if err := q.compact(s, ns); err != nil {
			q.log.Error("queue: retire", slog.String("segment", s.path), slog.String("err", err.Error()))
			return
		}
		q.gc()
		if q.segs[0] == s {
			return // still needed (a record not moved): leave it to rotation
		}
	}
}

// maxSegments is the number of segments beyond which the oldest one is
// compacted whatever its live fraction, so that a few long-deferred messages
// cannot pin an unbounded log.
const maxSegments = 4

// rotate starts a new head segment and compacts the oldest segments when
// they hold little live data or the log grows long. Segments are deleted
// oldest first only (gc), which keeps replay exact: a record that finishes or
// supersedes a message is never deleted before the older records it
// overrides. Compacting only the oldest segment bounds the copying to one
// segment per rotation.
func (q *Queue) rotate() {
	if q.syncHead() != nil {
		return
	}
	old := q.segs[len(q.segs)-1]
	ns, err := q.createSegment(old.seq + 1)
	if err != nil {
		q.log.Error("queue: rotate", slog.String("err", err.Error()))
		return
	}
	q.mu.Lock()
	q.segs = append(q.segs, ns)
	q.mu.Unlock()
	for range 2 {
		q.gc()
		s := q.segs[0]
		if s == ns || !(s.liveBytes < s.size/4 || len(q.segs) > maxSegments) {
			return
		}
		if err := q.compact(s, ns); err != nil {
			q.log.Error("queue: compact", slog.String("segment", s.path), slog.String("err", err.Error()))
			return
		}
	}
}

// compact writes snapshot records of every live message with a record in s
// into head, so that s can be deleted.
func (q *Queue) compact(s, head *segment) error {
	var ids []string
	for id, e := range q.index {
		for _, r := range e.segs {
			if r.s == s {
				ids = append(ids, id)
				break
			}
		}
	}
	type moved struct {
		e    *entry
		off  int64
		coff int
		n    int64
	}
	var buf []byte
	var mv []moved
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		if _, err := head.f.WriteAt(buf, head.size); err != nil {
			head.f.Truncate(head.size)
			return err
		}
		if err := q.sync(head); err != nil {
			return err
		}
		head.size += int64(len(buf))
		q.mu.Lock()
		for _, m := range mv {
			m.e.release()
			m.e.seg = head
			m.e.contentOff = m.off + headerSize + int64(m.coff)
			m.e.touch(head, m.n)
		}
		q.mu.Unlock()
		buf, mv = buf[:0], mv[:0]
		return nil
	}
	for _, id := range ids {
		e := q.index[id]
		content, err := q.Content(id)
		if err != nil {
			return err
		}
		body, coff := encodeMessage(e.msg, content)
		mv = append(mv, moved{e: e, off: head.size + int64(len(buf)), coff: coff, n: int64(headerSize + len(body))})
		buf = frame(buf, body)
		if len(buf) > maxBatchBytes {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// gc deletes the oldest segments while no live message needs them.
func (q *Queue) gc() {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for n < len(q.segs)-1 && q.segs[n].refs == 0 {
		s := q.segs[n]
		if s.f != nil {
			s.f.Close()
			s.f = nil
		}
		if err := os.Remove(s.path); err != nil {
			q.log.Error("queue: remove segment", slog.String("segment", s.path), slog.String("err", err.Error()))
		}
		n++
	}
	if n > 0 {
		rest := copy(q.segs, q.segs[n:])
		clear(q.segs[rest:])
		q.segs = q.segs[:rest]
	}
}
