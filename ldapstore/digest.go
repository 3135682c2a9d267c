package ldapstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"

	bolt "go.etcd.io/bbolt"

	"postern/ldapstore/csn"
)

// DigestState is a compact fingerprint of the directory, for comparing
// members without listing their trees: per server ID (the sid of each
// entry's entryCSN), the number of live entries and the XOR of a hash of
// each one's entryUUID, normalised DN and entryCSN. Two members with the
// same Context and different digests hold different trees (a different
// place or version of an entry written by that server ID); glue entries
// are left out.
type DigestState struct {
	Context csn.Vector
	Digests map[uint16]uint64
	Counts  map[uint16]int
	Entries int
}

// Digest computes the DigestState from one read transaction (every entry
// is read: milliseconds per ten thousand entries).
func (s *Store) Digest(ctx context.Context) (*DigestState, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	d := &DigestState{Digests: map[uint16]uint64{}, Counts: map[uint16]int{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		if d.Context, err = decodeVector(tx.Bucket(bMeta).Get(mCtxCSN)); err != nil {
			return err
		}
		b := s.bucketsOf(tx)
		cur := b.entries.Cursor()
		n := 0
		for k, v := cur.First(); k != nil; k, v = cur.Next() {
			if n++; n%4096 == 0 && ctx.Err() != nil {
				return ctxError(ctx)
			}
			r, err := b.decodeRecord(k, v, 0)
			if err != nil {
				return err
			}
			c, err := csn.Parse(r.entry.First("entryCSN"))
			if err != nil {
				return errCorrupt
			}
			if c == glueCSN {
				continue
			}
			h := sha256.New()
			h.Write(k)
			h.Write([]byte(r.key))
			h.Write(c.Key())
			d.Digests[c.SID] ^= binary.BigEndian.Uint64(h.Sum(nil))
			d.Counts[c.SID]++
			d.Entries++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

var errEnough = errors.New("ldapstore: counted enough")

// CountChangesSince counts the changelog records that since does not
// cover, up to limit: how many changes a member at since lacks.
func (s *Store) CountChangesSince(ctx context.Context, since csn.Vector, limit int) (int, error) {
	n := 0
	err := s.ChangesSince(ctx, since, func(Change) error {
		if n++; n >= limit {
			return errEnough
		}
		return nil
	})
	if errors.Is(err, errEnough) {
		err = nil
	}
	return n, err
}
