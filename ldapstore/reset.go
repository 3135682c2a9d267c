package ldapstore

import (
	"context"
	"fmt"

	"postern/ldapstore/csn"
)

// This file holds what joining and leaving a cluster does to the store
// (package cluster): the joiner's replicated tree is replaced by the
// base's, and its CSNs carry its Cluster No. from then on.

// Reset empties the directory — entries, indexes, changelog, tombstones,
// replication cookies, context CSN — in one transaction, and makes later
// CSNs carry serverID. Unlike Delete it leaves no tombstones and no
// changelog: the discarded entries never existed for any replication peer
// (a joiner's own tree is thrown away before it first replicates). The
// caller then loads the new tree with ApplyBatch.
func (s *Store) Reset(ctx context.Context, serverID int) error {
	if serverID < 1 || serverID > csn.MaxSID {
		return fmt.Errorf("ldapstore: server ID %d out of range 1..%d", serverID, csn.MaxSID)
	}
	err := s.submit(ctx, true, func(w *wtx) error {
		for _, name := range [][]byte{bEntries, bDN, bChildren, bIdx, bChangelog, bTombstones, bReplCookies} {
			if w.tx.Bucket(name) == nil {
				continue
			}
			if err := w.tx.DeleteBucket(name); err != nil {
				return fmt.Errorf("%w: reset %s: %v", errDirty, name, err)
			}
		}
		for _, name := range [][]byte{bEntries, bDN, bChildren, bIdx, bChangelog, bTombstones} {
			if _, err := w.tx.CreateBucket(name); err != nil {
				return fmt.Errorf("%w: reset %s: %v", errDirty, name, err)
			}
		}
		idx := w.tx.Bucket(bIdx)
		for at := range s.indexed {
			if _, err := idx.CreateBucket([]byte(at.Name())); err != nil {
				return fmt.Errorf("%w: reset index %s: %v", errDirty, at.Name(), err)
			}
		}
		meta := w.tx.Bucket(bMeta)
		var zero [8]byte
		for k, v := range map[string][]byte{string(mCount): zero[:], string(mCtxCSN): encodeVector(csn.Vector{}), string(mPruned): encodeVector(csn.Vector{})} {
			if err := meta.Put([]byte(k), v); err != nil {
				return fmt.Errorf("%w: reset meta: %v", errDirty, err)
			}
		}
		w.b = buckets{}
		// Published here, inside the writer: no other write can run
		// between this transaction and the new in-memory state.
		s.count.Store(0)
		s.mu.Lock()
		s.ctxCSN = csn.Vector{}
		s.pruned = csn.Vector{}
		s.mu.Unlock()
		s.gen.SetSID(uint16(serverID))
		return nil
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	for _, sub := range s.subs {
		sub.signal(nil)
	}
	s.mu.Unlock()
	return nil
}

// SetServerID makes later CSNs carry serverID, keeping the data (a member
// leaving the cluster becomes standalone server ID 1 again).
func (s *Store) SetServerID(serverID int) error {
	if serverID < 1 || serverID > csn.MaxSID {
		return fmt.Errorf("ldapstore: server ID %d out of range 1..%d", serverID, csn.MaxSID)
	}
	s.gen.SetSID(uint16(serverID))
	return nil
}
