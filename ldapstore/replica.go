package ldapstore

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"postern/ldapstore/csn"
)

// ErrStale is returned by ApplyEntry and ApplyDelete when the store already
// holds a newer state of the entry (a newer entryCSN or tombstone): last
// writer wins, and a delete beats every older change.
var ErrStale = errors.New("ldapstore: change older than the stored state")

// ApplyEntry is the internal write path of the replication engine. It
// stores e as the complete state of the entry named by e's entryUUID,
// keeping the given entryUUID, entryCSN, createTimestamp, modifyTimestamp,
// creatorsName and modifiersName (users can never set them through Add or
// Modify). It adds the entry, replaces its attributes, or renames/moves it
// when its DN changed. It returns ErrStale when the stored entry or its
// tombstone carries a CSN not older than e's entryCSN. The entry is checked
// against the schema like any other.
func (s *Store) ApplyEntry(ctx context.Context, e *Entry) error {
	if e == nil || e.First("entryUUID") == "" || e.First("entryCSN") == "" {
		return Errorf(ProtocolError, "replicated entry needs entryUUID and entryCSN")
	}
	id, err := uuid.Parse(e.First("entryUUID"))
	if err != nil {
		return Errorf(InvalidAttributeSyntax, "entryUUID: invalid")
	}
	c, err := csn.Parse(e.First("entryCSN"))
	if err != nil {
		return Errorf(InvalidAttributeSyntax, "entryCSN: invalid")
	}
	r, err := s.prepareAdd(e, true)
	if err != nil {
		return err
	}
	return s.submit(ctx, false, func(w *wtx) error { return w.applyEntry(r, id, c) })
}

func (w *wtx) applyEntry(r *addReq, id uuid.UUID, c csn.CSN) error {
	b := w.buckets()
	if tv := b.tombstones.Get(id[:]); tv != nil {
		if tc, err := csn.FromKey(tv[:csn.KeyLen]); err == nil && tc.Compare(c) >= 0 {
			return ErrStale
		}
	}
	buf := b.entries.Get(id[:])
	if buf == nil {
		return w.add(r, r.e.First("creatorsName"))
	}
	old, err := b.decodeRecord(id[:], buf, 0)
	if err != nil {
		return err
	}
	if oc, err := csn.Parse(old.entry.First("entryCSN")); err == nil && oc.Compare(c) >= 0 {
		return ErrStale
	}
	w.s.gen.Observe(c)
	e := r.e.Clone()
	e.Set("structuralObjectClass", r.structural)
	parent := old.parent
	key := []byte(old.key)
	kind := ChangeModify
	if string(r.t.key) != old.key {
		// renamed or moved: the new parent must exist and the name be free
		kind = ChangeModDN
		if other := b.dn.Get(r.t.key); other != nil {
			return Errorf(EntryAlreadyExists, "Already exists")
		}
		if hasChildren(b, id[:]) {
			return Errorf(NotAllowedOnNonLeaf, "replicated rename of an entry with subordinates")
		}
		if !r.t.isSuffix(w.s) {
			pv := b.dn.Get(r.t.parentKey())
			if pv == nil {
				return noSuchObject(b, r.t.rdns)
			}
			copy(parent[:], pv)
		}
		key = r.t.key
		w.del(b.dn, []byte(old.key))
		w.put(b.dn, key, id[:])
		w.del(b.children, childKey(old.parent, id))
		w.put(b.children, childKey(parent, id), nil)
	}
	w.put(b.entries, id[:], w.encodeRecord(parent, key, id[:], e))
	w.updateIndexes(b, id, old.entry, e)
	w.logChange(b, c, kind, id)
	return w.err
}

// ApplyDelete is the internal delete of the replication engine: it deletes
// the entry with this entryUUID at CSN c and keeps c in its tombstone. It
// returns ErrStale when the stored entry is newer than c, and nil when the
// entry is already gone (a tombstone is written so that older changes stay
// refused).
func (s *Store) ApplyDelete(ctx context.Context, entryUUID string, c csn.CSN) error {
	id, err := uuid.Parse(entryUUID)
	if err != nil {
		return Errorf(InvalidAttributeSyntax, "entryUUID: invalid")
	}
	return s.submit(ctx, false, func(w *wtx) error {
		b := w.buckets()
		buf := b.entries.Get(id[:])
		if buf == nil {
			if tv := b.tombstones.Get(id[:]); tv != nil {
				if tc, err := csn.FromKey(tv[:csn.KeyLen]); err == nil && tc.Compare(c) >= 0 {
					return nil
				}
			}
			w.s.gen.Observe(c)
			w.put(b.tombstones, id[:], encodeTombstone(c, w.s.now().Unix(), ""))
			w.ctx.Update(c)
			w.changes++
			return w.err
		}
		r, err := b.decodeRecord(id[:], buf, 0)
		if err != nil {
			return err
		}
		if oc, err := csn.Parse(r.entry.First("entryCSN")); err == nil && oc.Compare(c) >= 0 {
			return ErrStale
		}
		if hasChildren(b, id[:]) {
			return Errorf(NotAllowedOnNonLeaf, "subordinate objects must be deleted first")
		}
		w.s.gen.Observe(c)
		w.removeEntry(b, id, r, c)
		return w.err
	})
}
