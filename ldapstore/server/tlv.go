package server

import (
	"bytes"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// A BER reader over one framed message. asn1-ber's decoder copies every
// value through io.ReadAll and allocates a bytes.Buffer per node; requests
// are read here in place instead, and only a search's filter is turned into
// *ber.Packet nodes for filter.Decode.
//
// RFC 4511 §5.1: definite lengths only; OCTET STRINGs are primitive. LDAP
// uses no tag numbers above 30, so the high-tag-number form is refused.

// element is one BER value: its identifier octet and its contents.
type element struct {
	id      byte
	content []byte
}

func (e element) constructed() bool { return e.id&constructed != 0 }

// reader yields the elements of a constructed value's contents in order.
type reader struct {
	b []byte
}

func (r *reader) more() bool { return len(r.b) > 0 }

// next parses the next element (X.690 §8.1).
func (r *reader) next() (element, error) {
	b := r.b
	if len(b) < 2 {
		return element{}, malformed("truncated element")
	}
	id := b[0]
	if id&0x1f == 0x1f {
		return element{}, malformed("high tag number")
	}
	n := int(b[1])
	b = b[2:]
	if n&0x80 != 0 {
		k := n & 0x7f
		switch {
		case k == 0:
			return element{}, malformed("indefinite length")
		case k > 4 || k > len(b):
			return element{}, malformed("bad length")
		}
		n = 0
		for _, x := range b[:k] {
			n = n<<8 | int(x)
		}
		b = b[k:]
	}
	if n > len(b) {
		return element{}, malformed("length %d exceeds the %d octets left", n, len(b))
	}
	r.b = b[n:]
	return element{id: id, content: b[:n]}, nil
}

// expect parses the next element and checks its identifier octet.
func (r *reader) expect(id byte, what string) (element, error) {
	e, err := r.next()
	if err != nil {
		return e, err
	}
	if e.id != id {
		return e, malformed("%s: identifier 0x%02x, want 0x%02x", what, e.id, id)
	}
	return e, nil
}

// sequence parses a constructed element with identifier id and returns a
// reader of its contents.
func (r *reader) sequence(id byte, what string) (reader, error) {
	e, err := r.expect(id, what)
	return reader{b: e.content}, err
}

// octets parses a primitive string with identifier id.
func (r *reader) octets(id byte, what string) (string, error) {
	e, err := r.expect(id, what)
	return string(e.content), err
}

// integer parses an INTEGER or ENUMERATED with identifier id (X.690 §8.3).
func (r *reader) integer(id byte, what string) (int64, error) {
	e, err := r.expect(id, what)
	if err != nil {
		return 0, err
	}
	return parseInt(e.content, what)
}

func parseInt(b []byte, what string) (int64, error) {
	if len(b) == 0 || len(b) > 8 {
		return 0, malformed("%s: integer of %d octets", what, len(b))
	}
	v := int64(int8(b[0]))
	for _, x := range b[1:] {
		v = v<<8 | int64(x)
	}
	return v, nil
}

// boolean parses a BOOLEAN (X.690 §8.2: one octet, non-zero is TRUE).
func (r *reader) boolean(what string) (bool, error) {
	e, err := r.expect(tagBoolean, what)
	if err != nil {
		return false, err
	}
	if len(e.content) != 1 {
		return false, malformed("%s: BOOLEAN of %d octets", what, len(e.content))
	}
	return e.content[0] != 0, nil
}

// end checks that nothing follows the last expected element.
func (r *reader) end(what string) error {
	if len(r.b) != 0 {
		return malformed("%s: %d trailing octets", what, len(r.b))
	}
	return nil
}

// packet turns an element into the *ber.Packet tree filter.Decode reads.
// Contents are referenced, not copied: filter.Decode copies the strings it
// keeps.
func packet(e element, depth int) (*ber.Packet, error) {
	if depth > maxBERNesting {
		return nil, malformed("nested too deeply")
	}
	p := &ber.Packet{
		Identifier: ber.Identifier{ClassType: ber.Class(e.id & 0xc0), TagType: ber.Type(e.id & constructed), Tag: ber.Tag(e.id & 0x1f)},
	}
	if !e.constructed() {
		p.Data = bytes.NewBuffer(e.content)
		p.ByteValue = e.content
		if p.ClassType == ber.ClassUniversal && p.Tag == ber.TagOctetString {
			p.Value = string(e.content)
		}
		return p, nil
	}
	p.Data = new(bytes.Buffer)
	r := reader{b: e.content}
	for r.more() {
		ce, err := r.next()
		if err != nil {
			return nil, err
		}
		c, err := packet(ce, depth+1)
		if err != nil {
			return nil, err
		}
		p.Children = append(p.Children, c)
	}
	return p, nil
}
