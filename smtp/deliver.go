package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"strings"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"postern/smtp/queue"
)

// result is the outcome of one recipient in one attempt.
type result struct {
	idx    int
	status queue.Status // Delivered, Deferred or Failed
	diag   string       // "550 5.1.1 text" or a local reason
	enh    string       // "5.1.1"
	remote string       // remote MTA host, "" for local failures
}

// deliver runs one job over *ocp (dialled if nil). connFailed is set when
// no host of the next hop could be reached, so the caller can defer the
// other jobs waiting for it.
func (g *Gateway) deliver(ctx context.Context, r route, ocp **outConn, j *job) (res []result, connFailed *Error) {
	m, ok := g.q.Get(j.id)
	if !ok {
		return nil, nil
	}
	// Without a Processor the content is only read (prepareOutbound makes
	// new slices), so the queue's own copy will do.
	get := g.q.ContentShared
	if g.cfg.Processor != nil {
		get = g.q.Content
	}
	content, err := get(j.id)
	if err != nil {
		return failAll(j, newError(451, [3]int{4, 3, 0}, "queue read error", err), ""), nil
	}
	env := Envelope{ID: m.ID, From: m.From, Rcpts: make([]string, len(j.rcpts))}
	for i, idx := range j.rcpts {
		env.Rcpts[i] = m.Recipients[idx].Addr
	}
	// The Processor (secure mail) may give recipients different content:
	// one transaction per part, over the same connection.
	parts, res := g.prepare(ctx, env, j, content)
	for i, p := range parts {
		pr, cf := g.deliverPart(ctx, r, ocp, &m, p.j, p.content)
		res = append(res, pr...)
		if cf != nil {
			for _, rest := range parts[i+1:] {
				res = append(res, failAll(rest.j, cf, "")...)
			}
			return res, cf
		}
		if ctx.Err() != nil {
			break
		}
	}
	return res, nil
}

// deliverPart sends one transaction of a job, redialling once when a
// cached connection turns out to be closed.
func (g *Gateway) deliverPart(ctx context.Context, r route, ocp **outConn, m *queue.Message, j *job, content []byte) (res []result, connFailed *Error) {
	for try := 0; try < 2; try++ {
		if ctx.Err() != nil {
			return nil, nil
		}
		if *ocp == nil {
			oc, e := g.connect(ctx, r)
			if e != nil {
				if ctx.Err() != nil {
					return nil, nil
				}
				return failAll(j, e, ""), e
			}
			*ocp = oc
		}
		oc := *ocp
		res, broken := g.send(oc, m, j, content)
		if !broken && oc.unusable {
			// The replies stand (the message may have been delivered:
			// no retry), but the connection takes no other message.
			oc.close()
			*ocp = nil
			return res, nil
		}
		if broken {
			oc.close()
			*ocp = nil
			// A cached connection the server closed while idle: redial once.
			if oc.reused && try == 0 && ctx.Err() == nil {
				continue
			}
		} else {
			oc.reused = true
		}
		if ctx.Err() != nil {
			return nil, nil // shutting down: the message stays queued as it was
		}
		return res, nil
	}
	return nil, nil
}

func failAll(j *job, e *Error, remote string) []result {
	res := make([]result, len(j.rcpts))
	st := queue.Failed
	if e.Temporary() {
		st = queue.Deferred
	}
	for i, idx := range j.rcpts {
		res[i] = result{idx: idx, status: st, diag: fmt.Sprintf("%d %s %s", e.Code, e.Status(), e.Message), enh: e.Status(), remote: remote}
	}
	return res
}

// connect dials the hosts of r in order until one greets us.
func (g *Gateway) connect(ctx context.Context, r route) (*outConn, *Error) {
	hosts, e := g.resolve(ctx, r)
	if e != nil {
		return nil, e
	}
	var last *Error
	for _, hp := range hosts {
		oc, e := g.connectHost(ctx, hp, r.tls)
		if e == nil {
			return oc, nil
		}
		g.log.Info("smtp: next hop unavailable", slog.String("host", hp), slog.String("err", e.Error()))
		last = e
		if ctx.Err() != nil {
			break
		}
	}
	return nil, last
}

// connectHost opens an SMTP session with one host: greeting, EHLO (HELO
// when the host does not know EHLO, RFC 5321 §4.1.1.1) and STARTTLS per
// policy (RFC 3207), then EHLO again over TLS (§4.2); the outConn
// (outbound.go) takes over the stream.
func (g *Gateway) connectHost(ctx context.Context, hp string, pol TLSPolicy) (*outConn, *Error) {
	host, _, _ := net.SplitHostPort(hp)
	temp := func(enh [3]int, msg string, err error) *Error {
		return newError(451, enh, msg, err)
	}
	dctx, cancel := context.WithTimeout(ctx, g.cfg.ConnectTimeout)
	conn, err := g.cfg.Dial(dctx, "tcp", hp)
	cancel()
	if err != nil {
		// RFC 3463 X.4.1: no answer from host.
		return nil, temp([3]int{4, 4, 1}, "connect to "+hp+" failed", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	fail := func(e *Error) (*outConn, *Error) {
		stop()
		conn.Close()
		return nil, e
	}
	conn.SetDeadline(time.Now().Add(g.cfg.CommandTimeout))
	tp := textproto.NewConn(conn)
	if _, msg, err := tp.ReadResponse(220); err != nil {
		return fail(temp([3]int{4, 4, 2}, "bad greeting from "+hp+": "+oneLine(msg), err))
	}
	ext := map[string]bool{}
	id, err := tp.Cmd("EHLO %s", g.cfg.Hostname)
	if err != nil {
		return fail(temp([3]int{4, 4, 2}, "lost connection with "+hp, err))
	}
	tp.StartResponse(id)
	_, msg, err := tp.ReadResponse(250)
	tp.EndResponse(id)
	var helloErr *textproto.Error
	if err == nil {
		ext = ehloKeywords(msg)
	} else if pe, ok := err.(*textproto.Error); !ok {
		return fail(temp([3]int{4, 4, 2}, "lost connection with "+hp, err))
	} else if pe.Code != 500 && pe.Code != 502 {
		return fail(classify(toSMTPError(pe), host))
	} else {
		helloErr = pe
	}
	var stream net.Conn = conn
	switch {
	case pol != TLSNone && ext["STARTTLS"]:
		id, err := tp.Cmd("STARTTLS")
		if err != nil {
			return fail(temp([3]int{4, 4, 2}, "lost connection with "+hp, err))
		}
		tp.StartResponse(id)
		_, msg, err := tp.ReadResponse(220)
		tp.EndResponse(id)
		if err != nil {
			if _, ok := err.(*textproto.Error); !ok || pol == TLSEncrypt {
				return fail(temp([3]int{4, 7, 5}, "STARTTLS refused by "+hp+": "+oneLine(msg), err))
			}
			break // "may": carry on in plaintext
		}
		tc := tls.Client(conn, g.outboundTLS(host, pol))
		if err := tc.HandshakeContext(ctx); err != nil {
			if pol == TLSEncrypt {
				return fail(temp([3]int{4, 7, 5}, "TLS handshake with "+hp+" failed", err))
			}
			// Opportunistic TLS failed: try again in plaintext, as
			// Postfix does at level "may".
			stop()
			conn.Close()
			g.log.Info("smtp: TLS failed, retrying in plaintext", slog.String("host", hp), slog.String("err", err.Error()))
			return g.connectHost(ctx, hp, TLSNone)
		}
		stream = tc
	case pol == TLSEncrypt:
		tp.Cmd("QUIT")
		// RFC 5248 X.7.10: encryption needed. Deferred, never plaintext.
		return fail(temp([3]int{4, 7, 10}, "TLS is required but "+hp+" does not offer STARTTLS", nil))
	}
	oc := newOutConn(stream, host, ext, stop, g.cfg.CommandTimeout)
	if stream != conn {
		// Extensions change after TLS (RFC 3207 §4.2): EHLO again.
		if oc.ext, err = oc.hello(g.cfg.Hostname); err != nil {
			oc.close()
			return nil, classify(err, host)
		}
	} else if helloErr != nil {
		// The server does not know EHLO (RFC 5321 §4.1.1.1): HELO.
		oc.conn.SetDeadline(time.Now().Add(g.cfg.CommandTimeout))
		err := oc.cmd("HELO " + g.cfg.Hostname)
		if err == nil {
			_, err = oc.reply(250)
		}
		if err != nil {
			oc.close()
			return nil, classify(err, host)
		}
	}
	conn.SetDeadline(time.Time{})
	return oc, nil
}

func (g *Gateway) outboundTLS(host string, pol TLSPolicy) *tls.Config {
	if pol == TLSEncrypt && g.cfg.VerifyEncrypt {
		return &tls.Config{ServerName: host, RootCAs: g.cfg.RootCAs, MinVersion: tls.VersionTLS12}
	}
	// Opportunistic (and unverified "encrypt", Postfix's default):
	// encryption without authentication (RFC 7435).
	return &tls.Config{ServerName: host, InsecureSkipVerify: true}
}

// send runs one mail transaction (RFC 5321 §3.3). broken reports that the
// connection is unusable afterwards.
func (g *Gateway) send(oc *outConn, m *queue.Message, j *job, content []byte) (res []result, broken bool) {
	rcpts := make([]string, len(j.rcpts))
	for i, idx := range j.rcpts {
		rcpts[i] = m.Recipients[idx].Addr
	}
	out, e := prepareOutbound(m, rcpts, content, oc.ext, oc.host)
	if e != nil {
		return failAll(j, e, ""), false // our decision, not the next hop's reply
	}
	content = out.content
	if p := g.cfg.Processor; p != nil {
		sealed, e := p.Seal(g.ctx, Envelope{ID: m.ID, From: m.From, Rcpts: rcpts}, content)
		if e != nil {
			return failAll(j, e, ""), false
		}
		content = sealed
	}
	// Every address goes into a command line to the next hop: it must be
	// exactly one RFC 5321 Mailbox (queue entries from before addresses
	// were checked may not be).
	if m.From != "" && !validWireMailbox(m.From, m.UTF8) {
		return failAll(j, errQueuedSender, ""), false
	}
	if g.cfg.Processor != nil {
		content = canonical(content) // what Seal made, as CRLF lines
	}
	mail, err := oc.mailLine(m.From, int64(len(content)), out.utf8, m.Ret, m.EnvID)
	if err != nil {
		return failAll(j, newError(451, [3]int{4, 4, 0}, "error talking to "+oc.host+": "+err.Error(), err), ""), false
	}
	res = make([]result, 0, len(j.rcpts))
	var sent []int // recipients whose RCPT goes out, in order
	var lines []string
	for _, idx := range j.rcpts {
		rc := m.Recipients[idx]
		if !validWireMailbox(rc.Addr, m.UTF8) {
			res = append(res, replyResult(idx, errQueuedRcpt, ""))
			continue
		}
		line, err := oc.rcptLine(rc.Addr, rcptOptions(rc))
		if err != nil {
			res = append(res, replyResult(idx, newError(451, [3]int{4, 4, 0}, "error talking to "+oc.host+": "+err.Error(), err), ""))
			continue
		}
		sent = append(sent, idx)
		lines = append(lines, line)
	}
	if len(sent) == 0 {
		return res, false
	}
	tx, err := oc.transaction(mail, lines, content)
	if tx.reset != nil {
		// The next hop's transaction may still be open, or it sent
		// replies to no command: the connection carries no other message
		// (the replies above still decide).
		g.log.Info("smtp: next hop connection in an unknown state, closing", slog.String("host", oc.host), slog.String("err", tx.reset.Error()))
		oc.unusable = true
	}
	if tx.mail != nil {
		// The reply to MAIL decides for every recipient (a 421, say, even
		// when the connection then closed under the pipelined RCPTs).
		r, broken := g.txFail(j, j.rcpts, tx.mail, oc.host)
		return r, broken || err != nil
	}
	if err != nil && len(tx.rcpts) == 0 {
		return g.txFail(j, j.rcpts, err, oc.host)
	}
	var accepted []int
	for i, idx := range sent {
		switch {
		case i >= len(tx.rcpts):
			r, _ := g.txFail(j, []int{idx}, err, oc.host)
			res = append(res, r...)
		case tx.rcpts[i] != nil:
			res = append(res, replyResult(idx, classify(tx.rcpts[i], oc.host), oc.host))
		default:
			accepted = append(accepted, idx)
		}
	}
	if len(accepted) == 0 {
		return res, err != nil
	}
	if err == nil && tx.data != nil {
		err = tx.data
	}
	if err != nil {
		r, broken := g.txFail(j, accepted, err, oc.host)
		return append(res, r...), broken
	}
	for _, idx := range accepted {
		res = append(res, result{idx: idx, status: queue.Delivered, diag: "250 " + oneLine(tx.text), enh: "2.0.0", remote: oc.host})
	}
	return res, false
}

// txFail gives every recipient in idxs the outcome of a failed command;
// broken when it was not an SMTP reply (the connection is gone).
func (g *Gateway) txFail(j *job, idxs []int, err error, host string) ([]result, bool) {
	e := classify(err, host)
	var se *gosmtp.SMTPError
	broken := !errors.As(err, &se)
	if !broken && se.Code == 421 {
		broken = true // RFC 5321 §3.8: the server is closing
	}
	res := make([]result, 0, len(idxs))
	for _, idx := range idxs {
		res = append(res, replyResult(idx, e, host))
	}
	return res, broken
}

func replyResult(idx int, e *Error, host string) result {
	st := queue.Failed
	if e.Temporary() {
		st = queue.Deferred
	}
	return result{idx: idx, status: st, diag: fmt.Sprintf("%d %s %s", e.Code, e.Status(), e.Message), enh: e.Status(), remote: host}
}

// classify turns a client error into a typed reply: the next hop's own
// reply, or a temporary local failure for I/O errors.
func classify(err error, host string) *Error {
	var se *gosmtp.SMTPError
	if errors.As(err, &se) {
		enh := [3]int(se.EnhancedCode)
		if enh[0] <= 0 {
			enh = [3]int{se.Code / 100, 0, 0}
		}
		return &Error{Code: se.Code, Enhanced: enh, Message: oneLine(se.Message)}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return newError(451, [3]int{4, 4, 2}, "lost connection with "+host, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return newError(451, [3]int{4, 4, 2}, "timeout talking to "+host, err)
	}
	return newError(451, [3]int{4, 4, 0}, "error talking to "+host+": "+oneLine(err.Error()), err)
}

func rcptOptions(r queue.Recipient) *gosmtp.RcptOptions {
	o := &gosmtp.RcptOptions{}
	for _, f := range []struct {
		bit queue.Notify
		v   gosmtp.DSNNotify
	}{{queue.NotifyNever, gosmtp.DSNNotifyNever}, {queue.NotifySuccess, gosmtp.DSNNotifySuccess},
		{queue.NotifyFailure, gosmtp.DSNNotifyFailure}, {queue.NotifyDelay, gosmtp.DSNNotifyDelayed}} {
		if r.Notify&f.bit != 0 {
			o.Notify = append(o.Notify, f.v)
		}
	}
	if t, a, ok := strings.Cut(r.ORcpt, ";"); ok {
		o.OriginalRecipientType = gosmtp.DSNAddressType(strings.ToUpper(t))
		o.OriginalRecipient = a
	}
	return o
}

// oneLine flattens a (multi-line) reply text for logs and DSNs.
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\r", "")
	s = strings.ReplaceAll(s, "\n", " ")
	var sb strings.Builder
	for i := 0; i < len(s) && sb.Len() < 500; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			sb.WriteByte(c)
		}
	}
	return sb.String()
}
