package ldapstore

import (
	"bytes"
	"strings"
	"time"

	"github.com/google/uuid"

	"postern/ldapstore/csn"
)

// Where a replicated entry goes below its parent (ApplyBatch's placement
// rules), and the glue entries that stand in for parents that have not
// arrived yet. Everything here runs inside a write transaction.

// GlueClass is the structural object class of glue entries (OpenLDAP's
// 1.3.6.1.4.1.4203.666.3.4).
const GlueClass = "glue"

// glueCSN is the entryCSN of every glue entry: older than any real change,
// so the real entry's state always wins, and never logged, so a glue entry
// is never sent to another member.
var glueCSN = csn.CSN{Time: time.Unix(0, 0).UTC()}

// IsGlue reports whether e is a glue entry: a placeholder this member made
// for a parent that replication has not delivered yet.
func IsGlue(e *Entry) bool {
	return e.First("entryCSN") == glueCSN.String() && hasClass(e, GlueClass)
}

func hasClass(e *Entry, class string) bool {
	for _, v := range e.Get("objectClass") {
		if strings.EqualFold(v, class) {
			return true
		}
	}
	return false
}

// placement is where replParent puts an entry: below parent, at t (nil:
// where its DN says).
type placement struct {
	parent    uuid.UUID
	t         *target
	lostFound bool
}

// replParent decides the parent of entry id, whose state names DN t and
// whose provider names hint as its parent (zero: unknown):
//
//   - the hinted parent exists here: below it, wherever it is now, with t's
//     RDN (a rename of the parent the provider had not seen yet moves the
//     entry with it);
//   - the hinted parent was deleted (its tombstone says so), or the entry
//     would land in its own subtree: lost+found;
//   - the parent has not arrived yet: below a glue entry at t's parent DN
//     (with the hinted entryUUID when known, so the parent's arrival is an
//     update of the glue; by DN otherwise).
func (w *wtx) replParent(b buckets, id uuid.UUID, old *record, t *target, hint uuid.UUID, res *ApplyResult) (placement, error) {
	s := w.s
	inOwnSubtree := func(key []byte) bool {
		return old != nil && len(key) > len(old.key) && string(key[:len(old.key)+1]) == old.key+"\x00"
	}
	toLostFound := func() (placement, error) {
		lf, lfDN, err := w.lostFound(b)
		if err != nil {
			return placement{}, err
		}
		nt, err := s.asideTarget(id, t.dn, lfDN)
		if err != nil {
			return placement{}, err
		}
		res.LostFound++
		return placement{parent: lf, t: nt, lostFound: true}, nil
	}
	if hint != (uuid.UUID{}) && hint != id {
		if buf := b.entries.Get(hint[:]); buf != nil {
			pr, err := b.decodeRecord(hint[:], buf, 0)
			if err != nil {
				return placement{}, err
			}
			if inOwnSubtree([]byte(pr.key)) {
				return toLostFound()
			}
			if pr.key == string(t.parentKey()) {
				return placement{parent: hint}, nil
			}
			nt, err := s.resolve(t.parsed[:1].String()+","+pr.entry.DN, true)
			if err != nil {
				return placement{}, err
			}
			return placement{parent: hint, t: nt}, nil
		}
		if b.tombstones.Get(hint[:]) != nil {
			return toLostFound()
		}
	}
	pk := t.parentKey()
	if inOwnSubtree(pk) {
		return toLostFound()
	}
	if pv := b.dn.Get(pk); pv != nil {
		var p uuid.UUID
		copy(p[:], pv)
		return placement{parent: p}, nil
	}
	// A missing parent is not a deleted parent: keep the entry below glue.
	p, err := w.glue(b, t.rdns[1:], t.parsed[1:].String(), hint, res)
	if err != nil {
		return placement{}, err
	}
	return placement{parent: p}, nil
}

// glue makes a glue entry at the DN rdns (normalised, most specific first;
// d as given), and glue for its missing ancestors, and returns its
// entryUUID: id when it is known (the real parent's), else a name-based
// UUID of the DN.
func (w *wtx) glue(b buckets, rdns []string, d string, id uuid.UUID, res *ApplyResult) (uuid.UUID, error) {
	s := w.s
	key := dnKey(rdns)
	if pv := b.dn.Get(key); pv != nil {
		var p uuid.UUID
		copy(p[:], pv)
		return p, nil
	}
	t, err := s.resolve(d, true)
	if err != nil {
		return uuid.UUID{}, err
	}
	if id == (uuid.UUID{}) || b.entries.Get(id[:]) != nil {
		id = uuid.NewSHA1(uuid.NameSpaceOID, append([]byte("postern glue "), key...))
	}
	var parent uuid.UUID
	if !t.isSuffix(s) {
		if parent, err = w.glue(b, rdns[1:], t.parsed[1:].String(), uuid.UUID{}, res); err != nil {
			return uuid.UUID{}, err
		}
	}
	e := &Entry{DN: t.dn, Attributes: []Attribute{{Type: "objectClass", Vals: []string{"top", GlueClass}}}}
	for _, ava := range t.parsed[0] {
		if at := s.sch.Attr(ava.Type); at != nil {
			e.Set(at.Name(), append(e.Get(at.Name()), ava.Value)...)
		}
	}
	ts := genTime(glueCSN)
	e.Set("structuralObjectClass", GlueClass)
	e.Set("entryUUID", id.String())
	e.Set("entryCSN", glueCSN.String())
	e.Set("creatorsName", s.suffix)
	e.Set("modifiersName", s.suffix)
	e.Set("createTimestamp", ts)
	e.Set("modifyTimestamp", ts)
	// no changelog record and no context CSN: glue is this member's own
	// bookkeeping and never replicates
	w.put(b.entries, id[:], w.encodeRecord(parent, key, id[:], e))
	w.put(b.dn, key, id[:])
	if !t.isSuffix(s) {
		w.put(b.children, childKey(parent, id), nil)
	}
	w.updateIndexes(b, id, nil, e)
	w.count++
	res.Glue++
	return id, w.err
}

// isGlue reports whether entry id is a glue entry.
func (w *wtx) isGlue(b buckets, id uuid.UUID) (bool, error) {
	rec, err := w.record(b, id)
	if err != nil {
		return false, err
	}
	return IsGlue(rec.entry), nil
}

// glueTakeover hands glue entry g's subordinates to the entry id that
// arrives at g's DN (its caller writes id there next) and removes g
// without a tombstone or changelog record: g never existed elsewhere.
func (w *wtx) glueTakeover(b buckets, g, id uuid.UUID) error {
	rec, err := w.record(b, g)
	if err != nil {
		return err
	}
	var kids [][]byte
	cur := b.children.Cursor()
	for k, _ := cur.Seek(g[:]); k != nil && bytes.HasPrefix(k, g[:]); k, _ = cur.Next() {
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
		w.put(b.children, childKey(id, kid), nil)
		w.put(b.entries, kid[:], w.encodeRecord(id, []byte(kr.key), kid[:], kr.entry))
	}
	w.del(b.entries, g[:])
	w.del(b.dn, []byte(rec.key))
	w.del(b.children, childKey(rec.parent, g))
	w.updateIndexes(b, g, rec.entry, nil)
	w.count--
	return w.err
}
