package ldif

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"postern/ldapstore"
)

func readAll(t *testing.T, s string) ([]*ldapstore.Entry, error) {
	t.Helper()
	r := NewReader(strings.NewReader(s))
	var out []*ldapstore.Entry
	for {
		e, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
}

func TestRead(t *testing.T) {
	in := "version: 1\n# a comment\n#  folded\n\ndn: cn=Bjørn,dc=postern,\n dc=local\nobjectClass: person\ncn:: QmrDuHJu\nsn: J\ndescription: a long\n  value\n\n\ndn: dc=x\nchangetype: add\ndc: x\n"
	es, err := readAll(t, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 {
		t.Fatalf("got %d entries", len(es))
	}
	if es[0].DN != "cn=Bjørn,dc=postern,dc=local" || es[0].First("cn") != "Bjørn" || es[0].First("description") != "a long value" {
		t.Fatalf("entry 0: %+v", es[0])
	}
	if es[1].DN != "dc=x" || es[1].First("dc") != "x" {
		t.Fatalf("entry 1: %+v", es[1])
	}
}

func TestReadErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"no dn", "cn: x\n", "must start with dn"},
		{"bad base64", "dn: cn=x\ncn:: !!!\n", "bad base64"},
		{"url", "dn: cn=x\njpegPhoto:< file:///etc/passwd\n", "URL values"},
		{"modify", "dn: cn=x\nchangetype: modify\n", "not supported"},
		{"no colon", "dn: cn=x\nbroken\n", "missing ':'"},
		{"two dns", "dn: cn=x\ndn: cn=y\n", "second dn"},
		{"version", "version: 2\n", "unsupported LDIF version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readAll(t, tc.in)
			var le *Error
			if !errors.As(err, &le) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ldif error containing %q", err, tc.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	es := []*ldapstore.Entry{
		{DN: "dc=postern,dc=local", Attributes: []ldapstore.Attribute{{Type: "objectClass", Vals: []string{"top", "dcObject"}}}},
		{DN: "cn=ü,dc=postern,dc=local", Attributes: []ldapstore.Attribute{
			{Type: "cn", Vals: []string{"ü", " lead", "trail ", ":colon", "<lt", "multi\nline", strings.Repeat("long ", 40)}},
			{Type: "userPassword", Vals: []string{"{ARGON2}$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"}},
		}},
	}
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, e := range es {
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(buf.String(), "\n") {
		if len(l) > 76 {
			t.Fatalf("line longer than 76: %q", l)
		}
	}
	got, err := readAll(t, buf.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(es) {
		t.Fatalf("got %d entries", len(got))
	}
	for i := range es {
		if got[i].DN != es[i].DN {
			t.Fatalf("dn %q != %q", got[i].DN, es[i].DN)
		}
		for _, a := range es[i].Attributes {
			g := got[i].Get(a.Type)
			if strings.Join(g, "\x00") != strings.Join(a.Vals, "\x00") {
				t.Fatalf("%s: %q != %q", a.Type, g, a.Vals)
			}
		}
	}
}

func FuzzReader(f *testing.F) {
	f.Add("version: 1\n\ndn: cn=x\ncn: x\n")
	f.Add("dn:: Y249eA==\n cont\n#c\n\ndn: a\n")
	f.Fuzz(func(t *testing.T, s string) {
		es, err := readAll(t, s)
		if err != nil {
			return
		}
		// Whatever parses must survive a write and read back the same.
		var buf bytes.Buffer
		w := NewWriter(&buf)
		for _, e := range es {
			w.Write(e)
		}
		w.Flush()
		back, err := readAll(t, buf.String())
		if err != nil {
			t.Fatalf("re-read: %v\n%s", err, buf.String())
		}
		if len(back) != len(es) {
			t.Fatalf("re-read %d entries, wrote %d", len(back), len(es))
		}
	})
}

// TestLongLineBounded: a line longer than a record may be is refused
// after reading at most about MaxRecordBytes of it, not whole.
func TestLongLineBounded(t *testing.T) {
	var read int64
	src := io.MultiReader(strings.NewReader("dn: cn=x,dc=example\ndescription: "), &countingZeros{n: 1 << 30, read: &read})
	r := NewReader(src)
	_, err := r.Next()
	if err == nil || !strings.Contains(err.Error(), "too long") {
		t.Fatalf("a 1 GiB line: %v", err)
	}
	if read > 2*MaxRecordBytes {
		t.Fatalf("read %d bytes of a 1 GiB line before refusing it", read)
	}
}

// countingZeros yields n bytes of 'a' and counts what was read.
type countingZeros struct {
	n    int64
	read *int64
}

func (c *countingZeros) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), c.n)
	for i := range k {
		p[i] = 'a'
	}
	c.n -= k
	*c.read += k
	return int(k), nil
}
