package ldapstore

import (
	"bytes"
	"crypto/sha256"
	"slices"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"postern/ldapstore/csn"
	"postern/ldapstore/schema"
)

// ChangeKind is the kind of a change in the changelog.
type ChangeKind int

// Change kinds.
const (
	ChangeAdd ChangeKind = iota + 1
	ChangeModify
	ChangeDelete
	ChangeModDN
)

func (k ChangeKind) String() string {
	switch k {
	case ChangeAdd:
		return "add"
	case ChangeModify:
		return "modify"
	case ChangeDelete:
		return "delete"
	case ChangeModDN:
		return "moddn"
	}
	return "unknown"
}

// buckets are the top-level buckets of one transaction, with the store
// whose names (names.go) decode its records. bucketsOf opens the three
// every read needs; the others are opened by writeBuckets.
type buckets struct {
	s                                                 *Store
	entries, dn, children, idx, changelog, tombstones *bolt.Bucket
}

func (s *Store) bucketsOf(tx *bolt.Tx) buckets {
	return buckets{
		s:        s,
		entries:  tx.Bucket(bEntries),
		dn:       tx.Bucket(bDN),
		children: tx.Bucket(bChildren),
	}
}

func (s *Store) writeBuckets(tx *bolt.Tx) buckets {
	b := s.bucketsOf(tx)
	b.idx = tx.Bucket(bIdx)
	b.changelog = tx.Bucket(bChangelog)
	b.tombstones = tx.Bucket(bTombstones)
	for _, x := range []*bolt.Bucket{b.entries, b.dn, b.children, b.tombstones} {
		x.FillPercent = fillPercent
	}
	// changelog keys are CSNs: new records append at the end and pruning
	// removes from the start, so its pages are packed full
	b.changelog.FillPercent = 1.0
	return b
}

// fillPercent is how full bbolt packs a page when it splits one. Most keys
// here grow in order (version 7 entryUUIDs, CSNs, children of a parent,
// the postings of one value), for which bbolt's default of 50% would leave
// every page half empty.
const fillPercent = 0.9

// loadKey returns the entry at a dn key, or nil.
func loadKey(b buckets, key []byte) (uuid.UUID, *record, error) {
	var id uuid.UUID
	v := b.dn.Get(key)
	if v == nil {
		return id, nil, nil
	}
	copy(id[:], v)
	buf := b.entries.Get(v)
	if buf == nil {
		return id, nil, errCorrupt
	}
	r, err := b.decodeRecord(v, buf, 2)
	return id, r, err
}

// matchedDN returns the DN of the nearest existing ancestor of rdns, as
// stored, for noSuchObject's matchedDN (RFC 4511 §4.1.9).
func matchedDN(b buckets, rdns []string) string {
	for i := 1; i < len(rdns); i++ {
		if _, r, err := loadKey(b, dnKey(rdns[i:])); err == nil && r != nil {
			return r.entry.DN
		}
	}
	return ""
}

func noSuchObject(b buckets, rdns []string) *Error {
	return &Error{Code: NoSuchObject, Message: "no such object", MatchedDN: matchedDN(b, rdns)}
}

// hasChildren reports whether the entry id has subordinates.
func hasChildren(b buckets, id []byte) bool {
	k, _ := b.children.Cursor().Seek(id)
	return k != nil && bytes.HasPrefix(k, id)
}

func childKey(parent, child uuid.UUID) []byte {
	k := make([]byte, 32)
	copy(k, parent[:])
	copy(k[16:], child[:])
	return k
}

// maxIndexValue is the longest normalised value indexed as is; longer ones
// are indexed by their SHA-256 (the filter re-checks candidates).
const maxIndexValue = 256

// indexPrefix is the key prefix of value n in an index sub-bucket.
func indexPrefix(n string) []byte {
	if len(n) > maxIndexValue {
		h := sha256.Sum256([]byte(n))
		k := make([]byte, 0, 1+len(h)+1+16)
		k = append(k, 1)
		k = append(k, h[:]...)
		return append(k, 0)
	}
	k := make([]byte, 0, 1+len(n)+1+16)
	k = append(k, 0)
	k = append(k, n...)
	return append(k, 0)
}

// indexedValues returns e's values of every indexed attribute.
func (s *Store) indexedValues(e *Entry) map[*schema.AttributeType][]string {
	m := map[*schema.AttributeType][]string{}
	if e == nil {
		return m
	}
	for _, a := range e.Attributes {
		if at := s.sch.Attr(a.Type); at != nil && s.indexed[at] {
			m[at] = append(m[at], a.Vals...)
		}
	}
	return m
}

// indexKeys returns the index keys of the values vals of at.
func (s *Store) indexKeys(at *schema.AttributeType, vals []string, id uuid.UUID) [][]byte {
	if at == s.ocAttr {
		vals = s.ocPostings(vals)
	}
	keys := make([][]byte, 0, len(vals))
	for _, v := range vals {
		keys = append(keys, append(indexPrefix(s.norm(at, v)), id[:]...))
	}
	return keys
}

// updateIndexes writes the difference between the index keys of old and
// new (either may be nil). Attributes whose values did not change are
// skipped without computing their keys: a modify of an unindexed
// attribute touches no index.
func (w *wtx) updateIndexes(b buckets, id uuid.UUID, old, new *Entry) {
	ov, nv := w.s.indexedValues(old), w.s.indexedValues(new)
	for at := range w.s.indexed {
		if slices.Equal(ov[at], nv[at]) {
			continue
		}
		o, n := w.s.indexKeys(at, ov[at], id), w.s.indexKeys(at, nv[at], id)
		sub := b.idx.Bucket([]byte(at.Name()))
		sub.FillPercent = fillPercent
		have := make(map[string]bool, len(n))
		for _, k := range n {
			have[string(k)] = true
		}
		had := make(map[string]bool, len(o))
		for _, k := range o {
			had[string(k)] = true
			if !have[string(k)] {
				w.del(sub, k)
			}
		}
		for _, k := range n {
			if !had[string(k)] {
				w.put(sub, k, nil)
			}
		}
	}
}

// logChange appends to the changelog and records c in the batch's context
// CSN (RFC 4533 §3.1: the context CSN follows every change).
func (w *wtx) logChange(b buckets, c csn.CSN, kind ChangeKind, id uuid.UUID) {
	v := make([]byte, 0, 17)
	v = append(v, byte(kind))
	v = append(v, id[:]...)
	w.put(b.changelog, c.Key(), v)
	w.ctx.Update(c)
	w.changes++
}

// genTime formats t as slapd formats createTimestamp (RFC 4517 §3.3.13).
func genTime(t csn.CSN) string { return t.Time.UTC().Format("20060102150405Z") }
