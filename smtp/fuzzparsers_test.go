package smtp

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

// FuzzMailbox: every address the session accepts has a wire form that is
// one valid Mailbox, free of control characters, which reads back as the
// same address.
func FuzzMailbox(f *testing.F) {
	for _, s := range []string{"a@b.test", `victim@external.org> ORCPT=rfc822;x@nousers.test`, `q"u\ote@x.test`,
		"a..b@x.test", ".a@x.test", "a@[127.0.0.1]", "a@[IPv6:::1]", "jörg@exämple.test", "a\x00b@x.test", "a@b@c.test", " @x.test"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, addr string, smtputf8 bool) {
		m, p := checkMailbox(addr, smtputf8)
		if p != addrOK {
			return
		}
		w := m.String()
		back, ok := parseWireMailbox(w, smtputf8)
		if !ok || back != m {
			t.Fatalf("%q gave wire form %q, which reads back as %+v (%v)", addr, w, back, ok)
		}
		for _, r := range w {
			if r < 0x20 || r == 0x7f || (!smtputf8 && r >= 0x80) {
				t.Fatalf("wire form %q has %q", w, r)
			}
		}
		if !utf8.ValidString(w) {
			t.Fatalf("wire form %q is not UTF-8", w)
		}
	})
}

// FuzzCanonical: canonText and the DATA decoder agree with the plain
// references of fuzzmodel_test.go, whatever the input and however it is
// cut into reads.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"a\nb\r\nc\rd\r\r\ne", "x\r\n.\r\n", ".\r\r\n.\r\n", "..a\r\n.\n.\r\n", "\r", "\n.\r\nafter"} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, cut uint8) {
		var out bytes.Buffer
		ct := canonText{dst: &out}
		k := min(int(cut), len(in))
		ct.Write(in[:k])
		ct.Write(in[k:])
		ct.finish()
		if want := canonicalRef(in); !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("canonText(%q) = %q, want %q", in, out.Bytes(), want)
		}
		if !isCanonical(out.Bytes()) || !bytes.Equal(canonical(in), out.Bytes()) {
			t.Fatalf("canonical(%q) disagrees: %q", in, canonical(in))
		}

		var dec bytes.Buffer
		d := newDataDecoder(&dec, 1<<30)
		n1, end := d.feed(in[:k])
		n := n1
		if !end {
			n2, e2 := d.feed(in[k:])
			n, end = n1+n2, e2
		}
		body, refN, refEnd := dataBody(in)
		if end != refEnd || (end && n != refN) {
			t.Fatalf("DATA %q: decoder ends %v at %d, RFC reading %v at %d", in, end, n, refEnd, refN)
		}
		if !end {
			return
		}
		// What the decoder wrote, the content session.Data queues, is the
		// canonical body.
		got := dec.Bytes()
		if !isCanonical(got) {
			t.Fatalf("decoder output %q is not canonical", got)
		}
		if want := canonicalRef(body); !bytes.Equal(got, want) {
			t.Fatalf("DATA %q: body %q, want %q", in, got, want)
		}
	})
}

// FuzzDowngrade: the 7-bit converter never fails on outside content in a
// way other than an error, and what it returns without error (and without
// 8-bit header fields, which no conversion helps) is 7-bit canonical text.
func FuzzDowngrade(f *testing.F) {
	f.Add([]byte(multipart8bit))
	f.Add([]byte("Subject: x\r\n\r\ncaf\xe9\r\n"))
	f.Add([]byte("Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: in\r\n\r\n\xff\r\n--d--\r\n"))
	f.Add([]byte("Content-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\n\x80\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		content := canonical(in)
		out, headerUTF8, err := to7bit(content, 0, "text/plain", true)
		if err != nil || headerUTF8 {
			return
		}
		if has8bit(out) {
			t.Fatalf("to7bit(%q) left 8-bit octets: %q", content, out)
		}
		if !isCanonical(out) {
			t.Fatalf("to7bit(%q) is not canonical: %q", content, out)
		}
	})
}
