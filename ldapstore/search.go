package ldapstore

import (
	"bytes"
	"context"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"postern/ldapstore/filter"
)

// SearchRequest is a search of the store (RFC 4511 §4.5.1).
type SearchRequest struct {
	BaseDN    string
	Scope     Scope
	Filter    *filter.Filter // nil = (objectClass=*)
	SizeLimit int            // 0 = none; exceeding returns *Error SizeLimitExceeded after fn got SizeLimit entries
	// Access, when not nil, is the client's read access: attributes it
	// denies evaluate as Undefined in Filter (filter.Access).
	Access filter.Access
	// Buffer, when not nil, accounts for the memory of the entries Search
	// has read and not yet handed to fn (Reserver).
	Buffer Reserver
	// LongScan, when not nil, is called once, on the search's goroutine,
	// when the search has examined LongScanEntries candidates: the LDAP
	// server then reads the client's further requests (an abandon, RFC 4511
	// §4.11) on another goroutine while an unindexed search goes on.
	LongScan func()
}

// LongScanEntries is how many candidates a search examines before it calls
// SearchRequest.LongScan.
const LongScanEntries = 256

// Reserver bounds memory a search holds for results not yet handed on. A
// search reserves about searchChunkBytes before it reads a chunk of
// entries, gives back at once what the chunk did not use, and gives back
// each entry's share when fn returns for it: a search whose fn blocks (a
// client that does not read) holds one chunk at most, and Reserve makes
// the next search wait when the owner's budget is spent.
type Reserver interface {
	// Reserve takes n bytes, waiting within ctx; an error ends the search.
	Reserve(ctx context.Context, n int64) error
	// Release gives back n bytes taken by Reserve.
	Release(n int64)
}

// searchChunk is how many matching entries a search collects in one read
// transaction before it hands them to fn outside of it, so that a slow
// client never holds a transaction open; searchChunkBytes bounds the
// (estimated) memory of those entries.
const (
	searchChunk      = 128
	searchChunkBytes = 256 << 10
)

// Search calls fn for every entry in scope that matches req.Filter. The
// context's deadline is the time limit (timeLimitExceeded). Equality, AND
// and OR filters on indexed attributes use the indexes; others scan the
// scope. An empty BaseDN stands for the suffix (scope one or sub).
func (s *Store) Search(ctx context.Context, req *SearchRequest, fn func(*Entry) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	base := req.BaseDN
	if base == "" {
		if req.Scope == ScopeBase {
			return &Error{Code: NoSuchObject, Message: "no such object"}
		}
		base = s.suffix
		if req.Scope == ScopeOne {
			req = &SearchRequest{BaseDN: base, Scope: ScopeBase, Filter: req.Filter, SizeLimit: req.SizeLimit, Access: req.Access, Buffer: req.Buffer, LongScan: req.LongScan}
		}
	}
	t, err := s.resolveBase(base)
	if err != nil {
		return err
	}
	f := req.Filter
	cur := &cursor{s: s, scope: req.Scope, baseKey: t.key, filter: f, access: req.Access, longScan: req.LongScan}
	var held int64 // reserved from req.Buffer and not yet given back
	release := func(n int64) {
		if req.Buffer != nil && n > 0 {
			req.Buffer.Release(n)
		}
		held -= n
	}
	defer func() { release(held) }()
	sent := 0
	for {
		if err := ctx.Err(); err != nil {
			return ctxError(ctx)
		}
		n := searchChunk
		if req.SizeLimit > 0 {
			// one more than the limit tells whether it was exceeded
			n = min(n, req.SizeLimit-sent+1)
		}
		reserve := max(int64(searchChunkBytes), cur.need)
		if req.Buffer != nil {
			if err := req.Buffer.Reserve(ctx, reserve); err != nil {
				return ctxError(ctx)
			}
		}
		held += reserve
		batch, done, err := cur.next(ctx, n, reserve)
		if err != nil {
			return err
		}
		used := int64(0)
		for _, it := range batch {
			used += it.size
		}
		if used > reserve {
			// a base search's one entry, read whatever its size
			if req.Buffer != nil {
				if err := req.Buffer.Reserve(ctx, used-reserve); err != nil {
					return ctxError(ctx)
				}
			}
			held += used - reserve
		} else {
			release(reserve - used) // what the chunk did not take
		}
		for _, it := range batch {
			if req.SizeLimit > 0 && sent >= req.SizeLimit {
				return &Error{Code: SizeLimitExceeded, Message: "size limit exceeded"}
			}
			if err := fn(it.e); err != nil {
				return err
			}
			release(it.size)
			sent++
		}
		if done {
			return nil
		}
	}
}

// found is an entry a search has read, with the estimated memory it holds
// until it is handed on.
type found struct {
	e    *Entry
	size int64
}

// entrySize estimates the memory of a decoded entry: its record's bytes
// (decodeRecord copies the record into one string the values share) and
// the headers of its attributes and values.
func entrySize(recordLen int, e *Entry) int64 {
	n := int64(recordLen) + 64 + int64(len(e.DN))
	for _, a := range e.Attributes {
		n += 40 + 16*int64(len(a.Vals))
	}
	return n
}

// cursor walks a search's candidates across read transactions.
type cursor struct {
	s       *Store
	scope   Scope
	baseKey []byte
	filter  *filter.Filter
	access  filter.Access

	started bool
	need    int64 // the size of an entry a chunk could not take (0: none)
	chunk   chunk
	baseID  uuid.UUID
	planned bool
	ids     []uuid.UUID // indexed candidates
	pos     int
	lastKey []byte // scans: last key handled

	examined int    // candidates checked
	longScan func() // SearchRequest.LongScan
}

// next returns up to n matching entries whose sizes add up to at most
// budget (always at least one that fits it), and whether the walk is
// complete. An entry larger than what is left stays for the next chunk;
// one larger than the whole budget sets c.need and ends the chunk empty,
// so that the caller reserves enough for it.
func (c *cursor) next(ctx context.Context, n int, budget int64) ([]found, bool, error) {
	// the chunk and its items are the cursor's, reused: the caller is done
	// with the previous chunk's items when it asks for the next
	out := &c.chunk
	*out = chunk{items: out.items[:0], max: n, budget: budget}
	done := false
	defer c.s.noteRead()
	err := c.s.db.View(func(tx *bolt.Tx) error {
		b := c.s.bucketsOf(tx)
		if !c.started {
			c.started = true
			v := b.dn.Get(c.baseKey)
			if v == nil {
				return noSuchObject(b, keyRDNs(c.baseKey))
			}
			copy(c.baseID[:], v)
			if c.scope == ScopeBase {
				done = true
				buf := b.entries.Get(v)
				e, err := c.check(b, c.baseID[:], buf)
				if e != nil {
					out.items = append(out.items, found{e: e, size: entrySize(len(buf), e)})
				}
				return err
			}
			if c.filter != nil {
				c.ids, c.planned = c.s.planFilter(tx, c.filter, unlimited)
			}
			if !c.planned {
				c.s.stats.scans.Add(1)
			}
		}
		var err error
		if c.planned {
			done, err = c.fromIDs(ctx, b, out)
		} else if c.scope == ScopeOne {
			done, err = c.scanChildren(ctx, b, out)
		} else {
			done, err = c.scanSubtree(ctx, b, out)
		}
		return err
	})
	if len(out.items) > 0 || done {
		c.need = 0
	}
	return out.items, done, err
}

// chunk collects the entries of one read transaction.
type chunk struct {
	items  []found
	max    int
	budget int64
	used   int64
}

func (k *chunk) full() bool { return len(k.items) >= k.max }

// take adds e if it fits; false means the chunk is complete and e must be
// read again by the next one (c.need says how much it needs when the chunk
// is empty).
func (c *cursor) take(k *chunk, e *Entry, recordLen int) bool {
	size := entrySize(recordLen, e)
	if k.used+size > k.budget {
		if len(k.items) == 0 {
			c.need = size
		}
		return false
	}
	k.used += size
	k.items = append(k.items, found{e: e, size: size})
	return true
}

// inScope reports whether a record's header puts it in the search scope.
func (c *cursor) inScope(id uuid.UUID, buf []byte) bool {
	parent, key, err := recordHeader(buf)
	if err != nil {
		return false
	}
	switch c.scope {
	case ScopeBase:
		return id == c.baseID
	case ScopeOne:
		return parent == c.baseID
	default:
		return bytes.Equal(key, c.baseKey) ||
			len(key) > len(c.baseKey) && key[len(c.baseKey)] == 0 && bytes.HasPrefix(key, c.baseKey)
	}
}

// check decodes a record and evaluates the filter; it returns the entry
// when it matches.
func (c *cursor) check(b buckets, id []byte, buf []byte) (*Entry, error) {
	if buf == nil {
		return nil, nil
	}
	c.s.stats.examined.Add(1)
	if c.examined++; c.examined == LongScanEntries && c.longScan != nil {
		c.longScan()
	}
	r, err := b.decodeRecord(id, buf, 2)
	if err != nil {
		return nil, err
	}
	e := c.s.complete(b, id, r.entry)
	if c.filter != nil && c.filter.MatchAccess(c.s.sch, e, c.access) != filter.True {
		return nil, nil
	}
	return e, nil
}

func (c *cursor) fromIDs(ctx context.Context, b buckets, out *chunk) (bool, error) {
	for ; c.pos < len(c.ids); c.pos++ {
		if out.full() {
			return false, nil
		}
		if c.pos%64 == 63 && ctx.Err() != nil {
			return false, ctxError(ctx)
		}
		id := c.ids[c.pos]
		buf := b.entries.Get(id[:])
		if buf == nil || !c.inScope(id, buf) {
			continue
		}
		e, err := c.check(b, id[:], buf)
		if err != nil {
			return false, err
		}
		if e != nil && !c.take(out, e, len(buf)) {
			return false, nil
		}
	}
	return true, nil
}

// resume positions cur after c.lastKey, or at start.
func (c *cursor) resume(cur *bolt.Cursor, start []byte) ([]byte, []byte) {
	if c.lastKey == nil {
		return cur.Seek(start)
	}
	k, v := cur.Seek(c.lastKey)
	if k != nil && bytes.Equal(k, c.lastKey) {
		k, v = cur.Next()
	}
	return k, v
}

func (c *cursor) scanChildren(ctx context.Context, b buckets, out *chunk) (bool, error) {
	cur := b.children.Cursor()
	prefix := c.baseID[:]
	i := 0
	for k, _ := c.resume(cur, prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
		if out.full() {
			return false, nil
		}
		if i++; i%64 == 0 && ctx.Err() != nil {
			return false, ctxError(ctx)
		}
		id := k[16:32]
		buf := b.entries.Get(id)
		e, err := c.check(b, id, buf)
		if err != nil {
			return false, err
		}
		if e != nil && !c.take(out, e, len(buf)) {
			return false, nil // k is read again by the next chunk
		}
		c.lastKey = append(c.lastKey[:0], k...)
	}
	return true, nil
}

func (c *cursor) scanSubtree(ctx context.Context, b buckets, out *chunk) (bool, error) {
	cur := b.dn.Cursor()
	i := 0
	for k, v := c.resume(cur, c.baseKey); k != nil && bytes.HasPrefix(k, c.baseKey); k, v = cur.Next() {
		if len(k) > len(c.baseKey) && k[len(c.baseKey)] != 0 {
			continue // a sibling whose RDN starts like the base's
		}
		if out.full() {
			return false, nil
		}
		if i++; i%64 == 0 && ctx.Err() != nil {
			return false, ctxError(ctx)
		}
		buf := b.entries.Get(v)
		e, err := c.check(b, v, buf)
		if err != nil {
			return false, err
		}
		if e != nil && !c.take(out, e, len(buf)) {
			return false, nil // k is read again by the next chunk
		}
		c.lastKey = append(c.lastKey[:0], k...)
	}
	return true, nil
}
