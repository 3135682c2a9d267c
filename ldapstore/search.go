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
}

// searchChunk is how many matching entries a search collects in one read
// transaction before it hands them to fn outside of it, so that a slow
// client never holds a transaction open.
const searchChunk = 128

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
			req = &SearchRequest{BaseDN: base, Scope: ScopeBase, Filter: req.Filter, SizeLimit: req.SizeLimit, Access: req.Access}
		}
	}
	t, err := s.resolveBase(base)
	if err != nil {
		return err
	}
	f := req.Filter
	cur := &cursor{s: s, scope: req.Scope, baseKey: t.key, filter: f, access: req.Access}
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
		batch, done, err := cur.next(ctx, n)
		if err != nil {
			return err
		}
		for _, e := range batch {
			if req.SizeLimit > 0 && sent >= req.SizeLimit {
				return &Error{Code: SizeLimitExceeded, Message: "size limit exceeded"}
			}
			if err := fn(e); err != nil {
				return err
			}
			sent++
		}
		if done {
			return nil
		}
	}
}

// cursor walks a search's candidates across read transactions.
type cursor struct {
	s       *Store
	scope   Scope
	baseKey []byte
	filter  *filter.Filter
	access  filter.Access

	started bool
	baseID  uuid.UUID
	planned bool
	ids     []uuid.UUID // indexed candidates
	pos     int
	lastKey []byte // scans: last key handled
}

// next returns up to n matching entries and whether the walk is complete.
func (c *cursor) next(ctx context.Context, n int) ([]*Entry, bool, error) {
	var out []*Entry
	done := false
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
				e, err := c.check(b, c.baseID[:], b.entries.Get(v))
				if e != nil {
					out = append(out, e)
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
			done, err = c.fromIDs(ctx, b, n, &out)
		} else if c.scope == ScopeOne {
			done, err = c.scanChildren(ctx, b, n, &out)
		} else {
			done, err = c.scanSubtree(ctx, b, n, &out)
		}
		return err
	})
	return out, done, err
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

func (c *cursor) fromIDs(ctx context.Context, b buckets, n int, out *[]*Entry) (bool, error) {
	for ; c.pos < len(c.ids); c.pos++ {
		if len(*out) >= n {
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
		if e != nil {
			*out = append(*out, e)
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

func (c *cursor) scanChildren(ctx context.Context, b buckets, n int, out *[]*Entry) (bool, error) {
	cur := b.children.Cursor()
	prefix := c.baseID[:]
	i := 0
	for k, _ := c.resume(cur, prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
		if len(*out) >= n {
			return false, nil
		}
		c.lastKey = append(c.lastKey[:0], k...)
		if i++; i%64 == 0 && ctx.Err() != nil {
			return false, ctxError(ctx)
		}
		id := k[16:32]
		e, err := c.check(b, id, b.entries.Get(id))
		if err != nil {
			return false, err
		}
		if e != nil {
			*out = append(*out, e)
		}
	}
	return true, nil
}

func (c *cursor) scanSubtree(ctx context.Context, b buckets, n int, out *[]*Entry) (bool, error) {
	cur := b.dn.Cursor()
	i := 0
	for k, v := c.resume(cur, c.baseKey); k != nil && bytes.HasPrefix(k, c.baseKey); k, v = cur.Next() {
		if len(k) > len(c.baseKey) && k[len(c.baseKey)] != 0 {
			continue // a sibling whose RDN starts like the base's
		}
		if len(*out) >= n {
			return false, nil
		}
		c.lastKey = append(c.lastKey[:0], k...)
		if i++; i%64 == 0 && ctx.Err() != nil {
			return false, ctxError(ctx)
		}
		e, err := c.check(b, v, b.entries.Get(v))
		if err != nil {
			return false, err
		}
		if e != nil {
			*out = append(*out, e)
		}
	}
	return true, nil
}
