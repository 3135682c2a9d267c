package ldapstore

import (
	bolt "go.etcd.io/bbolt"

	"postern/ldapstore/csn"
)

// A store can go back in time: an admin restores an older copy of its
// file. Its peers then hold changes of its own server ID that it lacks,
// and replication must bring them back (package replication asks for its
// own changes from the context CSN it had when it was opened, and serves
// no consumer while it knows of a lost change). These are the store's
// side of that.

// OpenedContext returns the context CSN the store had when it was opened:
// how far it held its own changes before this process made any.
func (s *Store) OpenedContext() csn.Vector {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.openedCtx.Clone()
}

// HasChange reports whether the changelog holds a record at c.
func (s *Store) HasChange(c csn.CSN) bool {
	if s.closed.Load() {
		return false
	}
	found := false
	s.db.View(func(tx *bolt.Tx) error {
		found = tx.Bucket(bChangelog).Get(c.Key()) != nil
		return nil
	})
	return found
}

// NoteLostChange records that a peer holds c, a change of this store's own
// server ID, and reports whether this store has lost it: c is newer than
// what pruning removed and the changelog holds no record of it (the store
// was restored from a copy older than c).
func (s *Store) NoteLostChange(c csn.CSN) bool {
	if int(c.SID) != s.ServerID() || c.IsZero() {
		return false
	}
	s.mu.Lock()
	known := s.pruned.Covers(c) || c.Compare(s.recovered) <= 0
	s.mu.Unlock()
	if known || s.HasChange(c) {
		return false
	}
	s.mu.Lock()
	if c.Compare(s.lost) > 0 {
		s.lost = c
	}
	s.mu.Unlock()
	return true
}

// LostChange returns the newest change of this store's own server ID that a
// peer was seen to hold and this store lacks, until replication has
// brought it back (then it reports false).
func (s *Store) LostChange() (csn.CSN, bool) {
	s.mu.Lock()
	c := s.lost
	s.mu.Unlock()
	if c.IsZero() {
		return c, false
	}
	s.mu.Lock()
	back := c.Compare(s.recovered) <= 0
	s.mu.Unlock()
	if back || s.HasChange(c) {
		s.mu.Lock()
		if s.lost == c {
			s.lost = csn.CSN{}
		}
		s.mu.Unlock()
		return csn.CSN{}, false
	}
	return c, true
}

// NoteRecovered records that replication has brought back this store's
// own changes up to c: a provider whose context CSN for this store's
// server ID was c has sent, in a refresh now applied, the current state of
// every entry this store changed after the context CSN it had when it was
// opened. A change superseded since comes back as its newer state, so the
// changelog may never hold its own record again: up to c nothing counts
// as lost.
func (s *Store) NoteRecovered(c csn.CSN) {
	if int(c.SID) != s.ServerID() {
		return
	}
	s.mu.Lock()
	if c.Compare(s.recovered) > 0 {
		s.recovered = c
	}
	s.mu.Unlock()
}
