package ldapstore

import (
	"encoding/binary"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// Entry records name attribute types, and the values of the attributes in
// dictAttrs, by small numbers instead of text. The numbering is the store's
// own, kept in the names bucket (number → string) and given out on first
// use inside the write transaction that first stores the string, so a type
// added to the schema at run time (Schema().AddAttributeType) gets a
// number like a built-in one, and a change of the built-in schema never
// renumbers stored records.

// names is an immutable snapshot of the numbering; Store.names holds the
// committed one.
type names struct {
	byNum []string
	nums  map[string]uint64
}

// dictAttrs are the attributes whose values are stored as numbers: their
// values come from a small fixed set (object class names).
var dictAttrs = map[string]bool{"objectClass": true, "structuralObjectClass": true}

// nameKey is the names bucket key of number n.
func nameKey(n uint64) []byte { return binary.BigEndian.AppendUint32(nil, uint32(n)) }

// loadNames reads the names bucket.
func loadNames(b *bolt.Bucket) (*names, error) {
	nm := &names{nums: map[string]uint64{}}
	err := b.ForEach(func(k, v []byte) error {
		if len(k) != 4 || uint64(binary.BigEndian.Uint32(k)) != uint64(len(nm.byNum)) {
			return fmt.Errorf("ldapstore: corrupt names bucket at key %x", k)
		}
		s := string(v)
		nm.nums[s] = uint64(len(nm.byNum))
		nm.byNum = append(nm.byNum, s)
		return nil
	})
	return nm, err
}

// with returns a copy of nm extended by the numbers given out in added.
func (nm *names) with(added map[string]uint64) *names {
	out := &names{byNum: make([]string, len(nm.byNum), len(nm.byNum)+len(added)), nums: make(map[string]uint64, len(nm.nums)+len(added))}
	copy(out.byNum, nm.byNum)
	for k, v := range nm.nums {
		out.nums[k] = v
	}
	order := make([]string, 0, len(added))
	for k := range added {
		order = append(order, k)
	}
	sort.Slice(order, func(i, j int) bool { return added[order[i]] < added[order[j]] })
	for _, k := range order {
		out.nums[k] = uint64(len(out.byNum))
		out.byNum = append(out.byNum, k)
	}
	return out
}

// num returns the number of str, giving out the next one (written to the
// names bucket in this transaction) when str has none yet. The new numbers
// become visible to readers when the transaction commits (publishNames).
func (w *wtx) num(str string) uint64 {
	nm := w.s.names.Load()
	if n, ok := nm.nums[str]; ok {
		return n
	}
	if n, ok := w.newNames[str]; ok {
		return n
	}
	if w.newNames == nil {
		w.newNames = map[string]uint64{}
	}
	n := uint64(len(nm.byNum) + len(w.newNames))
	w.newNames[str] = n
	w.put(w.tx.Bucket(bNames), nameKey(n), []byte(str))
	return n
}

// publishNames makes the numbers a committed transaction gave out visible.
// Only the writer goroutine calls it.
func (s *Store) publishNames(w *wtx) {
	if w != nil && len(w.newNames) > 0 {
		s.names.Store(s.names.Load().with(w.newNames))
	}
}

// nameOf returns the string numbered n. A reader whose transaction began
// after a commit that gave out n but before publishNames ran finds it in
// the bucket.
func (s *Store) nameOf(tx *bolt.Tx, n uint64) (string, bool) {
	if nm := s.names.Load(); n < uint64(len(nm.byNum)) {
		return nm.byNum[n], true
	}
	if n > 0xffffffff {
		return "", false
	}
	v := tx.Bucket(bNames).Get(nameKey(n))
	if v == nil {
		return "", false
	}
	return string(v), true
}
