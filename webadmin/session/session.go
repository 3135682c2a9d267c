// Package session keeps the web menu's login sessions in memory, with an
// idle and an absolute timeout, and throttles failed logins per client IP.
// It knows nothing of HTTP routes or pages: webadmin sets the cookie and
// asks it whether a session ID is valid. Sessions do not survive a restart
// of the appliance (log in again).
package session

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"
)

// Default timeouts.
const (
	DefaultIdle     = 30 * time.Minute
	DefaultAbsolute = 8 * time.Hour
)

// Session is one logged-in browser.
type Session struct {
	ID       string
	Created  time.Time
	LastSeen time.Time
	ClientIP string

	flash, flashKind string
}

// Store holds the sessions. The zero value is not usable: use NewStore.
type Store struct {
	idle, absolute time.Duration
	now            func() time.Time

	mu       sync.Mutex
	sessions map[string]*Session
}

// NewStore returns a store whose sessions end after idle without a request
// or absolute after the login, whichever comes first. now is the clock
// (time.Now when nil); zero durations take the defaults.
func NewStore(idle, absolute time.Duration, now func() time.Time) *Store {
	if idle <= 0 {
		idle = DefaultIdle
	}
	if absolute <= 0 {
		absolute = DefaultAbsolute
	}
	if now == nil {
		now = time.Now
	}
	return &Store{idle: idle, absolute: absolute, now: now, sessions: map[string]*Session{}}
}

// Create starts a session for a client and returns it; its ID is 256
// random bits.
func (s *Store) Create(clientIP string) *Session {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand panics rather)
	now := s.now()
	ss := &Session{ID: base64.RawURLEncoding.EncodeToString(b), Created: now, LastSeen: now, ClientIP: clientIP}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(now)
	s.sessions[ss.ID] = ss
	return ss
}

// Get returns the session with this ID and marks it used, or false when
// there is none or it has expired (then it is deleted).
func (s *Store) Get(id string) (Session, bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[id]
	if !ok {
		return Session{}, false
	}
	if s.expired(ss, now) {
		delete(s.sessions, id)
		return Session{}, false
	}
	ss.LastSeen = now
	return *ss, true
}

// Peek is Get without marking the session used: the menu's background
// refreshes do not keep an unattended browser logged in.
func (s *Store) Peek(id string) (Session, bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[id]
	if !ok || s.expired(ss, now) {
		return Session{}, false
	}
	return *ss, true
}

// SetFlash keeps a one-time message for the session's next page (kind
// "ok" or "error").
func (s *Store) SetFlash(id, kind, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss, ok := s.sessions[id]; ok {
		ss.flash, ss.flashKind = msg, kind
	}
}

// TakeFlash returns and clears the session's message.
func (s *Store) TakeFlash(id string) (kind, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss, ok := s.sessions[id]; ok {
		kind, msg = ss.flashKind, ss.flash
		ss.flash, ss.flashKind = "", ""
	}
	return kind, msg
}

// Delete ends a session (logout).
func (s *Store) Delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, id)
}

// Len returns how many sessions are live.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(s.now())
	return len(s.sessions)
}

func (s *Store) expired(ss *Session, now time.Time) bool {
	return now.Sub(ss.LastSeen) >= s.idle || now.Sub(ss.Created) >= s.absolute
}

func (s *Store) expireLocked(now time.Time) {
	for id, ss := range s.sessions {
		if s.expired(ss, now) {
			delete(s.sessions, id)
		}
	}
}
