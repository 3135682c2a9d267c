package csn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// CSN is a change sequence number: UTC time to the microsecond, a change
// count within that time, the server ID that made it and a modifier.
type CSN struct {
	Time  time.Time
	Count uint32
	SID   uint16
	Mod   uint32
}

// MaxSID is the largest server ID a CSN can carry (three hex digits).
const MaxSID = 0xfff

// ErrSyntax is wrapped by every parse failure.
var ErrSyntax = errors.New("csn: invalid CSN")

const timeLayout = "20060102150405"

// Parse parses a CSN in OpenLDAP's format
// "20261122003245.123456Z#000000#001#000000". It also accepts the older
// form without fraction and with a two-digit server ID.
func Parse(s string) (CSN, error) {
	bad := func(why string) (CSN, error) { return CSN{}, fmt.Errorf("%w %q: %s", ErrSyntax, s, why) }
	parts := strings.Split(s, "#")
	if len(parts) != 4 {
		return bad("want 4 '#'-separated fields")
	}
	ts := parts[0]
	if len(ts) < 15 || ts[len(ts)-1] != 'Z' {
		return bad("bad time")
	}
	ts = ts[:len(ts)-1]
	var frac string
	if i := strings.IndexByte(ts, '.'); i >= 0 {
		ts, frac = ts[:i], ts[i+1:]
		if frac == "" || len(frac) > 9 {
			return bad("bad fraction")
		}
	}
	if len(ts) != 14 || !digits(ts) || !digits(frac) {
		return bad("bad time")
	}
	t, err := time.Parse(timeLayout, ts)
	if err != nil {
		return bad("bad time")
	}
	if frac != "" {
		f := frac + strings.Repeat("0", 9-len(frac))
		ns, _ := strconv.Atoi(f)
		t = t.Add(time.Duration(ns) / time.Microsecond * time.Microsecond)
	}
	cnt, err1 := parseHex(parts[1], 8)
	sid, err2 := parseHex(parts[2], 3)
	mod, err3 := parseHex(parts[3], 8)
	if err1 != nil || err2 != nil || err3 != nil {
		return bad("bad hex field")
	}
	return CSN{Time: t.UTC(), Count: uint32(cnt), SID: uint16(sid), Mod: uint32(mod)}, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func parseHex(s string, max int) (uint64, error) {
	if s == "" || len(s) > max {
		return 0, ErrSyntax
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return 0, ErrSyntax
		}
	}
	return strconv.ParseUint(s, 16, 64)
}

// String formats c as OpenLDAP does (lower-case hex, fixed widths).
func (c CSN) String() string {
	t := c.Time.UTC()
	b := make([]byte, 0, 40)
	b = t.AppendFormat(b, "20060102150405.000000Z")
	b = append(b, '#')
	b = appendHex(b, uint64(c.Count), 6)
	b = append(b, '#')
	b = appendHex(b, uint64(c.SID), 3)
	b = append(b, '#')
	b = appendHex(b, uint64(c.Mod), 6)
	return string(b)
}

func appendHex(b []byte, v uint64, width int) []byte {
	var tmp [16]byte
	h := strconv.AppendUint(tmp[:0], v, 16)
	for i := len(h); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, h...)
}

// ParseCanonical parses s when it is exactly the String of a CSN, without
// allocating, and reports whether it was: a record stores such a CSN in
// binary (its Key) and gets s back from String. Any other spelling that
// Parse accepts (no fraction, a two-digit server ID, upper-case hex)
// reports false.
func ParseCanonical(s string) (CSN, bool) {
	// "YYYYmmddHHMMSS.ffffffZ#cccccc#sss#mmmmmm", count and mod wider
	// when they need more than six hex digits
	if len(s) < 40 || s[14] != '.' || s[21] != 'Z' || s[22] != '#' || !digits(s[:14]) || !digits(s[15:21]) {
		return CSN{}, false
	}
	t, err := time.Parse(timeLayout, s[:14])
	if err != nil {
		return CSN{}, false
	}
	us := 0
	for i := 15; i < 21; i++ {
		us = us*10 + int(s[i]-'0')
	}
	rest := s[23:]
	cnt, rest, ok1 := canonicalHex(rest, 6, 8, false)
	sid, rest, ok2 := canonicalHex(rest, 3, 3, false)
	mod, _, ok3 := canonicalHex(rest, 6, 8, true)
	if !ok1 || !ok2 || !ok3 {
		return CSN{}, false
	}
	return CSN{Time: t.Add(time.Duration(us) * time.Microsecond), Count: uint32(cnt), SID: uint16(sid), Mod: uint32(mod)}, true
}

// canonicalHex reads a field of lower-case hex digits as appendHex writes
// it (zero-padded to width, at most max digits, no further leading zero)
// up to the next '#' (the end of s for the last field), and returns what
// follows the '#'.
func canonicalHex(s string, width, max int, last bool) (uint64, string, bool) {
	n := strings.IndexByte(s, '#')
	if (n >= 0) == last {
		return 0, "", false
	}
	field, rest := s, ""
	if n >= 0 {
		field, rest = s[:n], s[n+1:]
	}
	if len(field) < width || len(field) > max || (len(field) > width && field[0] == '0') {
		return 0, "", false
	}
	var v uint64
	for i := 0; i < len(field); i++ {
		c := field[i]
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return 0, "", false
		}
	}
	return v, rest, true
}

// Compare orders CSNs by (time, count, sid, mod): -1, 0 or +1.
func (c CSN) Compare(o CSN) int {
	if r := c.Time.Compare(o.Time); r != 0 {
		return r
	}
	switch {
	case c.Count != o.Count:
		return cmp(c.Count < o.Count)
	case c.SID != o.SID:
		return cmp(c.SID < o.SID)
	case c.Mod != o.Mod:
		return cmp(c.Mod < o.Mod)
	}
	return 0
}

func cmp(less bool) int {
	if less {
		return -1
	}
	return 1
}

// IsZero reports whether c is the zero CSN.
func (c CSN) IsZero() bool { return c.Time.IsZero() && c.Count == 0 && c.SID == 0 && c.Mod == 0 }

// KeyLen is the length of Key's result.
const KeyLen = 18

// Key returns a fixed-width binary form of c whose byte order is the CSN
// order: microseconds since 1970 (sign-flipped big-endian), count, sid, mod.
func (c CSN) Key() []byte { return c.AppendKey(make([]byte, 0, KeyLen)) }

// AppendKey appends Key's bytes to b.
func (c CSN) AppendKey(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(c.Time.UnixMicro())^(1<<63))
	b = binary.BigEndian.AppendUint32(b, c.Count)
	b = binary.BigEndian.AppendUint16(b, c.SID)
	return binary.BigEndian.AppendUint32(b, c.Mod)
}

// FromKey decodes the output of Key.
func FromKey(k []byte) (CSN, error) {
	if len(k) != KeyLen {
		return CSN{}, fmt.Errorf("%w: key of %d bytes", ErrSyntax, len(k))
	}
	us := int64(binary.BigEndian.Uint64(k) ^ (1 << 63))
	return CSN{
		Time:  time.UnixMicro(us).UTC(),
		Count: binary.BigEndian.Uint32(k[8:]),
		SID:   binary.BigEndian.Uint16(k[12:]),
		Mod:   binary.BigEndian.Uint32(k[14:]),
	}, nil
}

// Generator makes strictly increasing CSNs for one server ID. It is safe for
// concurrent use.
type Generator struct {
	mu   sync.Mutex
	sid  uint16
	now  func() time.Time
	last CSN
}

// NewGenerator returns a generator for sid reading the clock from now
// (time.Now when nil).
func NewGenerator(sid uint16, now func() time.Time) *Generator {
	if now == nil {
		now = time.Now
	}
	return &Generator{sid: sid, now: now}
}

// maxCount keeps the count within the six hex digits of the string form.
const maxCount = 0xffffff

// Next returns a CSN greater than every CSN it returned or observed before.
// If the clock has not advanced (or stepped back) it keeps the last time and
// raises the count, as OpenLDAP's slap_get_csn does.
func (g *Generator) Next() CSN {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.now().UTC().Truncate(time.Microsecond)
	var c CSN
	switch {
	case t.After(g.last.Time):
		c = CSN{Time: t, SID: g.sid}
	case g.last.Count >= maxCount:
		c = CSN{Time: g.last.Time.Add(time.Microsecond), SID: g.sid}
	default:
		c = CSN{Time: g.last.Time, Count: g.last.Count + 1, SID: g.sid}
	}
	g.last = c
	return c
}

// Observe raises the generator's floor so that Next returns CSNs greater
// than c (used for CSNs read from disk or received from peers).
func (g *Generator) Observe(c CSN) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c.Time.After(g.last.Time) || c.Time.Equal(g.last.Time) && c.Count > g.last.Count {
		g.last = CSN{Time: c.Time.UTC(), Count: c.Count, SID: g.sid}
	}
}

// Vector is a context CSN: the newest CSN per server ID.
type Vector map[uint16]CSN

// ParseVector parses CSNs separated by ';' (or whitespace).
func ParseVector(s string) (Vector, error) {
	v := Vector{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ' ' || r == '\n' }) {
		c, err := Parse(f)
		if err != nil {
			return nil, err
		}
		v.Update(c)
	}
	return v, nil
}

// Update records c if it is newer than the CSN held for its server ID and
// reports whether it was.
func (v Vector) Update(c CSN) bool {
	if old, ok := v[c.SID]; ok && old.Compare(c) >= 0 {
		return false
	}
	v[c.SID] = c
	return true
}

// SIDs returns the server IDs of v in ascending order.
func (v Vector) SIDs() []uint16 {
	ids := make([]uint16, 0, len(v))
	for id := range v {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// Strings returns the CSNs of v as strings in server ID order (the values
// of a contextCSN attribute).
func (v Vector) Strings() []string {
	out := make([]string, 0, len(v))
	for _, id := range v.SIDs() {
		out = append(out, v[id].String())
	}
	return out
}

// String returns the CSNs of v joined by ';' in server ID order.
func (v Vector) String() string { return strings.Join(v.Strings(), ";") }

// Clone returns a copy of v.
func (v Vector) Clone() Vector {
	c := make(Vector, len(v))
	for k, x := range v {
		c[k] = x
	}
	return c
}

// Covers reports whether c is not newer than what v holds for c's server ID.
func (v Vector) Covers(c CSN) bool {
	old, ok := v[c.SID]
	return ok && old.Compare(c) >= 0
}
