package server

import (
	"testing"

	"postern/ldapstore/filter"
)

// FuzzDecodeFilter: decodeFilter's direct reading of equality and present
// filters gives what package filter's decoder gives for the same element,
// and an error where it gives one.
func FuzzDecodeFilter(f *testing.F) {
	for _, s := range []string{"(uid=user1)", "(objectClass=*)", "(&(uid=a)(mail=b))", "(cn=a*b)", "(uid=)"} {
		p, err := filter.Parse(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p.Encode().Bytes())
	}
	f.Add([]byte{0xa3, 0x04, 0x04, 0x00, 0x04, 0x00})
	f.Add([]byte{0xa3, 0x06, 0x04, 0x01, 'a', 0x24, 0x01, 'b'})
	f.Add([]byte{0x87, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := reader{b: b}
		fe, err := r.next()
		if err != nil {
			return
		}
		got, err := decodeFilter(fe)
		var want *filter.Filter
		fp, werr := packet(fe, 0)
		if werr == nil {
			want, werr = filter.Decode(fp)
		}
		if (err == nil) != (werr == nil) {
			t.Fatalf("decodeFilter(% x): error %v, package filter: %v", b, err, werr)
		}
		if err == nil && (got.String() != want.String() || got.Kind != want.Kind || got.Attr != want.Attr || got.Value != want.Value) {
			t.Fatalf("decodeFilter(% x) = %s, package filter: %s", b, got, want)
		}
	})
}
