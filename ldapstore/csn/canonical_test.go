package csn

import (
	"testing"
	"time"
)

// TestParseCanonical: the String of a CSN parses back to it; every other
// spelling, even one Parse accepts, is not canonical.
func TestParseCanonical(t *testing.T) {
	for _, c := range []CSN{
		{Time: time.Date(2026, 11, 22, 0, 32, 45, 123456000, time.UTC), Count: 0, SID: 1, Mod: 0},
		{Time: time.Date(1999, 2, 28, 23, 59, 59, 999999000, time.UTC), Count: 0xffffff, SID: 0xfff, Mod: 0xabcdef},
		{Time: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), Count: 0x1000000, SID: 0x12, Mod: 0xffffffff},
	} {
		got, ok := ParseCanonical(c.String())
		if !ok || got != c {
			t.Errorf("ParseCanonical(%q) = %v, %v; want %v", c.String(), got, ok, c)
		}
	}
	for _, s := range []string{
		"20261122003245Z#000000#001#000000",        // no fraction (Parse accepts it)
		"20261122003245.123456Z#000000#01#000000",  // two-digit sid
		"20261122003245.123456Z#00000A#001#000000", // upper-case hex
		"20261122003245.123456Z#0000000#001#000000",
		"20261122003245.123456Z#000000#001#000000#",
		"20261122003245.123456Z#000000#001",
		"20261322003245.123456Z#000000#001#000000", // month 13
		"20261122003245.12345Z#000000#001#0000000",
		"",
	} {
		if c, ok := ParseCanonical(s); ok {
			t.Errorf("ParseCanonical(%q) = %v, true; want false", s, c)
		}
		if c, err := Parse(s); err == nil && c.String() == s {
			t.Errorf("%q is canonical after all", s)
		}
	}
}

// FuzzParseCanonical: ParseCanonical accepts exactly the strings that are
// the String of what Parse makes of them, and agrees with Parse.
func FuzzParseCanonical(f *testing.F) {
	f.Add("20261122003245.123456Z#000000#001#000000")
	f.Add("20261122003245Z#000000#001#000000")
	f.Add("20300101000000.000000Z#1000000#012#ffffffff")
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseCanonical(s)
		want, err := Parse(s)
		canonical := err == nil && want.String() == s
		if ok != canonical {
			t.Fatalf("ParseCanonical(%q) ok = %v, canonical = %v", s, ok, canonical)
		}
		if ok && got.Compare(want) != 0 {
			t.Fatalf("ParseCanonical(%q) = %v, Parse = %v", s, got, want)
		}
	})
}
