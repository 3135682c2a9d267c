package session

import (
	"sync"
	"time"
)

// Throttle limits failed logins per client IP with a growing delay: after
// n failures in a row, the next attempt is refused until base·2^(n-1) has
// passed since the last failure (capped at max). A success clears the
// IP's record; records older than max are forgotten.
type Throttle struct {
	base, max time.Duration
	now       func() time.Time

	mu  sync.Mutex
	ips map[string]*failures
}

type failures struct {
	n    int
	last time.Time
}

// DefaultBase and DefaultMax are the production delays.
const (
	DefaultBase = time.Second
	DefaultMax  = 5 * time.Minute
)

// NewThrottle returns a throttle; zero durations take the defaults, a nil
// clock is time.Now.
func NewThrottle(base, max time.Duration, now func() time.Time) *Throttle {
	if base <= 0 {
		base = DefaultBase
	}
	if max <= 0 {
		max = DefaultMax
	}
	if now == nil {
		now = time.Now
	}
	return &Throttle{base: base, max: max, now: now, ips: map[string]*failures{}}
}

// Wait returns how long the IP must still wait before its next attempt
// (0: it may try now).
func (t *Throttle) Wait(ip string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, ok := t.ips[ip]
	if !ok {
		return 0
	}
	if left := f.last.Add(t.delay(f.n)).Sub(t.now()); left > 0 {
		return left
	}
	return 0
}

// Fail records a failed attempt and returns the delay the IP now has to
// wait.
func (t *Throttle) Fail(ip string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	for k, f := range t.ips {
		if now.Sub(f.last) > t.max {
			delete(t.ips, k)
		}
	}
	f, ok := t.ips[ip]
	if !ok {
		f = &failures{}
		t.ips[ip] = f
	}
	f.n++
	f.last = now
	return t.delay(f.n)
}

// Succeed clears the IP's failures.
func (t *Throttle) Succeed(ip string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.ips, ip)
}

func (t *Throttle) delay(n int) time.Duration {
	d := t.base
	for i := 1; i < n && d < t.max; i++ {
		d *= 2
	}
	return min(d, t.max)
}
