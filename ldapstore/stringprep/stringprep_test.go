package stringprep

import (
	"testing"
	"unicode/utf8"
)

func TestValue(t *testing.T) {
	for _, tc := range []struct {
		in         string
		fold, want string
	}{
		{"  Foo   Bar  ", "foo bar", "Foo Bar"},
		{"Straße", "strasse", "Straße"},
		{"\uFB01sh", "fish", "fish"},
		{"Cafe\u0301", "café", "Café"},
		{"nb\u00a0sp", "nb sp", "nb sp"},
		{"soft\u00adhyphen", "softhyphen", "softhyphen"},
		{"zero\u200bwidth", "zerowidth", "zerowidth"},
		{"tab\there\r\n", "tab here", "tab here"},
		{"\u039f\u0394\u039f\u03a3 \u03bf\u03b4\u03bf\u03c2", "οδοσ οδοσ", "ΟΔΟΣ οδος"},
		{"\u212aelvin", "kelvin", "Kelvin"},
		{"\u216b", "xii", "XII"},
		{"   ", "", ""},
		{"a\x00b\x7f", "ab", "ab"},
	} {
		if got := Value(tc.in, true); got != tc.fold {
			t.Errorf("Value(%q, fold) = %q, want %q", tc.in, got, tc.fold)
		}
		if got := Value(tc.in, false); got != tc.want {
			t.Errorf("Value(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSubstring(t *testing.T) {
	for _, tc := range []struct {
		in             string
		initial, final bool
		want           string
	}{
		{" foo ", true, false, "foo "},
		{" foo ", false, false, " foo "},
		{" foo ", false, true, " foo"},
		{"o  B", false, false, "o b"},
		{"   ", false, false, " "},
		{"   ", true, true, ""},
		{"\u00a0X", false, false, " x"},
	} {
		if got := Substring(tc.in, true, tc.initial, tc.final); got != tc.want {
			t.Errorf("Substring(%q, %v, %v) = %q, want %q", tc.in, tc.initial, tc.final, got, tc.want)
		}
	}
}

// FuzzValue: preparation is idempotent (a prepared value prepares to
// itself, which the store's indexes and DN keys rely on), keeps valid
// UTF-8 valid and leaves no SPACE at the ends or doubled.
func FuzzValue(f *testing.F) {
	for _, s := range []string{"Straße", "\uFB01", "  a  b ", "\u0301", "ǅ", "\u1e9e", "\u0390", "ﬀ\u0301", "\u00ad\u200b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		for _, fold := range []bool{true, false} {
			v := Value(s, fold)
			if !utf8.ValidString(v) {
				t.Fatalf("Value(%q) = %q: not UTF-8", s, v)
			}
			if again := Value(v, fold); again != v {
				t.Fatalf("Value(%q, %v) = %q, then %q", s, fold, v, again)
			}
			if len(v) > 0 && (v[0] == ' ' || v[len(v)-1] == ' ') {
				t.Fatalf("Value(%q) = %q has an outer SPACE", s, v)
			}
			Substring(s, fold, true, false)
			Substring(s, fold, false, true)
		}
	})
}
