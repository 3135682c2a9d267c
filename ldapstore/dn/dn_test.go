package dn

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want DN
		bad  bool
	}{
		{in: "", want: DN{}},
		{in: "dc=x", want: DN{{{"dc", "x"}}}},
		{in: "cn=a b , ou = p;dc=x", want: DN{{{"cn", "a b"}}, {{"ou", "p"}}, {{"dc", "x"}}}},
		{in: `cn=a\,b\+c\"d\\e,dc=x`, want: DN{{{"cn", `a,b+c"d\e`}}, {{"dc", "x"}}}},
		{in: `cn=\ lead\ ,dc=x`, want: DN{{{"cn", " lead "}}, {{"dc", "x"}}}},
		{in: `cn=\23hash,dc=x`, want: DN{{{"cn", "#hash"}}, {{"dc", "x"}}}},
		{in: `cn=caf\C3\A9`, want: DN{{{"cn", "café"}}}},
		{in: "cn=a+uid=b,dc=x", want: DN{{{"cn", "a"}, {"uid", "b"}}, {{"dc", "x"}}}},
		{in: "2.5.4.3=x", want: DN{{{"2.5.4.3", "x"}}}},
		{in: "cn=#04024869", want: DN{{{"cn", "Hi"}}}},
		{in: "cn=a=b", want: DN{{{"cn", "a=b"}}}},
		{in: "cn", bad: true},
		{in: "=x", bad: true},
		{in: "cn=x,", bad: true},
		{in: `cn=x\`, bad: true},
		{in: `cn=x\zz`, bad: true},
		{in: `cn=a"b`, bad: true},
		{in: "cn=#abc", bad: true},
		{in: "1cn=x", bad: true},
		{in: "01.2=x", bad: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Parse(tc.in)
			if tc.bad {
				if err == nil || !errors.Is(err, ErrSyntax) {
					t.Fatalf("Parse(%q) = %v, %v; want syntax error", tc.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tc.want.String() || len(got) != len(tc.want) {
				t.Fatalf("got %#v want %#v", got, tc.want)
			}
			again, err := Parse(got.String())
			if err != nil || again.String() != got.String() {
				t.Fatalf("round trip %q -> %q (%v)", got.String(), again.String(), err)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"CN=John  Smith , OU=People,DC=Postern,DC=Local", "cn=john smith,ou=people,dc=postern,dc=local"},
		{"commonName=X+UID=a,dc=x", "cn=x+uid=a,dc=x"},
		{"uid=a+cn=x,dc=x", "cn=x+uid=a,dc=x"},
		{"2.5.4.3=Bob", "cn=bob"},
		{`cn=a\2cb`, `cn=a\,b`},
	} {
		got, err := Normalize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestRelations(t *testing.T) {
	d, _ := Parse("uid=a,OU=People,dc=x")
	anc, _ := Parse("ou=people,DC=X")
	if !d.IsDescendantOf(anc) || anc.IsDescendantOf(d) || d.IsDescendantOf(d) {
		t.Fatal("IsDescendantOf")
	}
	if !d.Parent().Equal(anc) || d.RDNString() != "uid=a" {
		t.Fatal("Parent/RDNString")
	}
}

func FuzzParseDN(f *testing.F) {
	for _, s := range []string{"", "dc=x", `cn=a\,b+uid=c,dc=x`, "cn=#04024869", `cn=\ a\ `, "2.5.4.3=x;o=y", "cn= a  b ,dc=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Parse(s)
		if err != nil {
			return
		}
		// what Parse accepts, String prints in a form Parse reads back the same
		again, err := Parse(d.String())
		if err != nil {
			t.Fatalf("reparse %q (from %q): %v", d.String(), s, err)
		}
		if again.String() != d.String() {
			t.Fatalf("unstable: %q -> %q", d.String(), again.String())
		}
		if _, err := Normalize(s); err != nil {
			t.Fatalf("Normalize(%q): %v", s, err)
		}
	})
}
