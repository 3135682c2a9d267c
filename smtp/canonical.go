package smtp

import "bytes"

// maxTextLine is the longest text line, in octets without its CRLF, that the
// gateway takes: RFC 5322 §2.1.1 ("MUST be no more than 998 characters")
// and RFC 5321 §4.5.3.1.6 (1000 octets with the CRLF).
//
// A message with a longer line is refused at the end of its data (see
// errLongLine) instead of being folded on the way out. Folding is not
// lossless: RFC 5322 §2.2.3 folds header fields only, at white space, and a
// body line can only be broken by changing its content or its transfer
// encoding, which breaks the DKIM and S/MIME signatures the originator made
// and that secure mail checks further on. Refusing in the SMTP dialogue
// tells the sender at once, with a permanent code, and its MTA (whose job
// RFC 2045 §2.7-2.8 makes it) can re-encode; accepting and bouncing later,
// or delivering a line the next hop may refuse (RFC 5321 §4.5.3.1.6), is
// worse for everyone.
const maxTextLine = 998

// canonText turns text with any line endings into CRLF-terminated lines
// (RFC 5321 §2.3.8: a bare CR or LF is sent only as part of CRLF) and
// appends them to dst. A run of CRs followed by LF is one line end ("\r\r\n"
// is a common double conversion); a run of CRs followed by anything else is
// one line end too; every LF is one. With stuff set it also doubles a period
// that starts a line (RFC 5321 §4.5.2), for a DATA stream.
//
// It records the longest line, so that callers can refuse text that breaks
// maxTextLine.
type canonText struct {
	dst     *bytes.Buffer
	stuff   bool
	cr      bool // one or more CRs seen and not yet written
	lineLen int  // octets on the current output line
	longest int  // longest complete or partial line, octets without CRLF
}

// Write appends p in canonical form; it never fails.
func (t *canonText) Write(p []byte) (int, error) {
	for i := 0; i < len(p); {
		c := p[i]
		switch c {
		case '\r':
			t.cr = true
			i++
			continue
		case '\n':
			t.cr = false
			t.endLine()
			i++
			continue
		}
		if t.cr {
			t.cr = false
			t.endLine()
		}
		// Copy the run of ordinary octets at once; its end is found with
		// the vectorised IndexByte (issue 16).
		j := len(p)
		if k := bytes.IndexByte(p[i:], '\n'); k >= 0 {
			j = i + k
		}
		if k := bytes.IndexByte(p[i:j], '\r'); k >= 0 {
			j = i + k
		}
		if t.stuff && t.lineLen == 0 && c == '.' {
			t.dst.WriteByte('.')
		}
		t.dst.Write(p[i:j])
		t.lineLen += j - i
		t.longest = max(t.longest, t.lineLen)
		i = j
	}
	return len(p), nil
}

func (t *canonText) endLine() {
	t.dst.WriteString("\r\n")
	t.lineLen = 0
}

// finish ends the text: pending CRs and an unterminated last line become a
// line end, so that the text is a sequence of whole lines.
func (t *canonText) finish() {
	if t.cr || t.lineLen > 0 {
		t.cr = false
		t.endLine()
	}
}

// isCanonical reports whether b is a sequence of CRLF-terminated lines
// without a bare CR or LF (or empty): it ends with CRLF and every CR and
// every LF is part of a CRLF (counted with the vectorised bytes.Count
// instead of a loop over every octet: issue 16).
func isCanonical(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	if !bytes.HasSuffix(b, crlf) {
		return false
	}
	n := bytes.Count(b, crlf)
	return bytes.Count(b, cr) == n && bytes.Count(b, lf) == n
}

var crlf, cr, lf = []byte("\r\n"), []byte("\r"), []byte("\n")

// canonical returns b as canonical CRLF lines (b itself when it already is).
func canonical(b []byte) []byte {
	if isCanonical(b) {
		return b
	}
	var out bytes.Buffer
	out.Grow(len(b) + len(b)/32)
	t := canonText{dst: &out}
	t.Write(b)
	t.finish()
	return out.Bytes()
}
