package smtp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
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
	var buf bytes.Buffer
	buf.Grow(16 << 10)
	s.writeReceived(&buf, id, now)
	trace := buf.Len()
	// The content is kept as canonical CRLF lines whatever line ends the
	// client used (canonical.go): a BDAT chunk arrives as sent, a DATA body
	// already canonical from dataDecoder.
	text := canonText{dst: &buf}
	n, err := io.Copy(&text, io.LimitReader(r, s.g.cfg.MaxMessageBytes+1))
	if err != nil {
		return s.reply(dataError(err))
	}
	if n > s.g.cfg.MaxMessageBytes {
		return s.reply(newError(552, [3]int{5, 3, 4}, "Maximum message size exceeded", nil))
	}
	text.finish()
	if text.longest > maxTextLine {
		return s.reply(errLongLine)
	}
	if int64(buf.Len()-trace) > s.g.cfg.MaxMessageBytes {
		// Bare LFs of a BDAT chunk grew by their CRs.
		return s.reply(newError(552, [3]int{5, 3, 4}, "Maximum message size exceeded", nil))
	}
	content := buf.Bytes()
	if len(content) > trace && (content[trace] == ' ' || content[trace] == '\t') {
		// A first line that starts with white space would continue our
		// Received field (RFC 5322 §2.2.3 folding) and let the client
		// write into the trace. It is no header field, so the client's
		// header section is empty: the empty line that says so goes first.
		content = append(append(append(make([]byte, 0, len(content)+2), content[:trace]...), "\r\n"...), content[trace:]...)
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
	s.g.sch.schedule(id, now, false)
	return (&Error{Code: 250, Enhanced: [3]int{2, 0, 0}, Message: "Ok: queued as " + id}).wire()
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
