package secure

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"mime"
	"strings"
)

// MIME helpers on canonical CRLF octets. Header fields are handled as raw
// lines (with their continuation lines) so that what is not changed keeps
// its exact octets, which signatures over it need.

// field is one header field: its name and raw octets up to and including
// the CRLF of its last line.
type field struct {
	name string
	raw  []byte
}

// value returns the unfolded value of f.
func (f field) value() string {
	_, v, _ := bytes.Cut(f.raw, []byte(":"))
	s := strings.ReplaceAll(string(v), "\r\n", "")
	return strings.TrimSpace(s)
}

// splitEntity splits an entity at the empty line that ends its header
// section: the header (every field with its CRLF) and the body. An entity
// without the empty line is all header.
func splitEntity(e []byte) (hdr, body []byte) {
	if bytes.HasPrefix(e, []byte("\r\n")) {
		return nil, e[2:]
	}
	if i := bytes.Index(e, []byte("\r\n\r\n")); i >= 0 {
		return e[:i+2], e[i+4:]
	}
	return e, nil
}

// parseFields splits a header section into fields. Lines that are neither
// a field nor a continuation are kept as nameless fields, so nothing is
// lost.
func parseFields(hdr []byte) []field {
	var fs []field
	for len(hdr) > 0 {
		i := bytes.Index(hdr, []byte("\r\n"))
		var line []byte
		if i < 0 {
			line, hdr = hdr, nil
		} else {
			line, hdr = hdr[:i+2], hdr[i+2:]
		}
		if (line[0] == ' ' || line[0] == '\t') && len(fs) > 0 {
			last := &fs[len(fs)-1]
			last.raw = append(last.raw[:len(last.raw):len(last.raw)], line...)
			continue
		}
		name, _, ok := bytes.Cut(line, []byte(":"))
		n := ""
		if ok {
			n = strings.ToLower(strings.TrimSpace(string(name)))
		}
		fs = append(fs, field{name: n, raw: line})
	}
	return fs
}

func get(fs []field, name string) string {
	for _, f := range fs {
		if f.name == name {
			return f.value()
		}
	}
	return ""
}

func without(fs []field, names ...string) []field {
	out := make([]field, 0, len(fs))
	for _, f := range fs {
		drop := false
		for _, n := range names {
			if f.name == n {
				drop = true
			}
		}
		if !drop {
			out = append(out, f)
		}
	}
	return out
}

func join(fs []field) []byte {
	var b bytes.Buffer
	for _, f := range fs {
		b.Write(f.raw)
		if !bytes.HasSuffix(f.raw, []byte("\r\n")) {
			b.WriteString("\r\n")
		}
	}
	return b.Bytes()
}

func newField(name, value string) field {
	return field{name: strings.ToLower(name), raw: []byte(name + ": " + value + "\r\n")}
}

// isContent reports a MIME field of the entity itself (RFC 2045 §9:
// Content-*), which moves into the protected part.
func isContent(name string) bool { return strings.HasPrefix(name, "content-") }

// splitMessage divides a message into the fields that stay outside (trace,
// originator, destination, subject…) and its MIME entity: the Content-*
// fields and the body. MIME-Version is dropped from both (the caller
// writes it on the new outer entity).
func splitMessage(msg []byte) (outer []field, entity []byte) {
	hdr, body := splitEntity(msg)
	var inner []field
	for _, f := range parseFields(hdr) {
		switch {
		case f.name == "mime-version":
		case isContent(f.name):
			inner = append(inner, f)
		default:
			outer = append(outer, f)
		}
	}
	if get(inner, "content-type") == "" {
		// RFC 2045 §5.2: the default, written out now that the part may
		// be read outside its message.
		inner = append([]field{newField("Content-Type", "text/plain; charset=us-ascii")}, inner...)
	}
	var b bytes.Buffer
	b.Write(join(inner))
	b.WriteString("\r\n")
	b.Write(body)
	return outer, b.Bytes()
}

// mediaType parses a Content-Type value; an invalid or missing one is
// text/plain (RFC 2045 §5.2).
func mediaType(v string) (string, map[string]string) {
	if v == "" {
		return "text/plain", map[string]string{}
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		return "text/plain", map[string]string{}
	}
	return mt, params
}

// newBoundary returns a boundary no body can contain by chance.
func newBoundary() string {
	b := make([]byte, 18)
	rand.Read(b)
	return "postern-" + hex.EncodeToString(b)
}

// base64Lines encodes b in lines of 76 characters with CRLF (RFC 2045 §6.8).
func base64Lines(b []byte) []byte {
	s := base64.StdEncoding.EncodeToString(b)
	var out bytes.Buffer
	out.Grow(len(s) + len(s)/76*2 + 2)
	for len(s) > 76 {
		out.WriteString(s[:76])
		out.WriteString("\r\n")
		s = s[76:]
	}
	out.WriteString(s)
	out.WriteString("\r\n")
	return out.Bytes()
}

// decodeBase64 decodes a base64 body, ignoring white space and line ends.
func decodeBase64(body []byte) ([]byte, error) {
	clean := make([]byte, 0, len(body))
	for _, c := range body {
		if c != '\r' && c != '\n' && c != ' ' && c != '\t' {
			clean = append(clean, c)
		}
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
	n, err := base64.StdEncoding.Decode(out, clean)
	return out[:n], err
}

// crlf makes text canonical: every line end CRLF.
func crlf(b []byte) []byte {
	if !bytes.Contains(b, []byte("\n")) {
		return b
	}
	var out bytes.Buffer
	out.Grow(len(b) + len(b)/40)
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '\r':
			out.WriteString("\r\n")
			if i+1 < len(b) && b[i+1] == '\n' {
				i++
			}
		case '\n':
			out.WriteString("\r\n")
		default:
			out.WriteByte(c)
		}
	}
	return out.Bytes()
}

var errMultipart = errors.New("secure: malformed multipart body")

// maxParts bounds the parts read from one multipart body.
const maxParts = 100

// multipartParts returns the exact octets of each part of a multipart
// body (RFC 2046 §5.1.1): what lies between a delimiter line and the CRLF
// that precedes the next delimiter.
func multipartParts(body []byte, boundary string) ([][]byte, error) {
	if boundary == "" || len(boundary) > 70 {
		return nil, errMultipart
	}
	delim := []byte("--" + boundary)
	var parts [][]byte
	start := -1
	pos := 0
	for pos <= len(body) {
		// a delimiter starts a line: at the very beginning or after CRLF
		var at int
		if pos == 0 && bytes.HasPrefix(body, delim) {
			at = 0
		} else {
			i := bytes.Index(body[pos:], append([]byte("\r\n"), delim...))
			if i < 0 {
				break
			}
			at = pos + i + 2
		}
		lineEnd := bytes.Index(body[at:], []byte("\r\n"))
		var line []byte
		if lineEnd < 0 {
			line = body[at:]
		} else {
			line = body[at : at+lineEnd]
		}
		rest := strings.TrimRight(string(line[len(delim):]), " \t")
		closing := rest == "--"
		if rest != "" && !closing {
			pos = at + len(delim)
			continue // "--boundaryX": not our delimiter
		}
		if start >= 0 {
			end := at
			if end >= 2 && at > 0 {
				end = at - 2 // the CRLF before a delimiter belongs to it
			}
			if end < start {
				end = start
			}
			parts = append(parts, body[start:end])
			if len(parts) > maxParts {
				return nil, errMultipart
			}
		}
		if closing || lineEnd < 0 {
			return parts, nil
		}
		start = at + lineEnd + 2
		pos = start - 2
	}
	if start >= 0 && len(parts) == 0 {
		return nil, errMultipart
	}
	return parts, nil
}
