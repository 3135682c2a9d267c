package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"postern/smtp/secure"
)

// TestCachedKeys: a frontend keeps the backend's public answers only while
// its sync session is up and has seen no change since; private keys and a
// found DKIM key are asked for every time; the cache is bounded.
func TestCachedKeys(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	gen, up := uint64(1), true
	remote := &remoteKeys{call: func(ctx context.Context, op string, arg, out any) error {
		mu.Lock()
		calls[op]++
		mu.Unlock()
		var ans any
		switch op {
		case "secure.managed":
			ans = true
		case "secure.policy":
			ans = secure.Policy{Encrypt: secure.EncryptAlways}
		case "secure.public", "secure.private":
			ans = []any{}
		case "secure.dkim":
			ans = dkimAnswer{OK: arg.(secureArg).Name == "signed.example"}
		case "secure.roots":
			ans = [][]byte{}
		}
		b, _ := json.Marshal(ans)
		return json.Unmarshal(b, out)
	}}
	c := newCachedKeys(remote, func() (uint64, bool) { return gen, up })
	ctx := context.Background()
	n := func(op string) int { mu.Lock(); defer mu.Unlock(); return calls[op] }
	for range 3 {
		c.Managed(ctx, "example.com")
		c.Policy(ctx, "alice@example.com")
		c.Public(ctx, "bob@partner.org")
		c.Roots(ctx)
		c.Private(ctx, "alice@example.com")
		c.DKIM(ctx, "example.com")
		c.DKIM(ctx, "signed.example")
	}
	for op, want := range map[string]int{"secure.managed": 1, "secure.policy": 1, "secure.public": 1, "secure.roots": 1, "secure.private": 3, "secure.dkim": 1 + 3} {
		if got := n(op); got != want {
			t.Errorf("%s: %d calls to the backend, want %d", op, got, want)
		}
	}
	gen++ // a change reached the frontend
	c.Managed(ctx, "example.com")
	if n("secure.managed") != 2 {
		t.Errorf("after a change: %d calls, want 2", n("secure.managed"))
	}
	up = false // no sync session: nothing is taken from the cache
	c.Managed(ctx, "example.com")
	c.Managed(ctx, "example.com")
	if n("secure.managed") != 4 {
		t.Errorf("without a session: %d calls, want 4", n("secure.managed"))
	}
	up = true
	for i := range cacheMax + 10 {
		c.Managed(ctx, fmt.Sprintf("d%d.example", i))
	}
	c.mu.Lock()
	size := len(c.managed)
	c.mu.Unlock()
	if size > cacheMax+1 {
		t.Errorf("the cache holds %d answers, bound %d", size, cacheMax)
	}
}
