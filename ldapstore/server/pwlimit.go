package server

import (
	"context"
	"sync"
	"sync/atomic"

	"postern/ldapstore"
)

// MaxPasswordChecksPerIP bounds the password checks one client address has
// running at once; its further binds wait their turn.
const MaxPasswordChecksPerIP = 2

// pwLimiter bounds the password hashes computed at once. Verifying an
// argon2id hash takes 19 MiB and tens of milliseconds of CPU: unbounded,
// anyone who reaches the port could exhaust the machine's memory with
// concurrent binds, no password needed. Checks beyond the limits wait,
// within the operation's deadline, and are refused with busy after it.
type pwLimiter struct {
	global chan struct{}
	mu     sync.Mutex
	ips    map[string]*ipSlots

	inUse, peak atomic.Int32 // for tests and metrics
}

type ipSlots struct {
	ch    chan struct{}
	users int // holders and waiters; the entry goes when it drops to 0
}

func newPWLimiter(n int) *pwLimiter {
	return &pwLimiter{global: make(chan struct{}, n), ips: map[string]*ipSlots{}}
}

var errPasswordBusy = ldapstore.Errorf(ldapstore.Busy, "too many password checks in progress; try again")

// do runs fn, a password check or hash for client ip, within the limits.
func (l *pwLimiter) do(ctx context.Context, ip string, fn func() error) error {
	l.mu.Lock()
	s := l.ips[ip]
	if s == nil {
		s = &ipSlots{ch: make(chan struct{}, MaxPasswordChecksPerIP)}
		l.ips[ip] = s
	}
	s.users++
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		if s.users--; s.users == 0 {
			delete(l.ips, ip)
		}
		l.mu.Unlock()
	}()
	select {
	case s.ch <- struct{}{}:
	case <-ctx.Done():
		return errPasswordBusy
	}
	defer func() { <-s.ch }()
	select {
	case l.global <- struct{}{}:
	case <-ctx.Done():
		return errPasswordBusy
	}
	defer func() { <-l.global }()
	n := l.inUse.Add(1)
	defer l.inUse.Add(-1)
	for p := l.peak.Load(); n > p && !l.peak.CompareAndSwap(p, n); p = l.peak.Load() {
	}
	return fn()
}
