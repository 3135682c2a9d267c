package smtp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"postern/smtp/queue"
)

// lookupTimeout bounds one policy decision.
const lookupTimeout = 30 * time.Second

// backend creates a session per client connection for go-smtp.
type backend struct{ g *Gateway }

func (b backend) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	fc, ok := c.Conn().(*frontConn)
	if !ok {
		return nil, errClosing.wire()
	}
	if !b.g.track() {
		return nil, errClosing.wire()
	}
	s := &session{g: b.g, c: c, fc: fc}
	fc.sess = s
	return s, nil
}

// session is one client connection's SMTP state. go-smtp calls its methods
// from the connection's goroutine (and, for BDAT, Data from one more), one at
// a time.
type session struct {
	g   *Gateway
	c   *gosmtp.Conn
	fc  *frontConn
	out bool

	hasFrom bool
	from    string
	opts    gosmtp.MailOptions
	rcpts   []queue.Recipient
	seen    map[string]bool
}

// reply logs e with its cause and returns what go-smtp writes to the peer.
func (s *session) reply(e *Error) error {
	lvl := slog.LevelDebug
	if e.Err != nil {
		lvl = slog.LevelError
	}
	s.g.log.Log(context.Background(), lvl, "smtp: refused",
		slog.String("client", s.fc.info.remote.String()), slog.String("reply", e.Error()))
	return e.wire()
}

// Mail implements the MAIL command (RFC 5321 §4.1.1.2).
func (s *session) Mail(from string, opts *gosmtp.MailOptions) error {
	if s.fc.handedOver() {
		return errClosing.wire()
	}
	if s.hasFrom {
		return s.reply(errNestedMail)
	}
	if from != "" {
		m, p := checkMailbox(from, opts.UTF8)
		switch p {
		case addrSyntax:
			return s.reply(errBadSender)
		case addrUTF8:
			return s.reply(errNeedUTF8)
		}
		from = m.String()
	}
	// RFC 3461 §4.4: ENVID is at most 100 characters of printable ASCII
	// (go-smtp checks the characters after decoding the xtext).
	if len(opts.EnvelopeID) > 100 {
		return s.reply(errBadEnvID)
	}
	if e := s.g.storageCheck(opts.Size); e != nil {
		return s.reply(e)
	}
	s.hasFrom, s.from, s.opts = true, from, *opts
	return nil
}

// Rcpt implements the RCPT command (RFC 5321 §4.1.1.3) and the policy.
func (s *session) Rcpt(to string, opts *gosmtp.RcptOptions) error {
	if s.fc.handedOver() {
		return errClosing.wire()
	}
	m, p := checkMailbox(to, s.opts.UTF8)
	switch p {
	case addrSyntax:
		return s.reply(errBadRcpt)
	case addrUTF8:
		return s.reply(errNeedUTF8)
	}
	if opts.OriginalRecipient != "" && !validORCPT(opts.OriginalRecipientType, opts.OriginalRecipient) {
		return s.reply(errBadORCPT)
	}
	local, domain, addr := m.local, m.domain, m.String()
	// The disk may have filled since MAIL (RFC 5321 §4.5.3.1.10: 452).
	if e := s.g.storageCheck(s.opts.Size); e != nil {
		return s.reply(e)
	}
	ctx, cancel := context.WithTimeout(s.g.ctx, lookupTimeout)
	defer cancel()
	if e := s.g.checkRecipient(ctx, s.fc.info, local, domain); e != nil {
		return s.reply(e)
	}
	if p := s.g.cfg.Processor; p != nil {
		if e := p.CheckRecipient(ctx, s.from, addr); e != nil {
			return s.reply(e)
		}
	}
	key := strings.ToLower(addr)
	if s.seen[key] {
		return nil // a duplicate recipient gets one copy
	}
	if s.seen == nil {
		s.seen = make(map[string]bool)
	}
	s.seen[key] = true
	r := queue.Recipient{Addr: addr}
	for _, n := range opts.Notify {
		switch n {
		case gosmtp.DSNNotifyNever:
			r.Notify |= queue.NotifyNever
		case gosmtp.DSNNotifySuccess:
			r.Notify |= queue.NotifySuccess
		case gosmtp.DSNNotifyFailure:
			r.Notify |= queue.NotifyFailure
		case gosmtp.DSNNotifyDelayed:
			r.Notify |= queue.NotifyDelay
		}
	}
	if opts.OriginalRecipient != "" {
		r.ORcpt = string(opts.OriginalRecipientType) + ";" + opts.OriginalRecipient
	}
	s.rcpts = append(s.rcpts, r)
	return nil
}

// Data reads the message, queues it durably and only then answers
// "250 2.0.0 Ok: queued as ID" (RFC 5321 §4.1.1.4, §6.1: the receiver takes
// responsibility with the 250).
func (s *session) Data(r io.Reader) error {
	if pr, ok := r.(*io.PipeReader); ok { // BDAT: go-smtp's goroutine (bdatflight.go)
		s.fc.flight.begin(pr)
		defer s.fc.flight.end()
	}
	if s.fc.handedOver() {
		return errClosing.wire()
	}
	id := s.g.q.NewID()
	now := time.Now()
	var content []byte
	if _, bdat := r.(*io.PipeReader); bdat {
		var e *Error
		if content, e = s.readChunks(r, id, now); e != nil {
			return s.reply(e)
		}
	} else {
		// DATA: frontConn decoded the body into a buffer of its own
		// (dataread.go); go-smtp's reader yields only the end of data.
		if _, err := io.Copy(io.Discard, r); err != nil {
			s.dropBody()
			return s.reply(dataError(err))
		}
		body := s.fc.in.body
		s.fc.in.body = nil
		if body == nil {
			return s.reply(dataError(io.ErrUnexpectedEOF))
		}
		defer putBody(body.canon.dst)
		var e *Error
		if content, e = s.withTrace(body, id, now); e != nil {
			return s.reply(e)
		}
	}
	if s.fc.handedOver() {
		return errClosing.wire()
	}
	if p := s.g.cfg.Processor; p != nil {
		addrs := make([]string, len(s.rcpts))
		for i, r := range s.rcpts {
			addrs[i] = r.Addr
		}
		ctx, cancel := context.WithTimeout(s.g.ctx, lookupTimeout)
		e := p.CheckMessage(ctx, s.from, addrs, content)
		cancel()
		if e != nil {
			return s.reply(e)
		}
	}
	m := &queue.Message{
		ID:         id,
		Arrival:    now,
		From:       s.from,
		EnvID:      s.opts.EnvelopeID,
		Ret:        string(s.opts.Return),
		UTF8:       s.opts.UTF8,
		Body:       string(s.opts.Body),
		Client:     sanitizeHelo(s.c.Hostname()) + " [" + s.fc.info.remote.String() + "]",
		Recipients: s.rcpts,
	}
	if err := s.g.q.Put(s.g.ctx, m, content); err != nil {
		if isNoSpace(err) {
			return s.reply(&Error{Code: 452, Enhanced: errStorage.Enhanced, Message: errStorage.Message, Err: err})
		}
		// Postfix's reply when the queue cannot take the message.
		return s.reply(newError(451, [3]int{4, 3, 0}, "Error: queue file write error", err))
	}
	s.g.met.received.Inc()
	s.g.log.Debug("smtp: queued", slog.String("id", id), slog.String("from", s.from), slog.Int("rcpts", len(s.rcpts)), slog.Int64("size", int64(len(content))))
	s.g.sch.enqueueNew(m)
	return (&Error{Code: 250, Enhanced: [3]int{2, 0, 0}, Message: "Ok: queued as " + id}).wire()
}

// readChunks reads a BDAT message (RFC 3030) from r, go-smtp's pipe of
// the chunks as sent, and returns it as canonical CRLF lines after the
// Received field.
func (s *session) readChunks(r io.Reader, id string, now time.Time) ([]byte, *Error) {
	var buf bytes.Buffer
	buf.Grow(16 << 10)
	s.writeReceived(&buf, id, now)
	trace := buf.Len()
	// The content is kept as canonical CRLF lines whatever line ends the
	// client used (canonical.go): a BDAT chunk arrives as sent.
	text := canonText{dst: &buf}
	n, err := io.Copy(&text, io.LimitReader(r, s.g.cfg.MaxMessageBytes+1))
	if err != nil {
		return nil, dataError(err)
	}
	if n > s.g.cfg.MaxMessageBytes {
		return nil, errTooBig
	}
	text.finish()
	if text.longest > maxTextLine {
		return nil, errLongLine
	}
	if int64(buf.Len()-trace) > s.g.cfg.MaxMessageBytes {
		// Bare LFs of a BDAT chunk grew by their CRs.
		return nil, errTooBig
	}
	return guardTrace(buf.Bytes(), trace), nil
}

// withTrace returns the DATA content decoded by d, after its headroom,
// with the Received field put in front; the field goes into the headroom
// when it fits, so that the content is not copied.
func (s *session) withTrace(d *dataDecoder, id string, now time.Time) ([]byte, *Error) {
	b := d.canon.dst.Bytes()
	if d.over || int64(len(b)-bodyHeadroom) > s.g.cfg.MaxMessageBytes {
		return nil, errTooBig
	}
	if d.canon.longest > maxTextLine {
		return nil, errLongLine
	}
	var tb bytes.Buffer
	tb.Grow(256)
	s.writeReceived(&tb, id, now)
	trace := tb.Len()
	if len(b) > bodyHeadroom && (b[bodyHeadroom] == ' ' || b[bodyHeadroom] == '\t') {
		tb.WriteString("\r\n") // see guardTrace
	}
	if tb.Len() > bodyHeadroom {
		return guardTrace(append(tb.Bytes(), b[bodyHeadroom:]...), trace), nil
	}
	start := bodyHeadroom - tb.Len()
	copy(b[start:], tb.Bytes())
	return b[start:], nil
}

// guardTrace: a first line that starts with white space would continue our
// Received field (RFC 5322 §2.2.3 folding) and let the client write into
// the trace. It is no header field, so the client's header section is
// empty: the empty line that says so goes first. trace is the length of
// the field in content.
func guardTrace(content []byte, trace int) []byte {
	if len(content) > trace && (content[trace] == ' ' || content[trace] == '\t') {
		return append(append(append(make([]byte, 0, len(content)+2), content[:trace]...), "\r\n"...), content[trace:]...)
	}
	return content
}

// dropBody releases a decoded DATA body that will not be queued.
func (s *session) dropBody() {
	if b := s.fc.in.body; b != nil {
		s.fc.in.body = nil
		putBody(b.canon.dst)
	}
}

// bodyHeadroom is room left before a DATA body in its buffer for the
// Received field (about 200 octets; longer ones are copied in front).
const bodyHeadroom = 1024

// bodies recycles DATA body buffers (issue 16: one 16 KB buffer per message
// and its growth were a tenth of the allocations).
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// getBody returns an empty body buffer with the headroom written.
func getBody() *bytes.Buffer {
	b := bodies.Get().(*bytes.Buffer)
	b.Reset()
	b.Grow(bodyHeadroom + 16<<10)
	b.Write(make([]byte, bodyHeadroom))
	return b
}

// putBody recycles b unless it grew large (a big message).
func putBody(b *bytes.Buffer) {
	if b.Cap() <= 1<<20 {
		bodies.Put(b)
	}
}

// dataError maps a failure while reading DATA or BDAT to a reply; nothing is
// queued.
func dataError(err error) *Error {
	var se *gosmtp.SMTPError
	var ne net.Error
	switch {
	case errors.As(err, &se): // go-smtp's ErrDataTooLarge: 552 5.3.4
		return &Error{Code: se.Code, Enhanced: [3]int(se.EnhancedCode), Message: se.Message}
	case errors.As(err, &ne) && ne.Timeout():
		return errDataTimeout
	}
	return newError(451, [3]int{4, 3, 0}, "Error: message transfer aborted", err)
}

func (s *session) Reset() {
	s.fc.flight.reset()
	s.hasFrom, s.from, s.opts = false, "", gosmtp.MailOptions{}
	s.rcpts, s.seen = nil, nil
}

func (s *session) Logout() error {
	if !s.out {
		s.out = true
		s.g.active.Done()
	}
	return nil
}

// checkRecipient applies the policy to one recipient address: managed
// domains accept mail from anyone (users checked when the domain has any),
// other domains only from relay networks and cluster members.
func (g *Gateway) checkRecipient(ctx context.Context, info *connInfo, local, domain string) *Error {
	d := g.cfg.Directory
	_, managed, err := d.Domain(ctx, domain)
	if err != nil {
		return tempLookup(err)
	}
	if managed {
		// RFC 5321 §4.5.1: postmaster must be accepted for every domain.
		if strings.EqualFold(local, "postmaster") {
			return nil
		}
		has, err := d.HasUsers(ctx, domain)
		if err != nil {
			return tempLookup(err)
		}
		if !has {
			return nil
		}
		ok, err := d.UserExists(ctx, local+"@"+domain)
		if err != nil {
			return tempLookup(err)
		}
		if !ok {
			return errUnknownUser
		}
		return nil
	}
	if info.injected != "" {
		return nil
	}
	rp, err := d.Relay(ctx)
	if err != nil {
		return tempLookup(err)
	}
	for _, p := range rp.Networks {
		if info.remote.IsValid() && p.Contains(info.remote) {
			return nil
		}
	}
	if rp.Stale {
		return tempLookup(ErrDirectoryUnavailable)
	}
	return errRelayDenied
}
