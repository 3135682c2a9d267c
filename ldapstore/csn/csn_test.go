package csn

import (
	"bytes"
	"testing"
	"time"
)

func TestParseString(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{in: "20261122003245.123456Z#000000#001#000000", want: "20261122003245.123456Z#000000#001#000000"},
		{in: "20261122003245.123456Z#00000a#fff#000001", want: "20261122003245.123456Z#00000a#fff#000001"},
		{in: "20051026100000Z#000001#00#000000", want: "20051026100000.000000Z#000001#000#000000"},
		{in: "20261122003245.123456Z#000000#1000#000000", bad: true},
		{in: "20261122003245.123456Z#000000#001", bad: true},
		{in: "20261322003245.123456Z#000000#001#000000", bad: true},
		{in: "2026112200324.123456Z#000000#001#000000", bad: true},
		{in: "20261122003245.123456#000000#001#000000", bad: true},
		{in: "20261122003245.12x456Z#000000#001#000000", bad: true},
		{in: "", bad: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			c, err := Parse(tc.in)
			if tc.bad != (err != nil) {
				t.Fatalf("Parse(%q) err = %v", tc.in, err)
			}
			if !tc.bad && c.String() != tc.want {
				t.Fatalf("got %q want %q", c.String(), tc.want)
			}
		})
	}
}

func TestOrderAndKey(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	cs := []CSN{
		{Time: time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Time: base},
		{Time: base, Count: 1},
		{Time: base, Count: 1, SID: 2},
		{Time: base, Count: 1, SID: 2, Mod: 1},
		{Time: base.Add(time.Microsecond)},
	}
	for i := 1; i < len(cs); i++ {
		if cs[i-1].Compare(cs[i]) >= 0 || cs[i].Compare(cs[i-1]) <= 0 {
			t.Fatalf("order %d", i)
		}
		if bytes.Compare(cs[i-1].Key(), cs[i].Key()) >= 0 {
			t.Fatalf("key order %d", i)
		}
		if cs[i].String() <= cs[i-1].String() && i > 1 {
			t.Fatalf("string order %d", i)
		}
		back, err := FromKey(cs[i].Key())
		if err != nil || back.Compare(cs[i]) != 0 {
			t.Fatalf("key round trip %v %v", back, err)
		}
	}
}

// TestGeneratorClockStepsBack checks OpenLDAP's rule: when the clock does
// not advance or steps back, the time is kept and the count raised.
func TestGeneratorClockStepsBack(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := now
	g := NewGenerator(7, func() time.Time { return clock })
	a := g.Next()
	b := g.Next()
	clock = now.Add(-time.Hour) // step back
	c := g.Next()
	clock = now.Add(time.Second)
	d := g.Next()
	for i, pair := range [][2]CSN{{a, b}, {b, c}, {c, d}} {
		if pair[0].Compare(pair[1]) >= 0 {
			t.Fatalf("pair %d not increasing: %v %v", i, pair[0], pair[1])
		}
	}
	if !c.Time.Equal(now) || c.Count != 2 || c.SID != 7 {
		t.Fatalf("after step back got %v", c)
	}
	if d.Count != 0 || !d.Time.Equal(now.Add(time.Second)) {
		t.Fatalf("after recovery got %v", d)
	}
	peer := CSN{Time: now.Add(time.Hour), Count: 5, SID: 9}
	g.Observe(peer)
	if e := g.Next(); e.Compare(peer) <= 0 || e.SID != 7 {
		t.Fatalf("Observe did not raise the floor: %v", e)
	}
}

func TestVector(t *testing.T) {
	v, err := ParseVector("20260101000000.000000Z#000000#002#000000;20260101000000.000000Z#000000#001#000000")
	if err != nil || len(v) != 2 {
		t.Fatal(v, err)
	}
	if v.String() != "20260101000000.000000Z#000000#001#000000;20260101000000.000000Z#000000#002#000000" {
		t.Fatal(v.String())
	}
	old := v[1]
	if v.Update(CSN{Time: old.Time.Add(-time.Second), SID: 1}) {
		t.Fatal("older CSN accepted")
	}
	if !v.Update(CSN{Time: old.Time.Add(time.Second), SID: 1}) || !v.Covers(old) {
		t.Fatal("newer CSN refused")
	}
}

func FuzzParseCSN(f *testing.F) {
	for _, s := range []string{"20261122003245.123456Z#000000#001#000000", "20051026100000Z#000001#00#000000", "x#y#z#w", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(c.String())
		if err != nil || again.Compare(c) != 0 {
			t.Fatalf("round trip of %q: %q %v", s, c.String(), err)
		}
	})
}
