package smtp

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// The fuzz oracle: the client's octets read as RFC 5321 and RFC 3030 define
// them, in step with the server's replies. It is written apart from the
// server's reader (input.go, dataread.go, canonical.go) so that a mistake
// there shows up here as a difference, and it only claims what a correct
// server must do, so that it cannot cry wolf:
//
//   - command lines end at LF (CRLF or bare LF, as Postfix and go-smtp take
//     them); verbs are case-insensitive (RFC 5321 §2.4);
//   - every command line gets exactly one reply, in order (RFC 2920 §3);
//     a 421 may come instead of any reply, and then the server closes;
//   - a DATA body (after 354, which only DATA may get) runs to the first
//     line, CRLF-delimited, that is a single "."; a leading "." of other
//     lines is removed (RFC 5321 §4.5.2); no octet of it is a command;
//   - BDAT (RFC 3030 §2) with a count that is not 1*DIGIT below 2^32 gets
//     521 and a close; otherwise exactly count octets follow, whatever the
//     reply, and are never commands; only "BDAT n LAST" may queue;
//   - "queued as" answers only the end of a DATA body or a BDAT LAST.

// reply is one (possibly multi-line) server reply.
type reply struct {
	code int
	text string // the last line
}

func (r reply) queued() bool { return strings.HasPrefix(r.text, "250 2.0.0 Ok: queued as ") }

// queueID returns the ID of a "queued as" reply.
func (r reply) queueID() string { return strings.TrimPrefix(r.text, "250 2.0.0 Ok: queued as ") }

var replyLine = regexp.MustCompile(`^[2-5][0-9][0-9][ -]`)

func parseReplies(out []byte) ([]reply, error) {
	if len(out) > 0 && !bytes.HasSuffix(out, []byte("\r\n")) {
		return nil, fmt.Errorf("output does not end with CRLF")
	}
	var rs []reply
	for _, l := range strings.SplitAfter(string(out), "\r\n") {
		if l == "" {
			continue
		}
		l = strings.TrimSuffix(l, "\r\n")
		if !replyLine.MatchString(l) || strings.ContainsAny(l, "\r\n") {
			return nil, fmt.Errorf("malformed reply line %q", l)
		}
		if l[3] == ' ' {
			code, _ := strconv.Atoi(l[:3])
			rs = append(rs, reply{code, l})
		}
	}
	return rs, nil
}

// ackedMsg is a message the server took, with what the client sent as it.
type ackedMsg struct {
	id   string
	body []byte // as the client meant it: unstuffed DATA or the chunks
}

var verbSep = func(r rune) bool { return r == ' ' || r == '\t' }

// dialogue checks replies against in; it returns the messages acknowledged.
func dialogue(in []byte, rs []reply, maxLine int) ([]ackedMsg, error) {
	if len(rs) == 0 || rs[0].code != 220 {
		return nil, fmt.Errorf("no 220 greeting")
	}
	var acked []ackedMsg
	var chunks []byte // BDAT chunks of the transaction so far
	r := 1
	next := func(what string) (reply, error) {
		if r >= len(rs) {
			return reply{}, fmt.Errorf("no reply to %q", what)
		}
		r++
		return rs[r-1], nil
	}
	pos := 0
	for pos < len(in) {
		lf := bytes.IndexByte(in[pos:], '\n')
		if lf < 0 || lf+1 > maxLine {
			if len(in)-pos > maxLine || lf >= 0 {
				rep, err := next("an over-long line")
				if err != nil {
					return nil, err
				}
				if rep.code != 500 {
					return nil, fmt.Errorf("over-long line answered %q", rep.text)
				}
				return acked, nothingAfter(rs, r)
			}
			break // an unterminated last line is no command
		}
		line := string(in[pos : pos+lf+1])
		pos += lf + 1
		text := strings.TrimRight(line, "\r\n")
		rep, err := next(text)
		if err != nil {
			return nil, err
		}
		if rep.code == 421 {
			return acked, nothingAfter(rs, r)
		}
		var verb string
		var args []string
		if f := strings.FieldsFunc(text, verbSep); len(f) > 0 && !strings.HasPrefix(text, " ") && !strings.HasPrefix(text, "\t") {
			verb, args = strings.ToUpper(f[0]), f[1:]
		}
		if verb == "BDAT" {
			size, ok := chunkCount(args)
			if !ok {
				if rep.code != 521 {
					return nil, fmt.Errorf("%q (no count) answered %q, want 521 and close", text, rep.text)
				}
				return acked, nothingAfter(rs, r)
			}
			if rep.code == 521 {
				return nil, fmt.Errorf("%q answered %q", text, rep.text)
			}
			if pos+size > len(in) {
				return acked, nil // the client closed inside the chunk
			}
			chunk := in[pos : pos+size]
			pos += size
			last := len(args) == 2 && strings.EqualFold(args[1], "LAST")
			good := len(args) == 1 || last
			switch {
			case !good && rep.code != 501:
				return nil, fmt.Errorf("%q answered %q, want 501", text, rep.text)
			case rep.queued() && !last:
				return nil, fmt.Errorf("%q answered %q: queued without LAST", text, rep.text)
			case rep.queued():
				acked = append(acked, ackedMsg{rep.queueID(), append(chunks, chunk...)})
				chunks = nil
			case rep.code == 250 && good:
				chunks = append(chunks, chunk...)
			default:
				chunks = nil
			}
			continue
		}
		if rep.code == 354 {
			if strings.ToUpper(text) != "DATA" {
				return nil, fmt.Errorf("354 for %q", text)
			}
			body, n, ok := dataBody(in[pos:])
			if !ok {
				return acked, nil // the client closed inside the body
			}
			pos += n
			end, err := next("the end of data")
			if err != nil {
				return nil, err
			}
			if end.queued() {
				acked = append(acked, ackedMsg{end.queueID(), body})
			}
			if end.code == 421 {
				return acked, nothingAfter(rs, r)
			}
			continue
		}
		if rep.queued() {
			return nil, fmt.Errorf("%q answered %q", text, rep.text)
		}
		if rep.code == 521 {
			return nil, fmt.Errorf("%q answered %q: 521 is for BDAT", text, rep.text)
		}
		// NOOP, RSET and QUIT get their own reply, or a syntax error
		// (500/501) for what follows the verb: any other reply is the
		// reply to some other command, out of step.
		is := func(v string) bool {
			return len(text) >= 4 && strings.EqualFold(text[:4], v) && (len(text) == 4 || text[4] == ' ')
		}
		syntax := rep.code == 500 || rep.code == 501
		switch {
		case is("NOOP") && !syntax && !strings.Contains(rep.text, "successfully done nothing"),
			is("RSET") && !syntax && !strings.Contains(rep.text, "Session reset"),
			is("QUIT") && !syntax && rep.code != 221:
			return nil, fmt.Errorf("%q answered %q", text, rep.text)
		}
		if rep.code/100 == 2 && (is("RSET") || is("EHLO") || is("HELO")) {
			chunks = nil
		}
		if rep.code == 221 || rep.code == 220 { // QUIT; STARTTLS: the rest is TLS
			return acked, nothingAfter(rs, r)
		}
	}
	return acked, nothingAfter(rs, r)
}

// nothingAfter: the server may add one 421 when it closes, nothing else.
func nothingAfter(rs []reply, r int) error {
	rest := rs[r:]
	if len(rest) == 0 || len(rest) == 1 && rest[0].code == 421 {
		return nil
	}
	return fmt.Errorf("replies to nothing the client sent: %+v", rest)
}

// chunkCount: chunk-size = 1*DIGIT, below 2^32 (what the gateway takes).
func chunkCount(args []string) (int, bool) {
	if len(args) == 0 {
		return 0, false
	}
	for _, c := range args[0] {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(args[0], 10, 32)
	return int(n), err == nil
}

// dataBody finds the end of a DATA body: the first CRLF-delimited line
// that is ".". It returns the body unstuffed and the octets it spans.
func dataBody(b []byte) (body []byte, n int, ok bool) {
	var out []byte
	for p := 0; ; {
		i := bytes.Index(b[p:], []byte("\r\n"))
		if i < 0 {
			return nil, 0, false
		}
		line := b[p : p+i]
		p += i + 2
		if string(line) == "." {
			return out, p, true
		}
		out = append(out, bytes.TrimPrefix(line, []byte("."))...)
		out = append(out, "\r\n"...)
	}
}

// canonicalRef is the reference for canonical text: a run of CRs with or
// without an LF after it, or an LF, is one CRLF; the text ends with one.
var lineEnd = regexp.MustCompile(`\r*\n|\r+`)

func canonicalRef(b []byte) []byte {
	out := lineEnd.ReplaceAll(b, []byte("\r\n"))
	if len(out) > 0 && !bytes.HasSuffix(out, []byte("\r\n")) {
		out = append(out, "\r\n"...)
	}
	return out
}
