package ldapstore

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/google/uuid"

	"postern/ldapstore/csn"
)

// An entry record in the entries bucket is, in order:
//
//	version byte (recordVersion)
//	parent entryUUID (16 bytes; zero for the suffix entry)
//	uvarint length + dn bucket key
//	uvarint length + DN (user form)
//	uvarint attribute count, then per attribute:
//	    uvarint type number (names.go) << 3 | form, then by form:
//	    formPlain: uvarint value count, per value uvarint length + bytes
//	    formDict:  uvarint value count, per value its uvarint name number
//	    formCSN:   one CSN as csn.Key (18 bytes)
//	    formTime:  one GeneralizedTime "YYYYMMDDhhmmssZ" as varint unix seconds
//	    formKey:   no bytes: one value, the entryUUID the record is keyed by
//	    formSame:  uvarint index of an earlier attribute with the same one value
//
// The binary forms are used only where the value reads back byte for byte
// (a CSN or time written in another spelling stays plain text), so a
// record returns exactly the attributes stored.
//
// Decoding copies the record into one string and slices the plain values
// out of it, so a read costs a handful of allocations however many values.
const recordVersion = 2

// Attribute forms in a record.
const (
	formPlain = iota
	formDict
	formCSN
	formTime
	formKey
	formSame
	formBits = 3
)

// genTimeLayout is how the store writes createTimestamp and modifyTimestamp.
const genTimeLayout = "20060102150405Z"

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

// encodeRecord encodes entry id. It runs in the write transaction, which
// also stores the numbers of types and values seen for the first time.
func (w *wtx) encodeRecord(parent uuid.UUID, key []byte, id []byte, e *Entry) []byte {
	u, _ := uuid.FromBytes(id)
	n := 1 + 16 + len(key) + len(e.DN) + 12
	for _, a := range e.Attributes {
		n += 4
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
	for i, a := range e.Attributes {
		typ := w.num(a.Type) << formBits
		if len(a.Vals) == 1 {
			if f, body, ok := singleForm(a.Type, a.Vals[0], u); ok {
				b = binary.AppendUvarint(b, typ|f)
				b = append(b, body...)
				continue
			}
			if j := sameAs(e.Attributes[:i], a.Vals[0]); j >= 0 {
				b = binary.AppendUvarint(b, typ|formSame)
				b = binary.AppendUvarint(b, uint64(j))
				continue
			}
		}
		if dictAttrs[a.Type] {
			b = binary.AppendUvarint(b, typ|formDict)
			b = binary.AppendUvarint(b, uint64(len(a.Vals)))
			for _, v := range a.Vals {
				b = binary.AppendUvarint(b, w.num(v))
			}
			continue
		}
		b = binary.AppendUvarint(b, typ|formPlain)
		b = binary.AppendUvarint(b, uint64(len(a.Vals)))
		for _, v := range a.Vals {
			b = appendString(b, v)
		}
	}
	return b
}

// singleForm returns the binary form of the one value v of attribute typ,
// when it has one that decodes to exactly v.
func singleForm(typ, v string, id uuid.UUID) (uint64, []byte, bool) {
	switch typ {
	case "entryUUID":
		if v == id.String() {
			return formKey, nil, true
		}
	case "entryCSN":
		if c, ok := csn.ParseCanonical(v); ok {
			return formCSN, c.Key(), true
		}
	case "createTimestamp", "modifyTimestamp":
		// Fourteen digits and Z that parse are the Format of what they
		// parse to (fixed-width fields, each checked for its range).
		if len(v) == len(genTimeLayout) && v[14] == 'Z' && allDigits(v[:14]) {
			if t, err := time.Parse(genTimeLayout, v); err == nil {
				return formTime, binary.AppendVarint(nil, t.Unix()), true
			}
		}
	}
	return 0, nil, false
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// sameAs returns the index of an attribute of attrs whose one value is v,
// or -1.
func sameAs(attrs []Attribute, v string) int {
	for j, o := range attrs {
		if len(o.Vals) == 1 && o.Vals[0] == v {
			return j
		}
	}
	return -1
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

// recordDN returns the DN of a record without decoding the rest.
func recordDN(buf []byte) (string, error) {
	if len(buf) < 18 || buf[0] != recordVersion {
		return "", errCorrupt
	}
	d := decoder{buf: buf, i: 17}
	l, ok := d.uvarint() // the dn key, skipped
	if !ok || uint64(len(buf)-d.i) < l {
		return "", errCorrupt
	}
	d.i += int(l)
	l, ok = d.uvarint()
	if !ok || uint64(len(buf)-d.i) < l {
		return "", errCorrupt
	}
	return string(buf[d.i : d.i+int(l)]), nil
}

// decodeRecord decodes the whole record buf of entry id, read in b's
// transaction; extra reserves room for computed attributes the caller
// appends.
func (b buckets) decodeRecord(id []byte, buf []byte, extra int) (*record, error) {
	if len(buf) < 18 || buf[0] != recordVersion || len(id) != 16 {
		return nil, errCorrupt
	}
	str := string(buf) // the one copy out of the bbolt page
	d := decoder{buf: buf, str: str, i: 17}
	r := &record{}
	copy(r.parent[:], buf[1:17])
	var ok bool
	if r.key, ok = d.string(); !ok {
		return nil, errCorrupt
	}
	e := &Entry{}
	if e.DN, ok = d.string(); !ok {
		return nil, errCorrupt
	}
	na, ok := d.count()
	if !ok {
		return nil, errCorrupt
	}
	e.Attributes = make([]Attribute, na, na+extra)
	// Values of most attributes share one backing array.
	vals := make([]string, 0, na+na/2+2)
	take := func(n int) []string {
		if len(vals)+n > cap(vals) {
			vals = make([]string, 0, max(n, 16))
		}
		out := vals[len(vals) : len(vals)+n : len(vals)+n]
		vals = vals[:len(vals)+n]
		return out
	}
	tx := b.entries.Tx()
	name := func(n uint64) (string, bool) { return b.s.nameOf(tx, n) }
	for k := range e.Attributes {
		a := &e.Attributes[k]
		head, ok := d.uvarint()
		if !ok {
			return nil, errCorrupt
		}
		if a.Type, ok = name(head >> formBits); !ok {
			return nil, errCorrupt
		}
		switch head & (1<<formBits - 1) {
		case formPlain, formDict:
			nv, ok := d.count()
			if !ok {
				return nil, errCorrupt
			}
			a.Vals = take(nv)
			for j := range a.Vals {
				if head&(1<<formBits-1) == formPlain {
					a.Vals[j], ok = d.string()
				} else if n, okn := d.uvarint(); okn {
					a.Vals[j], ok = name(n)
				} else {
					ok = false
				}
				if !ok {
					return nil, errCorrupt
				}
			}
		case formCSN:
			if len(buf)-d.i < csn.KeyLen {
				return nil, errCorrupt
			}
			c, err := csn.FromKey(buf[d.i : d.i+csn.KeyLen])
			if err != nil {
				return nil, errCorrupt
			}
			d.i += csn.KeyLen
			a.Vals = take(1)
			a.Vals[0] = c.String()
		case formTime:
			t, n := binary.Varint(buf[d.i:])
			if n <= 0 {
				return nil, errCorrupt
			}
			d.i += n
			a.Vals = take(1)
			a.Vals[0] = time.Unix(t, 0).UTC().Format(genTimeLayout)
		case formKey:
			u, _ := uuid.FromBytes(id)
			a.Vals = take(1)
			a.Vals[0] = u.String()
		case formSame:
			j, ok := d.uvarint()
			if !ok || j >= uint64(k) || len(e.Attributes[j].Vals) != 1 {
				return nil, errCorrupt
			}
			a.Vals = take(1)
			a.Vals[0] = e.Attributes[j].Vals[0]
		default:
			return nil, errCorrupt
		}
	}
	r.entry = e
	return r, nil
}

// decoder reads the fields of a record: buf is the record, str its copy
// that decoded strings alias, i the read position.
type decoder struct {
	buf []byte
	str string
	i   int
}

func (d *decoder) uvarint() (uint64, bool) {
	v, n := binary.Uvarint(d.buf[d.i:])
	if n <= 0 {
		return 0, false
	}
	d.i += n
	return v, true
}

// count reads a count, which cannot exceed the record's length.
func (d *decoder) count() (int, bool) {
	v, ok := d.uvarint()
	if !ok || v > uint64(len(d.buf)) {
		return 0, false
	}
	return int(v), true
}

func (d *decoder) string() (string, bool) {
	l, ok := d.uvarint()
	if !ok || uint64(len(d.buf)-d.i) < l {
		return "", false
	}
	v := d.str[d.i : d.i+int(l)]
	d.i += int(l)
	return v, true
}
