package ldapstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"postern/ldapstore/csn"
)

// Change is one record of the changelog.
type Change struct {
	CSN       csn.CSN
	Kind      ChangeKind
	EntryUUID string
	// DN is the entry's DN when the change is read: its current DN (which
	// a later rename may have changed since), or for a deleted entry the
	// DN its tombstone keeps ("" once the tombstone is gone). The
	// changelog itself stores only the kind and the entryUUID.
	DN string
}

// ErrChangelogTrimmed is returned by ChangesSince when changes newer than
// since have already been pruned: the consumer needs a full refresh
// (RFC 4533 §3.4's refresh with present phase).
var ErrChangelogTrimmed = errors.New("ldapstore: changelog trimmed past the requested state")

// Notify returns a channel that receives a (coalesced) signal after each
// commit that changed the directory, and a function to stop it. The channel
// is closed when the store closes.
func (s *Store) Notify() (<-chan struct{}, func()) { return s.NotifyExcept(-1) }

// NotifyExcept is Notify without the signals of commits whose every
// change carries server ID sid (sid < 0: none left out): a provider serving
// the member whose server ID is sid sends it none of those changes, and
// need not wake for the stream it applies from that member.
func (s *Store) NotifyExcept(sid int) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		close(ch)
		return ch, func() {}
	}
	s.subSeq++
	id := s.subSeq
	s.subs[id] = subscriber{ch: ch, except: sid}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		if _, ok := s.subs[id]; ok {
			delete(s.subs, id)
			close(ch)
		}
		s.mu.Unlock()
	}
}

// subscriber is one Notify channel.
type subscriber struct {
	ch     chan struct{}
	except int // server ID whose changes alone do not signal; -1: none
}

// signal wakes the subscriber unless every CSN of changed (the commit's
// context CSN changes; nil: signal anyway) carries its except server ID.
func (sub subscriber) signal(changed csn.Vector) {
	if sub.except >= 0 && len(changed) > 0 {
		only := true
		for sid := range changed {
			if int(sid) != sub.except {
				only = false
				break
			}
		}
		if only {
			return
		}
	}
	select {
	case sub.ch <- struct{}{}:
	default:
	}
}

// ChangesSince calls fn, in CSN order, for every changelog record newer than
// what since holds for the record's server ID (a server ID missing from
// since means all of its changes). It returns ErrChangelogTrimmed when
// pruning removed records since still needs.
func (s *Store) ChangesSince(ctx context.Context, since csn.Vector, fn func(Change) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	s.mu.Lock()
	pruned := s.pruned.Clone()
	local := s.ctxCSN.Clone()
	s.mu.Unlock()
	for sid, p := range pruned {
		if have, ok := since[sid]; !ok || have.Compare(p) < 0 {
			return ErrChangelogTrimmed
		}
	}
	// Start at the oldest CSN since holds for a server ID it is behind on,
	// when it covers every server ID present here; otherwise at the
	// beginning. A server ID whose newest change since already has does
	// not hold the start back: the changelog is one keyspace in CSN (time)
	// order, and a quiet server ID would otherwise make every call scan
	// everything written since its last change.
	var start []byte
	if len(since) > 0 {
		covered := true
		var min csn.CSN
		for sid, have := range local {
			got, ok := since[sid]
			if !ok {
				covered = false
				break
			}
			if got.Compare(have) >= 0 {
				continue
			}
			if min.IsZero() || got.Compare(min) < 0 {
				min = got
			}
		}
		if covered {
			if min.IsZero() {
				// Up to date with every server ID. A commit after the
				// snapshot of local signals Notify again.
				return nil
			}
			start = min.Key()
		}
	}
	var batch []Change
	for {
		batch = batch[:0]
		err := s.db.View(func(tx *bolt.Tx) error {
			cur := tx.Bucket(bChangelog).Cursor()
			entries, tombs := tx.Bucket(bEntries), tx.Bucket(bTombstones)
			var k, v []byte
			if start == nil {
				k, v = cur.First()
			} else {
				k, v = cur.Seek(start)
			}
			for ; k != nil && len(batch) < searchChunk; k, v = cur.Next() {
				ch, err := decodeChange(k, v)
				if err != nil {
					return err
				}
				start = append(append(start[:0], k...), 0) // resume after k
				if since.Covers(ch.CSN) {
					continue
				}
				ch.DN = changeDN(entries, tombs, ch.Kind, v[1:17])
				batch = append(batch, ch)
			}
			if k == nil {
				start = nil
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, ch := range batch {
			if err := fn(ch); err != nil {
				return err
			}
		}
		if start == nil {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return ctxError(ctx)
		}
	}
}

// decodeChange decodes a changelog record (kind(1) + entryUUID(16)),
// without its DN.
func decodeChange(k, v []byte) (Change, error) {
	c, err := csn.FromKey(k)
	if err != nil || len(v) != 17 {
		return Change{}, errCorrupt
	}
	u, _ := uuid.FromBytes(v[1:17])
	return Change{CSN: c, Kind: ChangeKind(v[0]), EntryUUID: u.String()}, nil
}

// changeDN returns the DN of the entry id a change names: from its record,
// or from its tombstone when it is deleted (a delete's own record looks at
// the tombstone first: the entryUUID may have been added again since).
func changeDN(entries, tombs *bolt.Bucket, kind ChangeKind, id []byte) string {
	if kind != ChangeDelete {
		if buf := entries.Get(id); buf != nil {
			if d, err := recordDN(buf); err == nil {
				return d
			}
		}
	}
	if tv := tombs.Get(id); len(tv) >= csn.KeyLen+8 {
		return string(tv[csn.KeyLen+8:])
	}
	if buf := entries.Get(id); buf != nil {
		if d, err := recordDN(buf); err == nil {
			return d
		}
	}
	return ""
}

// Tombstone returns the tombstone of a deleted entry, if one is kept.
func (s *Store) Tombstone(ctx context.Context, entryUUID string) (Tombstone, bool, error) {
	u, err := uuid.Parse(entryUUID)
	if err != nil {
		return Tombstone{}, false, nil
	}
	var t Tombstone
	found := false
	err = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bTombstones).Get(u[:])
		if v == nil {
			return nil
		}
		found = true
		t, err = decodeTombstone(u[:], v)
		return err
	})
	return t, found, err
}

// pruneBatch is how many changelog records one pruning transaction removes.
const pruneBatch = 1000

// pruner removes changelog records and tombstones older than the retention,
// at start and every PruneInterval.
func (s *Store) pruner() {
	defer s.wg.Done()
	tick := time.NewTicker(s.opts.PruneInterval)
	defer tick.Stop()
	for {
		if n, err := s.Prune(); err != nil {
			s.log.Error("ldapstore: prune", errAttr(err))
		} else if n > 0 {
			s.log.Info("ldapstore: pruned changelog", "records", n)
		}
		select {
		case <-s.quit:
			return
		case <-tick.C:
		}
	}
}

// Prune removes changelog records (and the tombstones of deletes among them)
// older than TombstoneRetention, in batches, and returns how many records
// it removed.
func (s *Store) Prune() (int, error) {
	cutoff := s.now().Add(-s.opts.TombstoneRetention)
	limit := csn.CSN{Time: cutoff.UTC()}.Key()
	total := 0
	for {
		select {
		case <-s.quit:
			return total, nil
		default:
		}
		n := 0
		newPruned := csn.Vector{}
		err := s.db.Update(func(tx *bolt.Tx) error {
			b := s.writeBuckets(tx)
			cur := b.changelog.Cursor()
			var dels [][]byte
			for k, v := cur.First(); k != nil && bytes.Compare(k, limit) < 0 && len(dels) < pruneBatch; k, v = cur.Next() {
				ch, err := decodeChange(k, v)
				if err != nil {
					return err
				}
				if ch.Kind == ChangeDelete {
					if tv := b.tombstones.Get(v[1:17]); tv != nil && bytes.Equal(tv[:csn.KeyLen], k) {
						if err := b.tombstones.Delete(v[1:17]); err != nil {
							return err
						}
					}
				}
				dels = append(dels, append([]byte(nil), k...))
				newPruned.Update(ch.CSN)
			}
			for _, k := range dels {
				if err := b.changelog.Delete(k); err != nil {
					return err
				}
			}
			n = len(dels)
			if n == 0 {
				return nil
			}
			s.mu.Lock()
			vec := s.pruned.Clone()
			s.mu.Unlock()
			for _, c := range newPruned {
				vec.Update(c)
			}
			return tx.Bucket(bMeta).Put(mPruned, encodeVector(vec))
		})
		if err != nil {
			return total, fmt.Errorf("ldapstore: prune: %w", err)
		}
		s.mu.Lock()
		for _, c := range newPruned {
			s.pruned.Update(c)
		}
		s.mu.Unlock()
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}
