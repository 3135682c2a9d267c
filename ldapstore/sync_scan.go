package ldapstore

import (
	"bytes"
	"context"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"postern/ldapstore/csn"
)

// SyncItem names one entry of a Snapshot: a live entry with its entryCSN,
// or a deleted one with the CSN of its delete.
type SyncItem struct {
	EntryUUID uuid.UUID
	CSN       csn.CSN
	DN        string // for a deleted entry, the DN its tombstone keeps
}

// SyncSnapshot is one consistent view of the directory for a present phase
// (RFC 4533 §3.3.1) or a comparison of members.
type SyncSnapshot struct {
	// Items are the live entries at or below the base, parents before
	// their subordinates; glue entries (this member's placeholders) are
	// left out.
	Items []SyncItem
	// Deleted are the tombstones kept (deletes within the retention), in
	// no particular order: what this member knows to be deleted.
	Deleted []SyncItem
	// Glue counts the glue entries left out of Items.
	Glue int
	// Context is the context CSN of that state, Pruned the newest CSN per
	// server ID that pruning removed from the changelog and tombstones
	// (Store.Pruned) when the view was taken.
	Context, Pruned csn.Vector
}

// Snapshot returns, from one read transaction, the entryUUID and entryCSN
// of every entry at or below base and the tombstones kept, with the
// context CSN of that same state. Replication uses it for a present phase
// (RFC 4533 §3.3.1): the provider lists what it holds and what it knows to
// be deleted, the consumer what it may have to delete. It costs a few
// dozen bytes per entry.
func (s *Store) Snapshot(ctx context.Context, base string) (*SyncSnapshot, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	t, err := s.resolveBase(base)
	if err != nil {
		return nil, err
	}
	snap := &SyncSnapshot{}
	err = s.db.View(func(tx *bolt.Tx) error {
		if snap.Context, err = decodeVector(tx.Bucket(bMeta).Get(mCtxCSN)); err != nil {
			return err
		}
		s.mu.Lock()
		snap.Pruned = s.pruned.Clone()
		s.mu.Unlock()
		b := s.bucketsOf(tx)
		if b.dn.Get(t.key) == nil {
			return noSuchObject(b, t.rdns)
		}
		prefix := append(append([]byte(nil), t.key...), 0)
		cur := b.dn.Cursor()
		k, v := cur.Seek(t.key)
		for n := 0; k != nil && (bytes.Equal(k, t.key) || bytes.HasPrefix(k, prefix)); k, v = cur.Next() {
			if n++; n%4096 == 0 && ctx.Err() != nil {
				return ctxError(ctx)
			}
			buf := b.entries.Get(v)
			if buf == nil {
				return errCorrupt
			}
			r, err := b.decodeRecord(v, buf, 0)
			if err != nil {
				return err
			}
			c, err := csn.Parse(r.entry.First("entryCSN"))
			if err != nil {
				return errCorrupt
			}
			if c == glueCSN {
				snap.Glue++
				continue
			}
			var id uuid.UUID
			copy(id[:], v)
			snap.Items = append(snap.Items, SyncItem{EntryUUID: id, CSN: c})
		}
		tc := tx.Bucket(bTombstones).Cursor()
		for k, v := tc.First(); k != nil; k, v = tc.Next() {
			ts, err := decodeTombstone(k, v)
			if err != nil {
				return err
			}
			id, _ := uuid.FromBytes(k)
			snap.Deleted = append(snap.Deleted, SyncItem{EntryUUID: id, CSN: ts.CSN, DN: ts.DN})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return snap, nil
}

// Tombstones returns the deletes kept (within the retention), as
// Snapshot's Deleted, without listing the live entries.
func (s *Store) Tombstones(ctx context.Context) ([]SyncItem, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	var out []SyncItem
	err := s.db.View(func(tx *bolt.Tx) error {
		tc := tx.Bucket(bTombstones).Cursor()
		n := 0
		for k, v := tc.First(); k != nil; k, v = tc.Next() {
			if n++; n%4096 == 0 && ctx.Err() != nil {
				return ctxError(ctx)
			}
			ts, err := decodeTombstone(k, v)
			if err != nil {
				return err
			}
			id, _ := uuid.FromBytes(k)
			out = append(out, SyncItem{EntryUUID: id, CSN: ts.CSN, DN: ts.DN})
		}
		return nil
	})
	return out, err
}

// GetForSync returns the entry whose entryUUID is id, as GetByUUID does,
// and the entryUUID of its parent ("" for the suffix entry): what a
// replication provider sends (ReplChange.ParentUUID).
func (s *Store) GetForSync(ctx context.Context, id string) (*Entry, string, error) {
	if s.closed.Load() {
		return nil, "", ErrClosed
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return nil, "", Errorf(NoSuchObject, "no entry with entryUUID %q", id)
	}
	var e *Entry
	parent := ""
	err = s.db.View(func(tx *bolt.Tx) error {
		b := s.bucketsOf(tx)
		buf := b.entries.Get(u[:])
		if buf == nil {
			return Errorf(NoSuchObject, "no entry with entryUUID %s", id)
		}
		r, err := b.decodeRecord(u[:], buf, 2)
		if err != nil {
			return err
		}
		if r.parent != (uuid.UUID{}) {
			parent = r.parent.String()
		}
		e = s.complete(b, u[:], r.entry)
		return nil
	})
	return e, parent, err
}
