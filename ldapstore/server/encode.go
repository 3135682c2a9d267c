package server

// A hand-written BER encoder for responses. Building *ber.Packet trees for
// every search result entry costs an allocation per node and a second pass
// for Bytes(); appending into one reusable byte slice does neither.
//
// RFC 4511 §5.1: only the definite form of length encoding is used; lengths
// are minimal (one octet below 128, long form above).

// BER identifier octets used in responses (RFC 4511 §4 and Appendix B).
const (
	tagBoolean     byte = 0x01
	tagInteger     byte = 0x02
	tagOctetString byte = 0x04
	tagEnumerated  byte = 0x0a
	tagSequence    byte = 0x30
	tagSet         byte = 0x31

	classApplication byte = 0x40
	classContext     byte = 0x80
	constructed      byte = 0x20
)

// encoder appends BER to b. begin/end bracket a constructed value whose
// length is patched in when it is closed.
type encoder struct {
	b     []byte
	stack []int
}

func (e *encoder) reset() {
	e.b = e.b[:0]
	e.stack = e.stack[:0]
}

// begin opens a constructed value with identifier tag.
func (e *encoder) begin(tag byte) {
	e.b = append(e.b, tag, 0)
	e.stack = append(e.stack, len(e.b))
}

// end closes the innermost value opened by begin, writing its length.
func (e *encoder) end() {
	start := e.stack[len(e.stack)-1]
	e.stack = e.stack[:len(e.stack)-1]
	n := len(e.b) - start
	if n < 0x80 {
		e.b[start-1] = byte(n)
		return
	}
	k := lengthOctets(n)
	for range k {
		e.b = append(e.b, 0)
	}
	copy(e.b[start+k:], e.b[start:start+n])
	e.b[start-1] = 0x80 | byte(k)
	for i := k - 1; i >= 0; i-- {
		e.b[start+i] = byte(n)
		n >>= 8
	}
}

// lengthOctets is the number of octets of the long-form length n.
func lengthOctets(n int) int {
	k := 1
	for n > 0xff {
		n >>= 8
		k++
	}
	return k
}

func (e *encoder) header(tag byte, n int) {
	e.b = append(e.b, tag)
	if n < 0x80 {
		e.b = append(e.b, byte(n))
		return
	}
	k := lengthOctets(n)
	e.b = append(e.b, 0x80|byte(k))
	for i := k - 1; i >= 0; i-- {
		e.b = append(e.b, byte(n>>(8*i)))
	}
}

// str appends a primitive value with identifier tag and contents s.
func (e *encoder) str(tag byte, s string) {
	e.header(tag, len(s))
	e.b = append(e.b, s...)
}

// bytes appends a primitive value with identifier tag and contents v.
func (e *encoder) bytes(tag byte, v []byte) {
	e.header(tag, len(v))
	e.b = append(e.b, v...)
}

// int appends a two's-complement INTEGER or ENUMERATED (X.690 §8.3).
func (e *encoder) int(tag byte, v int64) {
	n := 1
	for w := v; w > 127 || w < -128; w >>= 8 {
		n++
	}
	e.header(tag, n)
	for i := n - 1; i >= 0; i-- {
		e.b = append(e.b, byte(v>>(8*i)))
	}
}

// bool appends a BOOLEAN; TRUE is 0xff (X.690 §11.1, as slapd sends it).
func (e *encoder) bool(tag byte, v bool) {
	x := byte(0)
	if v {
		x = 0xff
	}
	e.b = append(e.b, tag, 1, x)
}
