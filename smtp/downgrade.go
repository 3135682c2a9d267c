package smtp

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"mime"
	"mime/quotedprintable"
	"strings"

	"github.com/emersion/go-message/textproto"

	"postern/smtp/queue"
)

// outbound is a queued message as it goes to one next hop.
type outbound struct {
	content []byte // canonical CRLF lines; 7-bit when the hop lacks 8BITMIME
	utf8    bool   // give MAIL the SMTPUTF8 parameter
}

// prepareOutbound fits a message to what a next hop offers, downgrading
// when that loses nothing and refusing only what cannot be downgraded:
//
//   - SMTPUTF8 (RFC 6531): a message sent with SMTPUTF8 whose envelope
//     (sender and this transaction's recipients) and header fields (of the
//     message and of its MIME parts) are all ASCII does not need it, so it
//     goes to a hop without SMTPUTF8 without the parameter (RFC 6531 §3.4:
//     a client that knows the message does not need it SHOULD NOT send
//     it; Postfix delivers it too). Otherwise: 550 5.6.7.
//   - 8BITMIME (RFC 6152): 8-bit content goes to a hop without 8BITMIME
//     only converted to 7 bit (RFC 6152 §3: convert or return it): every
//     MIME leaf with 8-bit octets is re-encoded, text as quoted-printable
//     (as Postfix does), anything else as base64; parts without 8-bit
//     octets are left byte for byte. What cannot be converted (8-bit in a
//     header field, in a part already declared quoted-printable or base64,
//     a multipart without its boundary): 550 5.6.3.
//
// The content is made canonical again on the way out, so a queue written
// by an older build cannot put a bare CR or LF on the wire.
func prepareOutbound(m *queue.Message, rcpts []string, content []byte, ext map[string]bool, host string) (outbound, *Error) {
	out := outbound{content: canonical(content), utf8: m.UTF8 && ext["SMTPUTF8"]}
	eightBit := has8bit(out.content)
	if !eightBit {
		return out, nil
	}
	converted, headerUTF8, err := to7bit(out.content, 0, "text/plain", true)
	if m.UTF8 && !out.utf8 {
		envelope := !isASCII(m.From)
		for _, r := range rcpts {
			envelope = envelope || !isASCII(r)
		}
		if envelope || headerUTF8 {
			return outbound{}, newError(550, [3]int{5, 6, 7}, "SMTPUTF8 is required, but was not offered by host "+host, nil)
		}
	}
	if ext["8BITMIME"] {
		return out, nil
	}
	if err != nil || (headerUTF8 && !out.utf8) {
		return outbound{}, newError(550, [3]int{5, 6, 3}, "8-bit content cannot be converted to 7 bit for host "+host, err)
	}
	out.content = converted
	return out, nil
}

var (
	errMIMEDepth   = errors.New("MIME nesting too deep")
	errEncoded8bit = errors.New("8-bit octets in a part declared quoted-printable or base64")
	errNoBoundary  = errors.New("multipart without its boundary")
)

// maxMIMEDepth bounds the nesting the converter follows.
const maxMIMEDepth = 30

// to7bit converts one entity (header section and body, canonical CRLF)
// to 7 bit. It also reports whether a header field of the entity or of a
// part inside it has 8-bit octets (RFC 6532 UTF-8 headers), which no
// conversion can help. defType is the Content-Type when the entity names
// none (RFC 2046 §5.1.5: message/rfc822 inside multipart/digest); message
// says the entity is a message (top level or message/rfc822), which gets
// MIME-Version when the converter makes it MIME.
func to7bit(e []byte, depth int, defType string, message bool) (out []byte, headerUTF8 bool, err error) {
	if depth > maxMIMEDepth {
		return nil, false, errMIMEDepth
	}
	hdr, body := splitEntity(e)
	headerUTF8 = has8bit(hdr)
	if !has8bit(body) {
		return e, headerUTF8, nil
	}
	// go-message reads the fields (unfolded values); edits are made on
	// the raw octets (setField).
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(append(hdr[:len(hdr):len(hdr)], "\r\n"...))))
	if err != nil {
		return nil, headerUTF8, err
	}
	ct := h.Get("Content-Type")
	mt, params, perr := mime.ParseMediaType(ct)
	switch {
	case ct == "":
		mt = defType
	case perr != nil:
		mt = "text/plain" // RFC 2045 §5.2: an invalid Content-Type is plain text
	}
	cte := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
	var newBody []byte
	var inner bool
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		if params["boundary"] == "" {
			return nil, headerUTF8, errNoBoundary
		}
		sub := "text/plain"
		if mt == "multipart/digest" {
			sub = "message/rfc822"
		}
		newBody, inner, err = multipartTo7bit(body, params["boundary"], depth, sub)
		hdr = composite7bit(hdr, cte)
	case mt == "message/rfc822":
		newBody, inner, err = to7bit(body, depth+1, "text/plain", true)
		hdr = composite7bit(hdr, cte)
	default:
		if cte == "quoted-printable" || cte == "base64" {
			return nil, headerUTF8, errEncoded8bit
		}
		enc := "base64"
		if strings.HasPrefix(mt, "text/") {
			enc = "quoted-printable"
		}
		newBody = encodeBody(body, enc)
		if message && !h.Has("Mime-Version") {
			hdr = setField(hdr, "MIME-Version", "1.0")
		}
		if ct == "" && mt == "text/plain" {
			// The default, charset=us-ascii, would be wrong for 8-bit text
			// of unknown charset (RFC 1428).
			hdr = setField(hdr, "Content-Type", "text/plain; charset=unknown-8bit")
		}
		hdr = setField(hdr, "Content-Transfer-Encoding", enc)
	}
	if err != nil {
		return nil, headerUTF8 || inner, err
	}
	out = make([]byte, 0, len(hdr)+2+len(newBody))
	out = append(append(append(out, hdr...), "\r\n"...), newBody...)
	return out, headerUTF8 || inner, nil
}

// composite7bit declares a composite entity 7bit once its parts are (RFC
// 2045 §6.4: a composite type is 7bit, 8bit or binary).
func composite7bit(hdr []byte, cte string) []byte {
	if cte == "8bit" || cte == "binary" {
		return setField(hdr, "Content-Transfer-Encoding", "7bit")
	}
	return hdr
}

// setField removes every field called name (with its continuation lines)
// from a raw header section and adds "name: value" at its end. The other
// fields keep their place and octets, so the trace fields stay on top
// and a DKIM signature over them still holds.
func setField(hdr []byte, name, value string) []byte {
	var out []byte
	skip := false
	for _, line := range bytes.SplitAfter(hdr, []byte("\r\n")) {
		if len(line) == 0 {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			k, _, ok := bytes.Cut(line, []byte(":"))
			skip = ok && strings.EqualFold(strings.TrimSpace(string(k)), name)
		}
		if !skip {
			out = append(out, line...)
		}
	}
	return append(out, name+": "+value+"\r\n"...)
}

// splitEntity splits at the empty line that ends the header section; hdr
// keeps the CRLF of its last field, body starts after the empty line.
func splitEntity(e []byte) (hdr, body []byte) {
	if bytes.HasPrefix(e, []byte("\r\n")) {
		return nil, e[2:]
	}
	if i := bytes.Index(e, []byte("\r\n\r\n")); i >= 0 {
		return e[:i+2], e[i+4:]
	}
	return e, nil
}

// multipartTo7bit converts the parts of a multipart body (RFC 2046 §5.1.1):
// delimiter lines "--boundary" and the close "--boundary--" (both maybe
// followed by white space) are kept as they are; the CRLF before a
// delimiter belongs to the delimiter. A preamble or epilogue with 8-bit
// octets is dropped: RFC 2046 says receivers ignore them, and nothing can
// label their encoding.
func multipartTo7bit(body []byte, boundary string, depth int, defType string) ([]byte, bool, error) {
	dash := "--" + boundary
	kind := func(line string) int { // 0 none, 1 delimiter, 2 close
		l := strings.TrimRight(line, "\r\n")
		if !strings.HasPrefix(l, dash) {
			return 0
		}
		rest := l[len(dash):]
		if strings.HasPrefix(rest, "--") {
			if strings.TrimRight(rest[2:], " \t") == "" {
				return 2
			}
			return 0
		}
		if strings.TrimRight(rest, " \t") == "" {
			return 1
		}
		return 0
	}
	var out bytes.Buffer
	var headerUTF8 bool
	var part []string
	inPart, closed := false, false
	// flush converts the part collected so far; before a delimiter its
	// last CRLF belongs to the delimiter and is written back after it.
	flush := func(beforeDelimiter bool) error {
		if len(part) == 0 {
			return nil
		}
		raw := strings.Join(part, "")
		if beforeDelimiter {
			raw = raw[:len(raw)-2]
		}
		conv, h8, err := to7bit([]byte(raw), depth+1, defType, false)
		headerUTF8 = headerUTF8 || h8
		if err != nil {
			return err
		}
		out.Write(conv)
		if beforeDelimiter {
			out.WriteString("\r\n")
		}
		return nil
	}
	var preamble, epilogue []string
	for _, line := range strings.SplitAfter(string(body), "\r\n") {
		if line == "" {
			continue
		}
		if closed {
			epilogue = append(epilogue, line)
			continue
		}
		switch k := kind(line); k {
		case 1, 2:
			if !inPart {
				writeIf7bit(&out, preamble)
			}
			if err := flush(true); err != nil {
				return nil, headerUTF8, err
			}
			out.WriteString(line)
			inPart, part, closed = true, nil, k == 2
		default:
			if inPart {
				part = append(part, line)
			} else {
				preamble = append(preamble, line)
			}
		}
	}
	if !inPart {
		return nil, headerUTF8, errNoBoundary
	}
	if !closed {
		// No close delimiter: the last part runs to the end.
		if err := flush(false); err != nil {
			return nil, headerUTF8, err
		}
	}
	writeIf7bit(&out, epilogue)
	return out.Bytes(), headerUTF8, nil
}

func writeIf7bit(b *bytes.Buffer, lines []string) {
	text := strings.Join(lines, "")
	if !has8bit([]byte(text)) {
		b.WriteString(text)
	}
}

// encodeBody encodes canonical text for a 7-bit transport: lines of at
// most 76 characters, CRLF line ends (RFC 2045 §6.7-6.8). The encoded body
// ends with a line end when the body did, so that a part before a
// delimiter keeps its exact content.
func encodeBody(body []byte, enc string) []byte {
	var b bytes.Buffer
	if enc == "quoted-printable" {
		// Line ends stay hard line breaks (CRLF); the writer encodes
		// white space before them and breaks long lines softly.
		w := quotedprintable.NewWriter(&b)
		w.Write(body)
		w.Close()
		return b.Bytes()
	}
	s := base64.StdEncoding.EncodeToString(body)
	for len(s) > 76 {
		b.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	b.WriteString(s)
	if bytes.HasSuffix(body, []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

func has8bit(b []byte) bool {
	// Eight octets at a time: one of them has its high bit set.
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b)&0x8080808080808080 != 0 {
			return true
		}
		b = b[8:]
	}
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}
