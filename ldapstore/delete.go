package ldapstore

import (
	"context"
	"encoding/binary"

	"github.com/google/uuid"

	"postern/ldapstore/csn"
)

// Delete removes the leaf entry dn (RFC 4511 §4.8) and leaves a tombstone.
func (s *Store) Delete(ctx context.Context, dn string, by string) error {
	if err := s.writable(); err != nil {
		return err
	}
	t, err := s.resolve(dn, true)
	if err != nil {
		return err
	}
	return s.submit(ctx, false, func(w *wtx) error { return w.delete(t, csn.CSN{}) })
}

// delete removes the entry at t. A zero c means a new CSN.
func (w *wtx) delete(t *target, c csn.CSN) error {
	b := w.buckets()
	id, r, err := loadKey(b, t.key)
	if err != nil {
		return err
	}
	if r == nil {
		return noSuchObject(b, t.rdns)
	}
	if hasChildren(b, id[:]) {
		return Errorf(NotAllowedOnNonLeaf, "subordinate objects must be deleted first")
	}
	if c.IsZero() {
		c = w.s.gen.Next()
	} else {
		w.s.gen.Observe(c)
	}
	w.removeEntry(b, id, r, c)
	return w.err
}

// removeEntry deletes an entry's record and index keys and writes its
// tombstone and changelog record.
func (w *wtx) removeEntry(b buckets, id uuid.UUID, r *record, c csn.CSN) {
	w.del(b.entries, id[:])
	w.del(b.dn, []byte(r.key))
	w.del(b.children, childKey(r.parent, id))
	w.updateIndexes(b, id, r.entry, nil)
	w.put(b.tombstones, id[:], encodeTombstone(c, w.s.now().Unix(), r.entry.DN))
	w.logChange(b, c, ChangeDelete, id)
	w.count--
}

// A tombstone is csn.Key(18) + unix seconds of the delete (8) + DN.
func encodeTombstone(c csn.CSN, unix int64, dn string) []byte {
	v := make([]byte, 0, csn.KeyLen+8+len(dn))
	v = c.AppendKey(v)
	v = binary.BigEndian.AppendUint64(v, uint64(unix))
	return append(v, dn...)
}

// Tombstone records a deleted entry (kept TombstoneRetention).
type Tombstone struct {
	EntryUUID string
	DN        string
	CSN       csn.CSN
	Deleted   int64 // unix seconds
}

func decodeTombstone(id, v []byte) (Tombstone, error) {
	if len(v) < csn.KeyLen+8 || len(id) != 16 {
		return Tombstone{}, errCorrupt
	}
	c, err := csn.FromKey(v[:csn.KeyLen])
	if err != nil {
		return Tombstone{}, err
	}
	u, _ := uuid.FromBytes(id)
	return Tombstone{
		EntryUUID: u.String(),
		CSN:       c,
		Deleted:   int64(binary.BigEndian.Uint64(v[csn.KeyLen:])),
		DN:        string(v[csn.KeyLen+8:]),
	}, nil
}
