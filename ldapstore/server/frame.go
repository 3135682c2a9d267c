package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrMessageTooLarge is returned by the framer when a client announces an
// LDAPMessage longer than Config.MaxMessageSize.
var ErrMessageTooLarge = errors.New("server: ldap message exceeds the maximum size")

// MalformedError reports an LDAPMessage that cannot be decoded: bad BER, a
// wrong tag or a structure that does not match RFC 4511's ASN.1. The server
// answers it with a Notice of Disconnection (RFC 4511 §4.4.1).
type MalformedError struct {
	Reason string
}

func (e *MalformedError) Error() string { return "server: malformed ldap message: " + e.Reason }

func malformed(format string, args ...any) error {
	return &MalformedError{Reason: fmt.Sprintf(format, args...)}
}

// bigFrame is the size above which a frame is read into a growing buffer
// instead of being allocated at its announced length, so that a peer cannot
// make the server allocate MaxMessageSize bytes by sending only a header.
const bigFrame = 64 << 10

// readFrame reads one complete LDAPMessage from r and returns its encoding,
// header included, reusing buf when it is large enough.
//
// RFC 4511 §4.1.1: every protocol exchange is an LDAPMessage SEQUENCE;
// RFC 4511 §5.1: only the definite form of length encoding is used.
// A clean end of stream before the first octet returns io.EOF.
func readFrame(r *bufio.Reader, max int, buf []byte) ([]byte, error) {
	tag, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	if tag != tagSequence {
		return nil, malformed("LDAPMessage tag 0x%02x, want SEQUENCE", tag)
	}
	var hdr [6]byte
	hdr[0] = tag
	l, err := r.ReadByte()
	if err != nil {
		return nil, unexpected(err)
	}
	hdr[1] = l
	h := 2
	n := int(l)
	switch {
	case l == 0x80:
		return nil, malformed("indefinite length")
	case l > 0x80:
		k := int(l & 0x7f)
		if k > 4 {
			return nil, malformed("length of %d octets", k)
		}
		n = 0
		for range k {
			b, err := r.ReadByte()
			if err != nil {
				return nil, unexpected(err)
			}
			hdr[h] = b
			h++
			n = n<<8 | int(b)
		}
	}
	if n > max {
		return nil, fmt.Errorf("%w (%d > %d octets)", ErrMessageTooLarge, n, max)
	}
	total := h + n
	if total <= bigFrame {
		if cap(buf) < total {
			buf = make([]byte, total, max2(total, 512))
		}
		buf = buf[:total]
		copy(buf, hdr[:h])
		if _, err := io.ReadFull(r, buf[h:]); err != nil {
			return nil, unexpected(err)
		}
		return buf, nil
	}
	var bb bytes.Buffer
	bb.Grow(bigFrame)
	bb.Write(hdr[:h])
	if _, err := io.CopyN(&bb, r, int64(n)); err != nil {
		return nil, unexpected(err)
	}
	return bb.Bytes(), nil
}

func max2(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// unexpected turns an EOF in the middle of a message into
// io.ErrUnexpectedEOF, which the connection treats as a malformed message.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
