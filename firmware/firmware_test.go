package firmware

import "testing"

func TestCompatible(t *testing.T) {
	for _, tc := range []struct {
		other string
		want  bool
	}{
		{Version, true},
		{Version + "-rc1", false},
		{"", false},
	} {
		if got := Compatible(tc.other); got != tc.want {
			t.Errorf("Compatible(%q) = %v, want %v", tc.other, got, tc.want)
		}
	}
	if s := String(); s != Version+" (build "+Build+")" {
		t.Errorf("String() = %q", s)
	}
}
