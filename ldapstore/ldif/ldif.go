// Package ldif reads and writes LDAP Data Interchange Format (RFC 2849)
// content records as ldapstore entries. It handles folded lines, comments,
// base64 values ("::") and "changetype: add" records; it does not read
// URL values (":<") or apply change records other than add.
package ldif

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"postern/ldapstore"
)

// MaxRecordBytes bounds one record, so a hostile file cannot exhaust memory.
const MaxRecordBytes = 16 << 20

// Reader reads entries from an LDIF stream.
type Reader struct {
	r    *bufio.Reader
	line int // line number of the last line read
	// pending holds a line read ahead while unfolding.
	pending    string
	hasPending bool
	eof        bool
	first      bool
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), first: true}
}

// Error is a syntax error with the line it was found on.
type Error struct {
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("ldif: line %d: %s", e.Line, e.Msg) }

func (r *Reader) rawLine() (string, bool, error) {
	if r.hasPending {
		r.hasPending = false
		return r.pending, true, nil
	}
	if r.eof {
		return "", false, nil
	}
	// read the line in bounded pieces: a line longer than a record may be
	// is an error before it is in memory whole
	var line []byte
	var err error
	for {
		var chunk []byte
		chunk, err = r.r.ReadSlice('\n')
		if len(line)+len(chunk) > MaxRecordBytes+2 {
			return "", false, &Error{r.line + 1, "line too long (a record may hold 16 MiB)"}
		}
		line = append(line, chunk...)
		if err != bufio.ErrBufferFull {
			break
		}
	}
	s := string(line)
	if err == io.EOF {
		r.eof = true
		if s == "" {
			return "", false, nil
		}
	} else if err != nil {
		return "", false, err
	}
	r.line++
	s = strings.TrimSuffix(s, "\n")
	s = strings.TrimSuffix(s, "\r")
	return s, true, nil
}

// logicalLine returns the next unfolded line (RFC 2849: a line starting with
// one space continues the previous one). Comment lines are dropped.
func (r *Reader) logicalLine() (string, bool, error) {
	for {
		s, ok, err := r.rawLine()
		if err != nil || !ok {
			return "", ok, err
		}
		if strings.HasPrefix(s, "#") {
			// A comment may be folded too; swallow its continuations.
			for {
				n, ok, err := r.rawLine()
				if err != nil {
					return "", false, err
				}
				if !ok {
					return "", false, nil
				}
				if !strings.HasPrefix(n, " ") {
					r.pending, r.hasPending = n, true
					break
				}
			}
			continue
		}
		if strings.HasPrefix(s, " ") {
			return "", false, &Error{r.line, "continuation line without a line to continue"}
		}
		var b strings.Builder
		b.WriteString(s)
		for {
			n, ok, err := r.rawLine()
			if err != nil {
				return "", false, err
			}
			if !ok {
				break
			}
			if strings.HasPrefix(n, " ") {
				b.WriteString(n[1:])
				if b.Len() > MaxRecordBytes {
					return "", false, &Error{r.line, "record too large"}
				}
				continue
			}
			r.pending, r.hasPending = n, true
			break
		}
		return b.String(), true, nil
	}
}

// Next returns the next entry, or io.EOF after the last one.
func (r *Reader) Next() (*ldapstore.Entry, error) {
	var e *ldapstore.Entry
	size := 0
	for {
		l, ok, err := r.logicalLine()
		if err != nil {
			return nil, err
		}
		if !ok || l == "" {
			if e != nil {
				return e, nil
			}
			if !ok {
				return nil, io.EOF
			}
			continue
		}
		size += len(l)
		if size > MaxRecordBytes {
			return nil, &Error{r.line, "record too large"}
		}
		typ, val, err := splitLine(l)
		if err != nil {
			return nil, &Error{r.line, err.Error()}
		}
		if r.first && e == nil && strings.EqualFold(typ, "version") {
			r.first = false
			if val != "1" {
				return nil, &Error{r.line, fmt.Sprintf("unsupported LDIF version %q", val)}
			}
			continue
		}
		r.first = false
		if e == nil {
			if !strings.EqualFold(typ, "dn") {
				return nil, &Error{r.line, fmt.Sprintf("record must start with dn:, found %q", typ)}
			}
			e = &ldapstore.Entry{DN: val}
			continue
		}
		switch {
		case strings.EqualFold(typ, "dn"):
			return nil, &Error{r.line, "second dn: in one record (missing blank line?)"}
		case strings.EqualFold(typ, "changetype"):
			if !strings.EqualFold(val, "add") {
				return nil, &Error{r.line, fmt.Sprintf("changetype %q not supported (only add)", val)}
			}
			continue
		case strings.EqualFold(typ, "control"):
			return nil, &Error{r.line, "controls are not supported in imported LDIF"}
		}
		addValue(e, typ, val)
	}
}

func addValue(e *ldapstore.Entry, typ, val string) {
	for i := range e.Attributes {
		if strings.EqualFold(e.Attributes[i].Type, typ) {
			e.Attributes[i].Vals = append(e.Attributes[i].Vals, val)
			return
		}
	}
	e.Attributes = append(e.Attributes, ldapstore.Attribute{Type: typ, Vals: []string{val}})
}

// splitLine splits "type: value", "type:: base64" (RFC 2849 value-spec).
func splitLine(l string) (typ, val string, err error) {
	i := strings.IndexByte(l, ':')
	if i <= 0 {
		return "", "", errors.New("missing ':' after attribute description")
	}
	typ = l[:i]
	if strings.ContainsAny(typ, " \t") {
		return "", "", fmt.Errorf("bad attribute description %q", typ)
	}
	rest := l[i+1:]
	switch {
	case strings.HasPrefix(rest, ":"):
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest[1:]))
		if err != nil {
			return "", "", fmt.Errorf("bad base64 value for %s", typ)
		}
		return typ, string(b), nil
	case strings.HasPrefix(rest, "<"):
		return "", "", fmt.Errorf("URL values (%s:<) are not supported", typ)
	default:
		return typ, strings.TrimLeft(rest, " "), nil
	}
}

// Writer writes entries as LDIF content records.
type Writer struct {
	w       *bufio.Writer
	started bool
}

// NewWriter returns a Writer on w. Call Flush when done.
func NewWriter(w io.Writer) *Writer { return &Writer{w: bufio.NewWriterSize(w, 64<<10)} }

// Write writes one entry, separated from the previous by a blank line.
func (w *Writer) Write(e *ldapstore.Entry) error {
	if !w.started {
		w.started = true
		w.w.WriteString("version: 1\n")
	}
	w.w.WriteByte('\n')
	writeLine(w.w, "dn", e.DN)
	for _, a := range e.Attributes {
		for _, v := range a.Vals {
			writeLine(w.w, a.Type, v)
		}
	}
	return nil
}

// Flush writes buffered data to the underlying writer.
func (w *Writer) Flush() error { return w.w.Flush() }

// writeLine writes "type: value" or "type:: base64" when the value is not a
// SAFE-STRING (RFC 2849), folded at 76 columns.
func writeLine(w *bufio.Writer, typ, val string) {
	var line string
	if safe(val) {
		line = typ + ": " + val
	} else {
		line = typ + ":: " + base64.StdEncoding.EncodeToString([]byte(val))
	}
	width := 76
	for len(line) > width {
		cut := width
		// Never split a UTF-8 sequence.
		for cut > 1 && !utf8.RuneStart(line[cut]) {
			cut--
		}
		w.WriteString(line[:cut])
		w.WriteString("\n ")
		line = line[cut:]
		width = 75 // continuation lines start with a space
	}
	w.WriteString(line)
	w.WriteByte('\n')
}

// safe reports whether v is an RFC 2849 SAFE-STRING that also reads back
// unchanged (no trailing space).
func safe(v string) bool {
	if v == "" {
		return true
	}
	switch v[0] {
	case ' ', ':', '<':
		return false
	}
	if v[len(v)-1] == ' ' {
		return false
	}
	return !bytes.ContainsFunc([]byte(v), func(r rune) bool {
		return r == 0 || r == '\n' || r == '\r' || r >= 0x80
	})
}
