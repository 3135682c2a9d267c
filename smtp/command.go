package smtp

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// command looks at one command line before go-smtp does. Most lines pass
// as they are; a few are answered here, where the octets that follow them
// are known:
//
//   - BDAT (RFC 3030 §2) is parsed here, because go-smtp's error paths
//     leave the chunk unread and then run it as commands. A count that
//     cannot be parsed loses the connection's framing for good: 521 and
//     close, as Postfix does. A count that parses with wrong other
//     arguments: 501, and exactly that many octets are dropped. A good line
//     reaches go-smtp rewritten as "BDAT n[ LAST]", for which every path of
//     go-smtp reads exactly n octets.
//   - HELO/EHLO with control characters or invalid UTF-8 in the name is
//     refused with 501 5.5.2: the name goes into trace headers and logs.
func (c *frontConn) command(line []byte) error {
	in := &c.in
	text := bytes.TrimRight(line, "\r\n") // what go-smtp parses
	verb, args := splitCommand(text)
	switch {
	case asciiFold(verb, "BDAT"):
		return c.bdat(args)
	case goVerb(text, "EHLO"), goVerb(text, "HELO"):
		if !validHeloName(heloName(text)) {
			c.say("501 5.5.2 Error: invalid hostname in HELO/EHLO")
			return nil
		}
		in.msg = false
	case goVerb(text, "RSET"), goVerb(text, "MAIL"):
		in.msg = false
	}
	in.out.Write(line)
	return nil
}

// maxChunk is the largest BDAT count go-smtp takes (it parses 32 bits).
const maxChunk = 1<<32 - 1

const bdatSyntax = "Syntax: BDAT count [LAST]"

// bdat handles a BDAT line: bdat-cmd = "BDAT" SP chunk-size [SP end-marker]
// CRLF, chunk-size = 1*DIGIT, end-marker = "LAST" (RFC 3030 §2).
func (c *frontConn) bdat(args [][]byte) error {
	in := &c.in
	now := time.Now()
	var size uint64
	var err error
	if len(args) > 0 && allDigits(args[0]) {
		size, err = strconv.ParseUint(string(args[0]), 10, 64)
	}
	if len(args) == 0 || !allDigits(args[0]) || err != nil || size > maxChunk {
		c.say("521 5.5.4 " + bdatSyntax)
		return c.fail(io.EOF)
	}
	last := len(args) == 2 && asciiFold(args[1], "LAST")
	if len(args) > 2 || (len(args) == 2 && !last) {
		c.say("501 5.5.4 " + bdatSyntax)
		// RFC 3030 §2: the chunk follows the command even when the command
		// is refused; drop it. The transaction has failed (RFC 3030 §4):
		// go-smtp gets an RSET whose reply is dropped, so that chunks the
		// client pipelined after this one are refused and dropped too
		// instead of being appended to a message without this chunk.
		in.mode, in.chunk = inDiscard, int64(size)
		in.msg = false
		in.startMessage(now)
		c.mu.Lock()
		c.swallow++
		c.mu.Unlock()
		in.out.WriteString("RSET\r\n")
		return nil
	}
	if size == 0 && !last {
		// An empty chunk adds nothing; go-smtp would start a transfer
		// goroutine for it that bdatFlight could not see (see there).
		if c.sess != nil && c.sess.hasFrom && len(c.sess.rcpts) > 0 {
			c.say("250 2.0.0 Continue")
		} else {
			c.say("503 5.5.1 Error: need RCPT command")
		}
		return nil
	}
	c.flight.settle()
	in.out.WriteString("BDAT " + strconv.FormatUint(size, 10))
	if last {
		in.out.WriteString(" LAST")
	}
	in.out.WriteString("\r\n")
	in.mode, in.chunk, in.last = inChunk, int64(size), last
	in.startMessage(now)
	return nil
}

// splitCommand splits a command line into its verb and the arguments
// separated by SP or HTAB.
func splitCommand(text []byte) (verb []byte, args [][]byte) {
	f := bytes.FieldsFunc(text, func(r rune) bool { return r == ' ' || r == '\t' })
	if len(text) == 0 || text[0] == ' ' || text[0] == '\t' || len(f) == 0 {
		return nil, f // no verb at the start of the line
	}
	return f[0], f[1:]
}

// goVerb reports whether go-smtp (parseCmd) takes text for the command
// verb: four letters alone, or followed by a space and arguments.
func goVerb(text []byte, verb string) bool {
	if len(text) < 4 || !asciiFold(text[:4], verb) {
		return false
	}
	return len(text) == 4 || (len(text) >= 6 && text[4] == ' ')
}

// heloName is the name go-smtp takes from a HELO/EHLO line.
func heloName(text []byte) string {
	if len(text) < 6 {
		return ""
	}
	arg := strings.TrimSpace(string(text[5:]))
	name, _, _ := strings.Cut(arg, " ")
	return name
}

// validHeloName accepts names without control characters in valid UTF-8
// (RFC 5321 §4.1.1.1: a domain or address literal; RFC 6531 §3.7.1 allows
// U-labels). Names that are not domains otherwise are accepted, as Postfix
// does by default; trace headers sanitize them (sanitizeHelo).
func validHeloName(name string) bool {
	if name == "" {
		return true // go-smtp answers 501 itself
	}
	if !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func asciiFold(b []byte, s string) bool {
	return len(b) == len(s) && strings.EqualFold(string(b), s)
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}
