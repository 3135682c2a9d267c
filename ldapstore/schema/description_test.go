package schema

import (
	"errors"
	"testing"
)

func TestDescribe(t *testing.T) {
	s := Default()
	for _, tc := range []struct {
		in, want string
		err      error
	}{
		{"cn", "cn", nil},
		{"commonName;LANG-DE", "cn;lang-de", nil},
		{"sn;lang-fr;lang-de;lang-fr", "sn;lang-de;lang-fr", nil},
		{"userCertificate;binary", "userCertificate;binary", nil},
		{"2.5.4.36;lang-de;BINARY", "userCertificate;binary;lang-de", nil},
		{"cn;lang-de-", "cn;lang-de-", nil}, // a range: for requests and filters
		{"sn;x-bar", "", ErrUnrecognizedOption},
		{"cn;", "", ErrUnrecognizedOption},
		{"cn;lang-", "", ErrUnrecognizedOption},
		{"cn;lang-de_CH", "", ErrUnrecognizedOption},
		{"description;binary", "", ErrBinaryNotSupported},
		{"shoeSize;lang-de", "", ErrUndefinedType},
	} {
		d, err := s.Describe(tc.in)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("Describe(%q) = %v, want %v", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || d.String() != tc.want {
			t.Errorf("Describe(%q) = %q, %v; want %q", tc.in, d.String(), err, tc.want)
		}
	}
	cover := func(req, stored string) bool {
		r, err1 := s.Describe(req)
		o, err2 := s.Describe(stored)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s %s: %v %v", req, stored, err1, err2)
		}
		return r.Covers(o)
	}
	for _, tc := range []struct {
		req, stored string
		want        bool
	}{
		{"cn", "cn;lang-de", true},
		{"cn;lang-de", "cn", false},
		{"name;lang-de", "cn;lang-de;lang-fr", true},
		{"cn;lang-de-", "cn;lang-de-ch", true},
		{"cn;lang-de-", "cn;lang-den", false},
		{"userCertificate", "userCertificate;binary", true},
		{"userCertificate;binary", "userCertificate;binary;lang-de", true},
		{"sn", "cn", false},
	} {
		if got := cover(tc.req, tc.stored); got != tc.want {
			t.Errorf("%s covers %s = %v", tc.req, tc.stored, got)
		}
	}
}

// FuzzDescribe: parsing an attribute description from a client never
// panics, the canonical form parses to itself, and a description names
// itself.
func FuzzDescribe(f *testing.F) {
	s := Default()
	for _, x := range []string{"cn", "cn;lang-de", "userCertificate;binary;lang-en-us", "sn;x-bar", "2.5.4.3;LANG-DE-", ";", "cn;;", "cn;lang--"} {
		f.Add(x)
	}
	f.Fuzz(func(t *testing.T, in string) {
		d, err := s.Describe(in)
		if err != nil {
			return
		}
		again, err := s.Describe(d.String())
		if err != nil || again.String() != d.String() {
			t.Fatalf("Describe(%q) = %q, which parses to %q, %v", in, d.String(), again.String(), err)
		}
		if !d.Covers(d) {
			t.Fatalf("%q does not cover itself", d.String())
		}
	})
}
