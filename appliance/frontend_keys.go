package appliance

import (
	"context"
	"sync"

	"postern/smtp/secure"
)

// cachedKeys is secure mail's key view on a frontend: remoteKeys (every
// lookup a member call to the backend in use) with the public answers kept
// in memory while nothing has changed. The frontend's sync session sees
// every change of a domain, user, key or policy entry at once
// (frontendDirectory.generation); an answer is used only while that count
// is the one it was fetched under and the session is up, so a change on
// any backend is in force here as soon as the sync brings it, like the
// domains themselves. Private keys are never kept: each message asks for
// them and drops them. The cache is bounded (cacheMax answers; past that
// it starts again empty).
type cachedKeys struct {
	remote *remoteKeys
	gen    func() (uint64, bool)

	mu      sync.Mutex
	at      uint64 // the generation the answers below belong to
	managed map[string]bool
	policy  map[string]secure.Policy
	public  map[string][]secure.PublicKey
	noDKIM  map[string]bool // domains without a DKIM key
	roots   [][]byte
	rootsOK bool
}

const cacheMax = 10000

var _ secure.Keys = (*cachedKeys)(nil)

func newCachedKeys(remote *remoteKeys, gen func() (uint64, bool)) *cachedKeys {
	c := &cachedKeys{remote: remote, gen: gen}
	c.reset(0)
	return c
}

func (c *cachedKeys) reset(g uint64) {
	c.at = g
	c.managed, c.policy, c.public, c.noDKIM = map[string]bool{}, map[string]secure.Policy{}, map[string][]secure.PublicKey{}, map[string]bool{}
	c.roots, c.rootsOK = nil, false
}

// current returns the generation to fetch under and whether cached
// answers may be used (and new ones kept).
func (c *cachedKeys) current() (uint64, bool) {
	g, up := c.gen()
	if !up {
		return g, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if g != c.at || len(c.managed)+len(c.policy)+len(c.public)+len(c.noDKIM) > cacheMax {
		c.reset(g)
	}
	return g, true
}

// keep stores an answer fetched under generation g, unless it moved.
func (c *cachedKeys) keep(g uint64, put func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g == c.at {
		put()
	}
}

func lookup[V any](c *cachedKeys, m func() map[string]V, key string, fetch func() (V, error)) (V, error) {
	g, ok := c.current()
	if ok {
		c.mu.Lock()
		v, hit := m()[key]
		c.mu.Unlock()
		if hit {
			return v, nil
		}
	}
	v, err := fetch()
	if err == nil && ok {
		c.keep(g, func() { m()[key] = v })
	}
	return v, err
}

func (c *cachedKeys) Managed(ctx context.Context, d string) (bool, error) {
	return lookup(c, func() map[string]bool { return c.managed }, d, func() (bool, error) { return c.remote.Managed(ctx, d) })
}

func (c *cachedKeys) Policy(ctx context.Context, a string) (secure.Policy, error) {
	return lookup(c, func() map[string]secure.Policy { return c.policy }, a, func() (secure.Policy, error) { return c.remote.Policy(ctx, a) })
}

func (c *cachedKeys) Public(ctx context.Context, a string) ([]secure.PublicKey, error) {
	return lookup(c, func() map[string][]secure.PublicKey { return c.public }, a, func() ([]secure.PublicKey, error) { return c.remote.Public(ctx, a) })
}

// Private always asks the backend: private keys live in memory for one
// message only.
func (c *cachedKeys) Private(ctx context.Context, a string) ([]secure.PrivateKey, error) {
	return c.remote.Private(ctx, a)
}

// DKIM asks the backend for a domain's key each time (it is private); that
// a domain has none is kept.
func (c *cachedKeys) DKIM(ctx context.Context, d string) (secure.PrivateKey, bool, error) {
	g, ok := c.current()
	if ok {
		c.mu.Lock()
		none := c.noDKIM[d]
		c.mu.Unlock()
		if none {
			return secure.PrivateKey{}, false, nil
		}
	}
	k, found, err := c.remote.DKIM(ctx, d)
	if err == nil && !found && ok {
		c.keep(g, func() { c.noDKIM[d] = true })
	}
	return k, found, err
}

func (c *cachedKeys) Roots(ctx context.Context) ([][]byte, error) {
	g, ok := c.current()
	if ok {
		c.mu.Lock()
		r, have := c.roots, c.rootsOK
		c.mu.Unlock()
		if have {
			return r, nil
		}
	}
	r, err := c.remote.Roots(ctx)
	if err == nil && ok {
		c.keep(g, func() { c.roots, c.rootsOK = r, true })
	}
	return r, err
}

// Collect hands a partner's certificate to the backend (it writes it; the
// sync then moves the generation).
func (c *cachedKeys) Collect(ctx context.Context, a string, cert []byte) error {
	return c.remote.Collect(ctx, a, cert)
}
