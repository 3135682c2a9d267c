package ldapstore

import (
	"bytes"
	"strings"

	"github.com/google/uuid"

	"postern/ldapstore/csn"
	"postern/ldapstore/dn"
)

// Where replication puts entries it cannot put where they were meant to go
// (ApplyBatch's rules). Everything here runs inside a write transaction.

// LostFoundRDN is the RDN, below the suffix, of the entry that holds the
// entries whose parent was deleted on another member.
const LostFoundRDN = `ou=lost\+found`

// lostFoundUUID is the lost+found entry's entryUUID: a name-based (v5)
// UUID of the suffix, the same on every member.
func lostFoundUUID(s *Store) uuid.UUID {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte("postern lost+found "+string(s.sufKey)))
}

// lostFound returns the lost+found entry's UUID and DN, creating it when
// missing.
func (w *wtx) lostFound(b buckets) (uuid.UUID, string, error) {
	s := w.s
	d := LostFoundRDN + "," + s.suffix
	t, err := s.resolve(d, true)
	if err != nil {
		return uuid.UUID{}, "", err
	}
	if v := b.dn.Get(t.key); v != nil {
		var id uuid.UUID
		copy(id[:], v)
		return id, d, nil
	}
	// Every member makes the same entry (same entryUUID, same attributes)
	// with a CSN of its own; where two made it, the newer state wins
	// everywhere like any other.
	id := lostFoundUUID(s)
	c := s.gen.Next()
	ts := genTime(c)
	e := &Entry{DN: d, Attributes: []Attribute{
		{Type: "objectClass", Vals: []string{"top", "organizationalUnit"}},
		{Type: "ou", Vals: []string{"lost+found"}},
		{Type: "description", Vals: []string{"entries whose parent was deleted on another cluster member"}},
		{Type: "entryUUID", Vals: []string{id.String()}},
		{Type: "entryCSN", Vals: []string{c.String()}},
		{Type: "creatorsName", Vals: []string{s.suffix}},
		{Type: "modifiersName", Vals: []string{s.suffix}},
		{Type: "createTimestamp", Vals: []string{ts}},
		{Type: "modifyTimestamp", Vals: []string{ts}},
	}}
	r, err := s.prepareAdd(e, true)
	if err != nil {
		return uuid.UUID{}, "", err
	}
	if err := w.add(r, s.suffix); err != nil {
		return uuid.UUID{}, "", err
	}
	return id, d, nil
}

// markConflict marks e as a conflict or lost+found entry meant to be at
// DN want: the auxiliary class posternConflict with posternReplConflict.
func markConflict(e *Entry, want string) {
	oc := e.Get("objectClass")
	has := false
	for _, v := range oc {
		if strings.EqualFold(v, "posternConflict") {
			has = true
		}
	}
	if !has {
		e.Set("objectClass", append(oc[:len(oc):len(oc)], "posternConflict")...)
	}
	e.Set("posternReplConflict", want)
}

// asideTarget returns where entry id goes when it cannot keep DN d:
// "entryUUID=<id>+<rdn of d>" (without any entryUUID the RDN held) below
// parentDN, or below d's parent when parentDN is "".
func (s *Store) asideTarget(id uuid.UUID, d, parentDN string) (*target, error) {
	p, err := dn.Parse(d)
	if err != nil || len(p) == 0 {
		return nil, Errorf(InvalidDNSyntax, "invalid DN %q", d)
	}
	rdn := dn.RDN{{Type: "entryUUID", Value: id.String()}}
	for _, ava := range p[0] {
		if at := s.sch.Attr(ava.Type); at != nil && at.Name() == "entryUUID" {
			continue
		}
		rdn = append(rdn, ava)
	}
	if parentDN == "" {
		parentDN = p[1:].String()
	}
	return s.resolve(rdn.String()+","+parentDN, true)
}

// moveAside moves entry id (and its subtree) to its conflict DN with a new
// CSN of this server, which replicates like any change.
func (w *wtx) moveAside(b buckets, id uuid.UUID) error {
	rec, err := w.record(b, id)
	if err != nil {
		return err
	}
	t, err := w.s.asideTarget(id, rec.entry.DN, "")
	if err != nil {
		return err
	}
	if b.dn.Get(t.key) != nil {
		return Errorf(EntryAlreadyExists, "conflict entry %s already exists", t.dn)
	}
	c := w.s.gen.Next()
	e := rec.entry.Clone()
	markConflict(e, e.DN)
	e.DN = t.dn
	e.Set("entryCSN", c.String())
	e.Set("modifyTimestamp", genTime(c))
	if err := w.moveSubtree(b, id, rec, t.key, e.DN, rec.parent); err != nil {
		return err
	}
	w.put(b.entries, id[:], w.encodeRecord(rec.parent, t.key, id[:], e))
	w.updateIndexes(b, id, rec.entry, e)
	w.logChange(b, c, ChangeModDN, id)
	return w.err
}

func (w *wtx) record(b buckets, id uuid.UUID) (*record, error) {
	buf := b.entries.Get(id[:])
	if buf == nil {
		return nil, errCorrupt
	}
	return b.decodeRecord(id[:], buf, 0)
}

type subEntry struct{ key, id []byte }

// subordinates returns the dn keys and UUIDs below key, parents first.
func subordinates(b buckets, key string) []subEntry {
	var subs []subEntry
	prefix := []byte(key + "\x00")
	cur := b.dn.Cursor()
	for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
		subs = append(subs, subEntry{append([]byte(nil), k...), append([]byte(nil), v...)})
	}
	return subs
}

// moveSubtree moves entry id from old's place to newKey/newDN below
// newParent, rewriting its subordinates' DNs; the caller writes id's own
// record.
func (w *wtx) moveSubtree(b buckets, id uuid.UUID, old *record, newKey []byte, newDN string, newParent uuid.UUID) error {
	subs := subordinates(b, old.key)
	w.del(b.dn, []byte(old.key))
	w.put(b.dn, newKey, id[:])
	if newParent != old.parent {
		w.del(b.children, childKey(old.parent, id))
		w.put(b.children, childKey(newParent, id), nil)
	}
	if len(subs) == 0 {
		return w.err
	}
	od, err := dn.Parse(old.entry.DN)
	if err != nil {
		return errCorrupt
	}
	for _, sb := range subs {
		buf := b.entries.Get(sb.id)
		if buf == nil {
			return errCorrupt
		}
		sr, err := b.decodeRecord(sb.id, buf, 0)
		if err != nil {
			return err
		}
		cd, err := dn.Parse(sr.entry.DN)
		if err != nil || len(cd) <= len(od) {
			return errCorrupt
		}
		sr.entry.DN = cd[:len(cd)-len(od)].String() + "," + newDN
		nk := append(append([]byte(nil), newKey...), sb.key[len(old.key):]...)
		w.del(b.dn, sb.key)
		w.put(b.dn, nk, sb.id)
		w.put(b.entries, sb.id, w.encodeRecord(sr.parent, nk, sb.id, sr.entry))
	}
	return w.err
}

// orphanSubtree moves every subordinate of rec (whose entry is being
// deleted) to lost+found, flat, keeping their CSNs: a member that receives
// them after the delete puts each there by the parent-missing rule, so all
// members end alike. It returns how many it moved.
func (w *wtx) orphanSubtree(b buckets, rec *record) (int, error) {
	subs := subordinates(b, rec.key)
	lf, lfDN, err := w.lostFound(b)
	if err != nil {
		return 0, err
	}
	for _, sb := range subs {
		var sid uuid.UUID
		copy(sid[:], sb.id)
		sr, err := w.record(b, sid)
		if err != nil {
			return 0, err
		}
		t, err := w.s.asideTarget(sid, sr.entry.DN, lfDN)
		if err != nil {
			return 0, err
		}
		e := sr.entry.Clone()
		markConflict(e, e.DN)
		e.DN = t.dn
		w.del(b.dn, sb.key)
		w.put(b.dn, t.key, sb.id)
		w.del(b.children, childKey(sr.parent, sid))
		w.put(b.children, childKey(lf, sid), nil)
		w.put(b.entries, sb.id, w.encodeRecord(lf, t.key, sb.id, e))
	}
	return len(subs), w.err
}

// suffixTakeover replaces the local suffix entry loser by the replicated
// one (whose entryUUID wins): loser's children move below winner and loser
// is deleted at its own CSN. The caller then writes winner at the suffix.
func (w *wtx) suffixTakeover(b buckets, loser, winner uuid.UUID) error {
	rec, err := w.record(b, loser)
	if err != nil {
		return err
	}
	var kids [][]byte
	cur := b.children.Cursor()
	for k, _ := cur.Seek(loser[:]); k != nil && bytes.HasPrefix(k, loser[:]); k, _ = cur.Next() {
		kids = append(kids, append([]byte(nil), k...))
	}
	for _, k := range kids {
		var kid uuid.UUID
		copy(kid[:], k[16:])
		kr, err := w.record(b, kid)
		if err != nil {
			return err
		}
		w.del(b.children, k)
		w.put(b.children, childKey(winner, kid), nil)
		w.put(b.entries, kid[:], w.encodeRecord(winner, []byte(kr.key), kid[:], kr.entry))
	}
	c, err := csn.Parse(rec.entry.First("entryCSN"))
	if err != nil {
		return errCorrupt
	}
	w.removeEntry(b, loser, rec, c)
	return w.err
}
