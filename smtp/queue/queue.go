package queue

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"
)

// Sentinel errors.
var (
	ErrNotFound  = errors.New("queue: no such message")
	ErrClosed    = errors.New("queue: closed")
	ErrDuplicate = errors.New("queue: duplicate message ID")
)

// Options configures a Queue. The zero value of every field but Dir is usable.
type Options struct {
	Dir          string       // directory of the segments; created if missing
	SegmentBytes int64        // rotate the head segment at this size; default 64 MiB
	Logger       *slog.Logger // default discards
}

// Queue is the durable queue. Its methods are safe for concurrent use.
type Queue struct {
	dir      string
	log      *slog.Logger
	segBytes int64

	mu    sync.RWMutex
	index map[string]*entry
	segs  []*segment // ordered by seq; the last one is the head

	reqs      chan *request
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	failed error // owned by the writer goroutine
	cached int64 // octets of content held in entries (under mu)
}

// cacheBytes bounds the content the queue keeps in memory besides the
// segments: a new message's content stays with its entry until the message
// leaves the queue, so that its delivery reads no file (issue 16). Beyond
// this, content is read from the segment.
const cacheBytes = 32 << 20

// entry is the in-memory state of one live message.
type entry struct {
	msg        *Message
	seg        *segment // segment with the current snapshot (and the content)
	contentOff int64    // absolute offset of the content in seg
	content    []byte   // the content when cached (see cacheBytes), read-only
	segs       []segRef // every segment holding a record of this message
}

type segRef struct {
	s     *segment
	bytes int64
}

// touch records that a record of n bytes for e was written to s.
func (e *entry) touch(s *segment, n int64) {
	s.liveBytes += n
	for i := range e.segs {
		if e.segs[i].s == s {
			e.segs[i].bytes += n
			return
		}
	}
	e.segs = append(e.segs, segRef{s, n})
	s.refs++
}

// release drops e's hold on its segments (the message is gone or superseded).
func (e *entry) release() {
	for _, r := range e.segs {
		r.s.refs--
		r.s.liveBytes -= r.bytes
	}
	e.segs = nil
}

// Open opens (creating if needed) the queue in opts.Dir and replays it.
func Open(opts Options) (*Queue, error) {
	if opts.Dir == "" {
		return nil, errors.New("queue: no directory")
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = 64 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	q := &Queue{
		dir:      opts.Dir,
		log:      opts.Logger,
		segBytes: opts.SegmentBytes,
		index:    make(map[string]*entry),
		reqs:     make(chan *request),
		done:     make(chan struct{}),
	}
	if err := q.replay(); err != nil {
		q.closeFiles()
		return nil, err
	}
	var next uint64 = 1
	if n := len(q.segs); n > 0 {
		next = q.segs[n-1].seq + 1
	}
	head, err := q.createSegment(next)
	if err != nil {
		q.closeFiles()
		return nil, err
	}
	q.segs = append(q.segs, head)
	q.gc()
	q.wg.Add(1)
	go q.run()
	return q, nil
}

// Close stops the writer and closes the segment files. Calls in flight get
// ErrClosed or complete; nothing acknowledged is lost.
func (q *Queue) Close() error {
	q.closeOnce.Do(func() { close(q.done) })
	q.wg.Wait()
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closeFiles()
}

func (q *Queue) closeFiles() error {
	var first error
	for _, s := range q.segs {
		if s.f != nil {
			if err := s.f.Close(); err != nil && first == nil {
				first = err
			}
			s.f = nil
		}
	}
	return first
}

var idEncoding = base32.HexEncoding.WithPadding(base32.NoPadding)

// NewID returns a new message ID: 18 characters of RFC 4648 base32hex, sorting
// by creation time (milliseconds) with 40 random bits.
func (q *Queue) NewID() string {
	var b [11]byte
	var t [8]byte
	binary.BigEndian.PutUint64(t[:], uint64(time.Now().UnixMilli()))
	copy(b[:6], t[2:])
	rand.Read(b[6:])
	return idEncoding.EncodeToString(b[:])
}

// Put stores a new message durably: when it returns nil, the envelope and
// content are on stable storage. m.ID must be set (NewID); m.Size is set
// from content.
func (q *Queue) Put(ctx context.Context, m *Message, content []byte) error {
	if m.ID == "" {
		return errors.New("queue: message without ID")
	}
	m.Size = int64(len(content))
	mc := m.Clone()
	body, off := encodeMessage(&mc, content)
	return q.submit(ctx, &request{kind: recMessage, id: m.ID, body: body, contentOff: off, msg: &mc})
}

// Update durably sets recipient states of message id. When every recipient
// is final the message leaves the queue.
func (q *Queue) Update(ctx context.Context, id string, ups ...RecipientUpdate) error {
	if len(ups) == 0 {
		return nil
	}
	ups = slices.Clone(ups)
	return q.submit(ctx, &request{kind: recUpdate, id: id, body: encodeUpdate(id, ups), ups: ups})
}

// UpdateWritten is Update without waiting for stable storage: when it
// returns nil the record is written to the segment file (it survives a
// crash of the process, kill -9 included) and applied, and it becomes
// durable with the next fdatasync of the queue: the next Put, Update or
// Remove, under load within milliseconds, and within a second (retireEvery)
// in any case. A power loss before that can lose it. For a delivery result this means the message is delivered
// again (RFC 5321 §6.1 allows duplicates, never losses); Postfix does not
// sync the removal of a delivered queue file either. Group commit then
// needs no fdatasync of its own for delivery results (issue 16).
func (q *Queue) UpdateWritten(ctx context.Context, id string, ups ...RecipientUpdate) error {
	if len(ups) == 0 {
		return nil
	}
	ups = slices.Clone(ups)
	return q.submit(ctx, &request{kind: recUpdate, id: id, body: encodeUpdate(id, ups), ups: ups, nosync: true})
}

// Remove durably deletes message id, whatever the state of its recipients.
func (q *Queue) Remove(ctx context.Context, id string) error {
	return q.submit(ctx, &request{kind: recRemove, id: id, body: encodeRemove(id)})
}

// Get returns a copy of message id's envelope and state.
func (q *Queue) Get(id string) (Message, bool) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	e, ok := q.index[id]
	if !ok {
		return Message{}, false
	}
	return e.msg.Clone(), true
}

// Has reports whether message id is in the queue.
func (q *Queue) Has(id string) bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	_, ok := q.index[id]
	return ok
}

// Content reads the content of message id from disk.
func (q *Queue) Content(id string) ([]byte, error) {
	return q.content(id, false)
}

// ContentShared returns the content of message id from memory when the
// queue holds it there (a new message: see cacheBytes), else as Content.
// The caller must not modify it.
func (q *Queue) ContentShared(id string) ([]byte, error) {
	return q.content(id, true)
}

func (q *Queue) content(id string, cached bool) ([]byte, error) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	e, ok := q.index[id]
	if !ok {
		return nil, ErrNotFound
	}
	if cached && e.content != nil {
		return e.content, nil
	}
	if e.seg.f == nil {
		return nil, ErrClosed
	}
	b := make([]byte, e.msg.Size)
	if _, err := e.seg.f.ReadAt(b, e.contentOff); err != nil {
		return nil, fmt.Errorf("queue: read %s: %w", id, err)
	}
	return b, nil
}

// List returns copies of every message in the queue, oldest first.
func (q *Queue) List() []Message {
	q.mu.RLock()
	out := make([]Message, 0, len(q.index))
	for _, e := range q.index {
		out = append(out, e.msg.Clone())
	}
	q.mu.RUnlock()
	slices.SortFunc(out, func(a, b Message) int {
		if c := a.Arrival.Compare(b.Arrival); c != 0 {
			return c
		}
		return compareStrings(a.ID, b.ID)
	})
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Len returns the number of messages in the queue.
func (q *Queue) Len() int {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return len(q.index)
}

// Segments returns the number of segment files, for tests and metrics.
func (q *Queue) Segments() int {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return len(q.segs)
}
