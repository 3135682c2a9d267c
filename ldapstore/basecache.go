package ldapstore

import "sync"

// baseCacheSize bounds the resolved search bases kept; the cache is
// emptied when it is full (search bases repeat: the suffix, a few OUs).
const baseCacheSize = 256

// baseCache maps a search base DN, as given, to its resolved target. A
// resolution depends on the DN's text and the schema's matching rules
// only, never on the entries, so renames and deletes need no invalidation;
// failures are not kept. Cached targets are shared and never modified.
type baseCache struct {
	mu sync.RWMutex
	m  map[string]*target
}

// resolveBase is resolve for a search or snapshot base, through the cache.
func (s *Store) resolveBase(d string) (*target, error) {
	c := &s.bases
	c.mu.RLock()
	t, ok := c.m[d]
	c.mu.RUnlock()
	if ok {
		return t, nil
	}
	t, err := s.resolve(d, false)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= baseCacheSize {
		c.m = make(map[string]*target, baseCacheSize)
	}
	c.m[d] = t
	c.mu.Unlock()
	return t, nil
}
