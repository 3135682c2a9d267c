package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// The outbound client: the mail transaction (RFC 5321 §3.3) with a next hop,
// spoken by the gateway itself instead of go-smtp's client, for two reasons
// measured in bench/smtp.sh (issue 16):
//
//   - RFC 2920 pipelining: when the next hop offers PIPELINING, MAIL, every
//     RCPT and DATA go out in one write and their replies are read after it,
//     and the content with its end-of-data line goes out in one more write:
//     two writes per message instead of one per command and three for a
//     10 KB body (go-smtp's client has no pipelining and flushes 4 KB at a
//     time);
//   - dot-stuffing by lines: the queued content is canonical CRLF lines
//     (canonical.go), so RFC 5321 §4.5.2 stuffing only has to find the
//     lines that start with a period; textproto's DotWriter looks at each
//     octet through bufio.WriteByte (12 % of the gateway's CPU).
//
// Replies are parsed by net/textproto and handed on as *gosmtp.SMTPError,
// as go-smtp's client did, so classify and the retry policy are unchanged.

// outConn is an outbound SMTP connection, reused for consecutive jobs of
// one next hop.
type outConn struct {
	conn   net.Conn // the stream: the socket, or TLS on it after STARTTLS
	r      *textproto.Reader
	w      *bufio.Writer
	host   string
	ext    map[string]bool // EHLO keywords, upper case (RFC 5321 §4.1.1.1)
	reused bool
	// unusable: a transaction left the connection in an unknown state
	// (txReplies.reset); it is closed after its replies are recorded
	unusable bool
	stop     func() bool // detaches the close-on-shutdown hook

	cmdTimeout  time.Duration // for each reply
	dataTimeout time.Duration // for the reply to the end of data
}

// outWriteBuffer holds a pipelined command group, or a whole message of
// ordinary size with its end-of-data line, so that each goes out in one
// write (larger messages go out in writes of this size).
const outWriteBuffer = 64 << 10

// maxReplyLine bounds a reply line from the next hop, octets with CRLF:
// RFC 5321 §4.5.3.1.5's 512 doubled, with room (as go-smtp's client).
const maxReplyLine = 2000

var errReplyTooLong = errors.New("smtp: reply line from the next hop too long")

func newOutConn(stream net.Conn, host string, ext map[string]bool, stop func() bool, cmdTimeout time.Duration) *outConn {
	return &outConn{
		conn:        stream,
		r:           textproto.NewReader(bufio.NewReader(&replyLimit{r: stream})),
		w:           bufio.NewWriterSize(stream, outWriteBuffer),
		host:        host,
		ext:         ext,
		stop:        stop,
		cmdTimeout:  cmdTimeout,
		dataTimeout: 2 * cmdTimeout,
	}
}

// replyLimit fails a read once a line from the next hop grows past
// maxReplyLine, so that a hostile hop cannot make us buffer without end.
type replyLimit struct {
	r    io.Reader
	line int // octets of the current line so far
}

func (l *replyLimit) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for _, c := range p[:n] {
		if c == '\n' {
			l.line = 0
		} else if l.line++; l.line > maxReplyLine {
			return 0, errReplyTooLong
		}
	}
	return n, err
}

// reply reads one (multi-line) reply and returns its text, or an error:
// *gosmtp.SMTPError when the code is not the expected one (textproto's
// prefix rule: 25 accepts 250 and 251), any other error when the
// connection failed.
func (oc *outConn) reply(expect int) (string, error) {
	_, msg, err := oc.r.ReadResponse(expect)
	if pe, ok := err.(*textproto.Error); ok {
		return msg, toSMTPError(pe)
	}
	return msg, err
}

// toSMTPError splits the RFC 3463 enhanced status code off a reply text
// (RFC 2034 §3: it starts every line of the reply).
func toSMTPError(pe *textproto.Error) *gosmtp.SMTPError {
	se := &gosmtp.SMTPError{Code: pe.Code, Message: pe.Msg}
	code, msg, ok := strings.Cut(pe.Msg, " ")
	if !ok {
		return se
	}
	parts := strings.Split(code, ".")
	if len(parts) != 3 {
		return se
	}
	var enh gosmtp.EnhancedCode
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return se
		}
		enh[i] = n
	}
	se.EnhancedCode = enh
	se.Message = strings.ReplaceAll(msg, "\n"+code+" ", "\n")
	return se
}

// cmd writes one command line and flushes it.
func (oc *outConn) cmd(line string) error {
	oc.w.WriteString(line)
	oc.w.WriteString("\r\n")
	return oc.w.Flush()
}

// hello sends EHLO (RFC 5321 §4.1.1.1) and falls back to HELO when the
// server does not know it (500 or 502); it returns the EHLO keywords.
func (oc *outConn) hello(name string) (map[string]bool, error) {
	oc.conn.SetDeadline(time.Now().Add(oc.cmdTimeout))
	defer oc.conn.SetDeadline(time.Time{})
	if err := oc.cmd("EHLO " + name); err != nil {
		return nil, err
	}
	msg, err := oc.reply(250)
	if err == nil {
		return ehloKeywords(msg), nil
	}
	var se *gosmtp.SMTPError
	if !errors.As(err, &se) || se.Code != 500 && se.Code != 502 {
		return nil, err
	}
	if err := oc.cmd("HELO " + name); err != nil {
		return nil, err
	}
	_, err = oc.reply(250)
	return map[string]bool{}, err
}

// ehloKeywords returns the keywords of an EHLO reply's text (the lines
// after the first).
func ehloKeywords(msg string) map[string]bool {
	ext := map[string]bool{}
	for _, l := range strings.Split(msg, "\n")[1:] {
		kw, _, _ := strings.Cut(l, " ")
		ext[strings.ToUpper(kw)] = true
	}
	return ext
}

// quit ends the session politely (RFC 5321 §4.1.1.10) and closes it.
func (oc *outConn) quit() {
	if oc == nil {
		return
	}
	oc.stop()
	oc.conn.SetDeadline(time.Now().Add(oc.cmdTimeout))
	if oc.cmd("QUIT") == nil {
		oc.reply(221)
	}
	oc.conn.Close()
}

func (oc *outConn) close() {
	oc.stop()
	oc.conn.Close()
}

// txReplies are the next hop's answers in one transaction.
type txReplies struct {
	mail  error   // MAIL; nil for 250
	rcpts []error // one per RCPT sent; nil for 250/251
	data  error   // DATA (354 expected) or, after the content, the end of data
	text  string  // the text of the 250 to the end of data
	// reset is set when the RSET that closes a transaction the next hop
	// left open failed, or the next hop sent replies to no command: the
	// connection's state is unknown and it must not carry another message
	// (the replies above still hold).
	reset error
}

// rset ends a transaction the next hop left open (RFC 5321 §4.1.1.5): after
// DATA was refused, or when every recipient was. Anything but 250 leaves the
// session in an unknown state: it is an error, never an SMTP reply to
// attribute to a recipient.
func (oc *outConn) rset() error {
	if err := oc.cmd("RSET"); err != nil {
		return err
	}
	if _, err := oc.reply(250); err != nil {
		return fmt.Errorf("smtp: RSET refused by %s: %w", oc.host, err)
	}
	return nil
}

// mailLine builds the MAIL command (RFC 5321 §4.1.1.2) with the parameters
// of the extensions the next hop offers: BODY (RFC 6152), SIZE (RFC 1870),
// SMTPUTF8 (RFC 6531), RET and ENVID (RFC 3461 §4.3, §4.4).
func (oc *outConn) mailLine(from string, size int64, utf8 bool, ret, envID string) (string, error) {
	var sb strings.Builder
	sb.Grow(64 + len(from) + 3*len(envID))
	sb.WriteString("MAIL FROM:<")
	sb.WriteString(from)
	sb.WriteByte('>')
	if oc.ext["8BITMIME"] {
		sb.WriteString(" BODY=8BITMIME")
	}
	if oc.ext["SIZE"] && size != 0 {
		sb.WriteString(" SIZE=")
		sb.WriteString(strconv.FormatInt(size, 10))
	}
	if utf8 {
		if !oc.ext["SMTPUTF8"] {
			return "", errors.New("smtp: next hop does not offer SMTPUTF8")
		}
		sb.WriteString(" SMTPUTF8")
	}
	if oc.ext["DSN"] {
		switch ret {
		case "FULL", "HDRS":
			sb.WriteString(" RET=" + ret)
		}
		if envID != "" {
			if !printableASCII(envID) {
				return "", errors.New("smtp: malformed ENVID")
			}
			sb.WriteString(" ENVID=")
			sb.WriteString(xtext(envID))
		}
	}
	return sb.String(), nil
}

// rcptLine builds the RCPT command (RFC 5321 §4.1.1.3) with NOTIFY and
// ORCPT (RFC 3461 §4.1, §4.2) when the next hop offers DSN.
func (oc *outConn) rcptLine(to string, o *gosmtp.RcptOptions) (string, error) {
	var sb strings.Builder
	sb.WriteString("RCPT TO:<")
	sb.WriteString(to)
	sb.WriteByte('>')
	if !oc.ext["DSN"] {
		return sb.String(), nil
	}
	for i, v := range o.Notify {
		if i == 0 {
			sb.WriteString(" NOTIFY=")
		} else {
			sb.WriteByte(',')
		}
		sb.WriteString(string(v))
	}
	if o.OriginalRecipient != "" {
		var enc string
		switch o.OriginalRecipientType {
		case gosmtp.DSNAddressTypeRFC822:
			if !printableASCII(o.OriginalRecipient) {
				return "", errors.New("smtp: malformed ORCPT")
			}
			enc = xtext(o.OriginalRecipient)
		case gosmtp.DSNAddressTypeUTF8:
			// RFC 6533 §3: utf-8-addr-unitext where SMTPUTF8 is
			// offered, utf-8-addr-xtext elsewhere.
			enc = utf8AddrText(o.OriginalRecipient, oc.ext["SMTPUTF8"])
		default:
			return "", errors.New("smtp: unknown ORCPT address type")
		}
		sb.WriteString(" ORCPT=" + string(o.OriginalRecipientType) + ";" + enc)
	}
	return sb.String(), nil
}

// transaction runs MAIL, RCPT for each of rcpts and, when a recipient was
// accepted, DATA with content (canonical CRLF lines). With PIPELINING
// (RFC 2920 §3.1) the commands up to DATA go out in one group. err is set
// when the connection failed (it is unusable); the replies received before
// stay in tx.
func (oc *outConn) transaction(mail string, rcpts []string, content []byte) (tx txReplies, err error) {
	tx, err = oc.exchange(mail, rcpts, content)
	if err == nil && tx.reset == nil && oc.r.R.Buffered() > 0 {
		// The next hop sent more than the replies to our commands: its
		// next reply cannot be told from these, so the connection's
		// state is unknown (the desynchronisation RFC 2920 §3.2 warns
		// of); it carries no other message.
		tx.reset = errUnsolicited
	}
	return tx, err
}

var errUnsolicited = errors.New("smtp: the next hop sent replies to no command")

// exchange is transaction without the check for unsolicited replies.
func (oc *outConn) exchange(mail string, rcpts []string, content []byte) (tx txReplies, err error) {
	pipelined := oc.ext["PIPELINING"]
	oc.conn.SetDeadline(time.Now().Add(oc.cmdTimeout))
	defer oc.conn.SetDeadline(time.Time{})
	// io is the first I/O error; a reply that is not an SMTP reply ends
	// the transaction.
	check := func(e error) (smtpReply error, ioErr error) {
		var se *gosmtp.SMTPError
		if e == nil || errors.As(e, &se) {
			return e, nil
		}
		return nil, e
	}
	accepted := 0
	if pipelined {
		// RFC 2920 §3.1: DATA is the last command of a group.
		oc.w.WriteString(mail + "\r\n")
		for _, r := range rcpts {
			oc.w.WriteString(r + "\r\n")
		}
		if err := oc.cmd("DATA"); err != nil {
			return tx, err
		}
		_, e := oc.reply(250)
		if tx.mail, err = check(e); err != nil {
			return tx, err
		}
		for range rcpts {
			_, e := oc.reply(25)
			var re error
			if re, err = check(e); err != nil {
				return tx, err
			}
			tx.rcpts = append(tx.rcpts, re)
			if re == nil && tx.mail == nil {
				accepted++
			}
		}
		_, e = oc.reply(354)
		if tx.data, err = check(e); err != nil {
			return tx, err
		}
		if tx.data == nil && accepted == 0 {
			// RFC 2920 §3.1 wants DATA refused without a valid
			// recipient; a server that says 354 anyway gets an empty
			// message for nobody.
			if err := oc.cmd("."); err != nil {
				return tx, err
			}
			_, e := oc.reply(250)
			_, err = check(e)
			return tx, err
		}
		if tx.mail == nil && (accepted == 0 || tx.data != nil) {
			// The transaction is open without recipients, or DATA was
			// refused (RFC 5321 §3.3: the transaction stays open): end
			// it, or the next MAIL on this connection is a nested one.
			tx.reset = oc.rset()
			return tx, nil
		}
		if tx.mail != nil {
			return tx, nil
		}
	} else {
		if err := oc.cmd(mail); err != nil {
			return tx, err
		}
		_, e := oc.reply(250)
		if tx.mail, err = check(e); err != nil || tx.mail != nil {
			return tx, err
		}
		for _, r := range rcpts {
			if err := oc.cmd(r); err != nil {
				return tx, err
			}
			_, e := oc.reply(25)
			var re error
			if re, err = check(e); err != nil {
				return tx, err
			}
			tx.rcpts = append(tx.rcpts, re)
			if re == nil {
				accepted++
			}
		}
		if accepted == 0 {
			tx.reset = oc.rset()
			return tx, nil
		}
		if err := oc.cmd("DATA"); err != nil {
			return tx, err
		}
		_, e = oc.reply(354)
		if tx.data, err = check(e); err != nil {
			return tx, err
		}
		if tx.data != nil {
			// DATA refused: the transaction is still open.
			tx.reset = oc.rset()
			return tx, nil
		}
	}
	if err := writeStuffed(oc.w, content); err != nil {
		return tx, err
	}
	if err := oc.w.Flush(); err != nil {
		return tx, err
	}
	oc.conn.SetDeadline(time.Now().Add(oc.dataTimeout))
	text, e := oc.reply(250)
	if tx.data, err = check(e); err != nil {
		return tx, err
	}
	tx.text = text
	return tx, nil
}

// writeStuffed writes content, canonical CRLF lines, as the DATA section:
// a period that starts a line is doubled (RFC 5321 §4.5.2) and the
// end-of-data line ".\r\n" follows (§4.1.1.4).
func writeStuffed(w *bufio.Writer, content []byte) error {
	end := content
	for len(content) > 0 {
		if content[0] == '.' {
			w.WriteByte('.')
		}
		// Up to and including the next line end followed by a period.
		i := bytes.Index(content, []byte("\n."))
		if i < 0 {
			w.Write(content)
			break
		}
		w.Write(content[:i+1])
		content = content[i+1:]
	}
	if len(end) > 0 && !bytes.HasSuffix(end, crlf) {
		// The last line lacks its CRLF (content that is not canonical):
		// without one the end-of-data line would be taken for its
		// continuation and the next hop would wait for the end.
		if end[len(end)-1] == '\r' {
			w.WriteByte('\n')
		} else {
			w.WriteString("\r\n")
		}
	}
	_, err := w.WriteString(".\r\n")
	return err
}

// utf8AddrText encodes an address as RFC 6533 §3 utf-8-addr-unitext
// (unitext true) or utf-8-addr-xtext: "\x{HEX}" for what xtext would
// encode, and for every non-ASCII character in the xtext form.
func utf8AddrText(s string, unitext bool) string {
	var sb strings.Builder
	for _, r := range s {
		switch {
		case r >= '!' && r <= '~' && r != '+' && r != '=':
			sb.WriteRune(r)
		case r > 0x7f && unitext:
			sb.WriteRune(r)
		default:
			fmt.Fprintf(&sb, `\x{%X}`, r)
		}
	}
	return sb.String()
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
