package ldapstore

import (
	"encoding/binary"
	"errors"

	"github.com/google/uuid"
)

// An entry record in the entries bucket is, in order:
//
//	version byte (1)
//	parent entryUUID (16 bytes; zero for the suffix entry)
//	uvarint length + dn bucket key
//	uvarint length + DN (user form)
//	uvarint attribute count, then per attribute:
//	    uvarint length + type (canonical name), uvarint value count,
//	    per value: uvarint length + bytes
//
// Decoding copies the record into one string and slices every field out
// of it, so a read costs a handful of allocations however many values.
const recordVersion = 1

var errCorrupt = errors.New("ldapstore: corrupt entry record")

type record struct {
	parent uuid.UUID
	key    string // dn bucket key
	entry  *Entry
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func encodeRecord(parent uuid.UUID, key []byte, e *Entry) []byte {
	n := 1 + 16 + len(key) + len(e.DN) + 12
	for _, a := range e.Attributes {
		n += len(a.Type) + 4
		for _, v := range a.Vals {
			n += len(v) + 3
		}
	}
	b := make([]byte, 0, n)
	b = append(b, recordVersion)
	b = append(b, parent[:]...)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	b = appendString(b, e.DN)
	b = binary.AppendUvarint(b, uint64(len(e.Attributes)))
	for _, a := range e.Attributes {
		b = appendString(b, a.Type)
		b = binary.AppendUvarint(b, uint64(len(a.Vals)))
		for _, v := range a.Vals {
			b = appendString(b, v)
		}
	}
	return b
}

// recordHeader returns the parent and dn key of a record without decoding
// the rest (scope checks). key aliases buf.
func recordHeader(buf []byte) (parent uuid.UUID, key []byte, err error) {
	if len(buf) < 18 || buf[0] != recordVersion {
		return parent, nil, errCorrupt
	}
	copy(parent[:], buf[1:17])
	l, n := binary.Uvarint(buf[17:])
	if n <= 0 || uint64(len(buf)-17-n) < l {
		return parent, nil, errCorrupt
	}
	return parent, buf[17+n : 17+n+int(l)], nil
}

// decodeRecord decodes a whole record; extra reserves room for computed
// attributes the caller appends.
func decodeRecord(buf []byte, extra int) (*record, error) {
	if len(buf) < 18 || buf[0] != recordVersion {
		return nil, errCorrupt
	}
	s := string(buf) // the one copy out of the bbolt page
	r := &record{}
	copy(r.parent[:], buf[1:17])
	i := 17
	str := func() (string, bool) {
		l, n := binary.Uvarint(buf[i:])
		if n <= 0 || uint64(len(buf)-i-n) < l {
			return "", false
		}
		i += n
		v := s[i : i+int(l)]
		i += int(l)
		return v, true
	}
	num := func() (int, bool) {
		l, n := binary.Uvarint(buf[i:])
		if n <= 0 || l > uint64(len(buf)) {
			return 0, false
		}
		i += n
		return int(l), true
	}
	var ok bool
	if r.key, ok = str(); !ok {
		return nil, errCorrupt
	}
	e := &Entry{}
	if e.DN, ok = str(); !ok {
		return nil, errCorrupt
	}
	na, ok := num()
	if !ok {
		return nil, errCorrupt
	}
	e.Attributes = make([]Attribute, na, na+extra)
	// Values of all attributes share one backing array; a first pass
	// counts them.
	vals := make([]string, countValues(buf[i:], na))
	for k := range e.Attributes {
		a := &e.Attributes[k]
		if a.Type, ok = str(); !ok {
			return nil, errCorrupt
		}
		nv, ok := num()
		if !ok || nv > len(vals) {
			return nil, errCorrupt
		}
		a.Vals = vals[:nv:nv]
		vals = vals[nv:]
		for j := range a.Vals {
			if a.Vals[j], ok = str(); !ok {
				return nil, errCorrupt
			}
		}
	}
	r.entry = e
	return r, nil
}

// countValues returns how many values the na attributes encoded in b hold
// (0 when b is malformed; decodeRecord then reports the corruption).
func countValues(b []byte, na int) int {
	total, i := 0, 0
	skip := func() bool {
		l, n := binary.Uvarint(b[i:])
		if n <= 0 || uint64(len(b)-i-n) < l {
			return false
		}
		i += n + int(l)
		return true
	}
	for range na {
		if !skip() {
			return 0
		}
		nv, n := binary.Uvarint(b[i:])
		if n <= 0 || nv > uint64(len(b)) {
			return 0
		}
		i += n
		for range nv {
			if !skip() {
				return 0
			}
		}
		total += int(nv)
	}
	return total
}
