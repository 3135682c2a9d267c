package ldapstore

import (
	"bytes"
	"context"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"postern/ldapstore/csn"
)

// SyncItem names one entry of a Snapshot.
type SyncItem struct {
	EntryUUID uuid.UUID
	CSN       csn.CSN
}

// Snapshot returns, from one read transaction, the entryUUID and entryCSN
// of every entry at or below base (parents before their subordinates) and
// the context CSN of that same state. Replication uses it for a present
// phase (RFC 4533 §3.3.1): the provider lists what it holds, the consumer
// what it may have to delete. It costs a few dozen bytes per entry.
func (s *Store) Snapshot(ctx context.Context, base string) ([]SyncItem, csn.Vector, error) {
	if s.closed.Load() {
		return nil, nil, ErrClosed
	}
	t, err := s.resolveBase(base)
	if err != nil {
		return nil, nil, err
	}
	var items []SyncItem
	var vec csn.Vector
	err = s.db.View(func(tx *bolt.Tx) error {
		if vec, err = decodeVector(tx.Bucket(bMeta).Get(mCtxCSN)); err != nil {
			return err
		}
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
			var id uuid.UUID
			copy(id[:], v)
			items = append(items, SyncItem{EntryUUID: id, CSN: c})
		}
		return nil
	})
	return items, vec, err
}
