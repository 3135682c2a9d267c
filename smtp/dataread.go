package smtp

import "bytes"

// dataDecoder reads a DATA body the way RFC 5321 defines it and writes the
// message content, as canonical CRLF lines without the dot-stuffing, to its
// destination; go-smtp gets only the end-of-data line (see session.Data,
// which takes the content from the decoder's buffer).
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
// body never passes through it: go-smtp reads the single ".\r\n"
// terminator, on which both readings agree. This also spares the content a
// second decoding, octet by octet through bufio.ReadByte, and a copy (issue
// 16: a fifth of the gateway's CPU in bench/smtp.sh).
//
// Content beyond limit octets is decoded (to find the end) but dropped, and
// over is set.
type dataDecoder struct {
	state int
	canon canonText // stuff: false
	limit int
	over  bool
}

const (
	dLineStart = iota // at the start of an RFC 5321 line
	dDot              // the line started with '.'
	dDotCR            // the line is ".\r" so far
	dLine             // inside a line
	dCR               // inside a line, after a CR
)

func newDataDecoder(dst *bytes.Buffer, limit int) *dataDecoder {
	return &dataDecoder{canon: canonText{dst: dst}, limit: limit}
}

// feed decodes raw octets of the body; it returns how many it consumed and
// whether the end-of-data line was among them. Nothing after the end is
// consumed. Once the end is reached, the canonical content has been written
// to the destination (unless over).
func (d *dataDecoder) feed(raw []byte) (n int, end bool) {
	start := d.canon.dst.Len()
	defer func() {
		if d.canon.dst.Len() > d.limit {
			// Keep no more than what has been decoded in this call.
			d.over = true
			d.canon.dst.Truncate(start)
		}
	}()
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
