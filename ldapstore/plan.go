package ldapstore

import (
	"bytes"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"postern/ldapstore/filter"
)

// A plan is the set of candidate entries an index lookup yields for a
// filter, sorted by entryUUID. The filter is still evaluated on each
// candidate, so a plan may hold more entries than match, never fewer.
type plan struct {
	ids []uuid.UUID
}

// unlimited is the candidate limit of a top-level lookup.
const unlimited = int(^uint(0) >> 1)

// planFilter returns the candidates for f from the indexes, or ok=false
// when f cannot be answered from them. A lookup that would exceed limit
// candidates stops and returns ok=false (AND uses this to skip branches
// larger than the best so far). Rules:
//   - equality on an indexed attribute: its index postings (objectClass:
//     those of the class and its subclasses, ocindex.go);
//   - AND: the intersection of its indexed branches (smallest first);
//   - OR: the union, only when every branch is indexed;
//   - anything else: not indexed.
func (s *Store) planFilter(tx *bolt.Tx, f *filter.Filter, limit int) (ids []uuid.UUID, ok bool) {
	switch f.Kind {
	case filter.Equality:
		at := s.sch.Attr(f.Attr)
		if at == nil || at.Equality == nil {
			// Undefined for every entry: nothing can match
			return nil, true
		}
		n, err := at.Equality.Normalize(f.Value)
		if err != nil {
			return nil, true
		}
		if at.Name() == "entryUUID" {
			u, err := uuid.Parse(n)
			if err != nil || tx.Bucket(bEntries).Get(u[:]) == nil {
				return nil, true
			}
			return []uuid.UUID{u}, true
		}
		if !s.indexed[at] || len(at.Subtypes()) > 0 {
			return nil, false
		}
		if at == s.ocAttr {
			return s.planObjectClass(tx, f.Value, n, limit)
		}
		s.stats.lookups.Add(1)
		return s.lookup(tx, at.Name(), n, limit)
	case filter.And:
		var best []uuid.UUID
		have := false
		// the most selective attributes first: objectClass last
		order := make([]*filter.Filter, 0, len(f.Children))
		var late []*filter.Filter
		for _, c := range f.Children {
			if c.Kind == filter.Equality && s.sch.Attr(c.Attr) == s.ocAttr {
				late = append(late, c)
			} else {
				order = append(order, c)
			}
		}
		for _, c := range append(order, late...) {
			lim := limit
			if have {
				lim = len(best)
			}
			ids, ok := s.planFilter(tx, c, lim)
			if !ok {
				continue
			}
			if !have {
				best, have = ids, true
			} else {
				best = intersect(best, ids)
			}
			if len(best) == 0 {
				return nil, true
			}
		}
		return best, have
	case filter.Or:
		var all []uuid.UUID
		for _, c := range f.Children {
			ids, ok := s.planFilter(tx, c, limit)
			if !ok {
				return nil, false
			}
			all = union(all, ids)
			if len(all) > limit {
				return nil, false
			}
		}
		return all, true
	}
	return nil, false
}

// lookup reads the postings of normalised value n in index attr.
func (s *Store) lookup(tx *bolt.Tx, attr, n string, limit int) ([]uuid.UUID, bool) {
	sub := tx.Bucket(bIdx).Bucket([]byte(attr))
	prefix := indexPrefix(n)
	var ids []uuid.UUID
	c := sub.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) != len(prefix)+16 {
			continue
		}
		if len(ids) >= limit {
			return nil, false
		}
		var id uuid.UUID
		copy(id[:], k[len(prefix):])
		ids = append(ids, id)
	}
	// postings of one value are in entryUUID order already (key suffix)
	return ids, true
}

func intersect(a, b []uuid.UUID) []uuid.UUID {
	out := a[:0:0]
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := bytes.Compare(a[i][:], b[j][:]); {
		case c == 0:
			out = append(out, a[i])
			i++
			j++
		case c < 0:
			i++
		default:
			j++
		}
	}
	return out
}

func union(a, b []uuid.UUID) []uuid.UUID {
	out := make([]uuid.UUID, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j >= len(b):
			out = append(out, a[i])
			i++
		case i >= len(a):
			out = append(out, b[j])
			j++
		default:
			switch c := bytes.Compare(a[i][:], b[j][:]); {
			case c == 0:
				out = append(out, a[i])
				i++
				j++
			case c < 0:
				out = append(out, a[i])
				i++
			default:
				out = append(out, b[j])
				j++
			}
		}
	}
	return out
}
