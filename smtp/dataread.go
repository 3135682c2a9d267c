package smtp

import "bytes"

// dataDecoder reads a DATA body the way RFC 5321 defines it and re-encodes
// it for go-smtp in a form go-smtp's own reader cannot misread.
//
// RFC 5321 §2.3.8 and §4.5.2: lines end with CRLF and nothing else; the
// body ends with the first line that is a single period; a period that
// starts any other line is removed. A bare CR or LF is not a line end for
// this purpose (so "\n.\r\n" and "\r.\r\n" never end the message: the
// SMTP smuggling inputs of CVE-2023-51764 and its kin), it is content that
// canonText turns into a line end of its own (RFC 5321 §2.3.8: "intended
// as line terminators").
//
// go-smtp's reader differs from this in corner cases (after ".\r" it loses
// the CR state, so ".\r\r\n.\r\n" does not end the body there), so the
// decoder hands go-smtp only canonical, dot-stuffed CRLF lines and the
// single ".\r\n" terminator, on which both readings agree.
type dataDecoder struct {
	state int
	canon canonText // stuff: true
}

const (
	dLineStart = iota // at the start of an RFC 5321 line
	dDot              // the line started with '.'
	dDotCR            // the line is ".\r" so far
	dLine             // inside a line
	dCR               // inside a line, after a CR
)

func newDataDecoder(dst *bytes.Buffer) *dataDecoder {
	return &dataDecoder{canon: canonText{dst: dst, stuff: true}}
}

// feed decodes raw octets of the body; it returns how many it consumed and
// whether the end-of-data line was among them. Nothing after the end is
// consumed. Once the end is reached, the canonical body and ".\r\n" have
// been written to the destination.
func (d *dataDecoder) feed(raw []byte) (n int, end bool) {
	content := func(b ...byte) { d.canon.Write(b) }
	for n < len(raw) {
		if d.state == dLine {
			// inside a line only a CR changes the state: hand canonText
			// the run up to it at once (one call per run, not per octet)
			k := bytes.IndexByte(raw[n:], '\r')
			if k < 0 {
				d.canon.Write(raw[n:])
				return len(raw), false
			}
			d.canon.Write(raw[n : n+k])
			n += k
		}
		c := raw[n]
		n++
		switch d.state {
		case dLineStart:
			switch c {
			case '.':
				d.state = dDot
			case '\r':
				d.state = dCR
			default:
				content(c)
				d.state = dLine
			}
		case dDot:
			// A period followed by more is dot-stuffing: drop it.
			switch c {
			case '\r':
				d.state = dDotCR
			default:
				content(c)
				d.state = dLine
			}
		case dDotCR:
			if c == '\n' {
				// ".\r\n" at the start of a line: end of data.
				d.canon.finish()
				d.canon.dst.WriteString(".\r\n")
				d.state = dLineStart
				return n, true
			}
			// ".\r" then more: the line is "\r..." after unstuffing.
			content('\r')
			if c == '\r' {
				d.state = dCR
			} else {
				content(c)
				d.state = dLine
			}
		case dLine:
			if c == '\r' {
				d.state = dCR
			} else {
				content(c)
			}
		case dCR:
			switch c {
			case '\n':
				content('\r', '\n')
				d.state = dLineStart
			case '\r':
				content('\r') // the earlier CR was bare
			default:
				content('\r', c)
				d.state = dLine
			}
		}
	}
	return n, false
}
