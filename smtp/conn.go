package smtp

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// connInfo is what a connection's sessions know about the client. It
// outlives a STARTTLS, which hands the socket to a new frontConn.
type connInfo struct {
	remote     netip.Addr
	injected   string    // cluster member that injects on this connection, "" if none
	sessionEnd time.Time // no new command after this (Config.SessionTimeout)
	release    func()    // frees the connection slot; called once
	once       sync.Once
}

func (i *connInfo) done() { i.once.Do(i.release) }

// frontConn is the net.Conn go-smtp serves. It sits between go-smtp and the
// socket (or the TLS stream after STARTTLS) and:
//
//   - reads the client's input itself and hands go-smtp one command line,
//     DATA body or BDAT chunk at a time, after checking it (input.go,
//     command.go, dataread.go), under the time limits of deadline.go;
//   - performs STARTTLS (RFC 3207) itself: go-smtp has no TLS config, so
//     it answers STARTTLS with "502 5.5.1 TLS not supported"; we replace that
//     reply with 220, run the handshake on the socket and hand the TLS stream
//     to go-smtp as a new connection whose greeting we drop. go-smtp's old
//     connection, with everything the client sent before the handshake, is
//     discarded (RFC 3207 §4.2; no plaintext command injection);
//   - corrects replies in which go-smtp departs from RFC 5321 (rewrites).
type frontConn struct {
	net.Conn
	g      *Gateway
	info   *connInfo
	tls    *tls.ConnectionState // nil before STARTTLS
	in     input                // go-smtp's goroutine only
	sess   *session             // set by NewSession; go-smtp's goroutine only
	flight bdatFlight

	mu        sync.Mutex
	over      bool   // handed to a TLS successor: reads EOF, writes vanish
	greeted   bool   // successor: go-smtp's greeting has been dropped
	closing   bool   // a 421 or 521 was sent: the rest of go-smtp's output is dropped
	lingering bool   // close after reading what the client still sends (linger)
	swallow   int    // replies to drop: go-smtp's answers to commands we made up
	wbuf      []byte // partial reply line
	held      []byte // lines of a multi-line reply not yet sent (see Write)
}

var errHandedOver = errors.New("smtp: connection handed over to TLS")

// SetReadDeadline is a no-op: Read sets the deadline itself.
func (c *frontConn) SetReadDeadline(time.Time) error { return nil }

// handedOver reports whether STARTTLS moved the client to a new connection;
// the old session must not act on anything read before it.
func (c *frontConn) handedOver() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.over
}

// say writes a reply of our own (one line, without CRLF). After a 421 or
// 521 the connection is closing and nothing more is written.
func (c *frontConn) say(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.over || c.closing {
		return
	}
	c.Conn.SetWriteDeadline(time.Now().Add(c.g.cfg.WriteTimeout))
	c.Conn.Write([]byte(line + "\r\n"))
	if strings.HasPrefix(line, "421 ") || strings.HasPrefix(line, "521 ") {
		c.closing = true
	}
}

// replyRewrites maps go-smtp v0.25 reply lines to the RFC 5321 ones.
var replyRewrites = map[string]string{
	// RFC 5321 §4.2.4/§4.3.2: a command out of sequence is 503, not 502
	// ("command not implemented").
	"502 5.5.1 Please introduce yourself first.":         "503 5.5.1 Error: send HELO/EHLO first",
	"502 5.5.1 Missing MAIL FROM command.":               "503 5.5.1 Error: need MAIL command",
	"502 5.5.1 Missing RCPT TO command.":                 "503 5.5.1 Error: need RCPT command",
	"502 5.5.1 MAIL not allowed during message transfer": "503 5.5.1 Error: MAIL not allowed during message transfer",
	"502 5.5.1 RCPT not allowed during message transfer": "503 5.5.1 Error: RCPT not allowed during message transfer",
	"502 5.5.1 DATA not allowed during message transfer": "503 5.5.1 Error: DATA not allowed during message transfer",
	"502 5.5.1 DATA not allowed for BINARYMIME messages": "503 5.5.1 Error: DATA not allowed for BINARYMIME messages",
	// A line go-smtp cannot split into a command is an unrecognised
	// command (RFC 5321 §4.2.4: 500), not a parameter error (501).
	"501 5.5.2 Bad command": "500 5.5.2 Error: command not recognized",
	// RFC 5321 §4.2.4: 500 covers "command line too long"; X.5.2 is the
	// syntax error of RFC 3463 (go-smtp says 5.4.0, a network error).
	"500 5.4.0 Too long line, closing connection": "500 5.5.2 Error: line too long, closing connection",
	// go-smtp's path parser rejects a malformed address with the generic
	// syntax reply; RFC 3463 §3.2 has codes for exactly this (X.1.3
	// recipient, X.1.7 sender), as Postfix uses.
	"501 5.5.2 Was expecting RCPT arg syntax of TO:<address>":   "501 5.1.3 Bad recipient address syntax",
	"501 5.5.2 Was expecting MAIL arg syntax of FROM:<address>": "501 5.1.7 Bad sender address syntax",
	// RFC 5321 §4.1.1.11: unknown MAIL/RCPT parameters are 555.
	"500 5.5.4 Unknown MAIL FROM argument": "555 5.5.4 Error: unsupported MAIL parameter",
	"500 5.5.4 Unknown RCPT TO argument":   "555 5.5.4 Error: unsupported RCPT parameter",
	// RFC 5321 §3.8: a server that closes the connection says 421.
	"500 5.5.1 Too many errors. Quiting now": "421 4.7.0 Error: too many errors, closing connection",
	"421 4.4.2 Idle timeout, bye bye":        "421 4.4.2 Error: timeout exceeded, closing connection",
}

// unrecognizedPrefix starts go-smtp's reply to an unknown verb, which
// echoes the verb: four octets of anything, CR included.
const unrecognizedPrefix = "500 5.5.2 Syntax errors, "

// rewriteReply returns the reply line to send for one go-smtp wrote: the
// RFC 5321 one, and never a control character a client put into an echo
// (RFC 5321 §4.2: reply text is HT and printable characters; a CR inside
// would split the reply for the client).
func rewriteReply(text string) string {
	if r, ok := replyRewrites[text]; ok {
		return r
	}
	if strings.HasPrefix(text, unrecognizedPrefix) {
		return replyRewrites["501 5.5.2 Bad command"]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return '?'
		}
		return r
	}, text)
}

const startTLSRefusal = "502 5.5.1 TLS not supported"

func (c *frontConn) Write(p []byte) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.g.log.Error("smtp: panic in connection writer", slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
			c.Conn.Close()
			n, err = 0, errors.New("smtp: internal error")
		}
	}()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.over {
		return len(p), nil
	}
	c.wbuf = append(c.wbuf, p...)
	// go-smtp writes (and flushes) a multi-line reply one line at a time;
	// its lines are held until the last one so that the reply goes out in
	// one write, as a client reads it (RFC 5321 §4.2.1). The EHLO reply
	// took nine writes (issue 16).
	out, cont := c.held, false
	c.held = nil
	for {
		i := bytes.IndexByte(c.wbuf, '\n')
		if i < 0 {
			break
		}
		line := c.wbuf[:i+1]
		text := string(bytes.TrimRight(line, "\r\n"))
		switch {
		case c.swallow > 0:
			// The reply to a command we made up (command.go).
			if len(text) < 4 || text[3] != '-' {
				c.swallow--
			}
		case c.closing:
			// RFC 5321 §3.8: after 421 the server closes; go-smtp may
			// still try to say goodbye a second time.
		case c.tls != nil && !c.greeted && len(text) > 3 && text[:4] == "220 ":
			// RFC 3207 §4.2: no greeting after the TLS handshake.
			c.greeted = true
		case text == startTLSRefusal && c.tls == nil && c.g.cfg.TLSConfig != nil:
			if len(out) > 0 {
				c.Conn.Write(out)
				out = nil
			}
			c.wbuf = c.wbuf[:0]
			c.startTLS()
			return len(p), nil
		case text == "250-CHUNKING" && c.tls == nil && c.g.cfg.TLSConfig != nil:
			// RFC 3207 §4: advertise STARTTLS until TLS is active.
			out = append(out, line...)
			out = append(out, "250-STARTTLS\r\n"...)
			cont = true
		default:
			if strings.HasPrefix(text, "354 ") {
				// RFC 5321 §4.1.1.4: the DATA body follows.
				c.enterData()
			}
			out = append(out, rewriteReply(text)...)
			out = append(out, "\r\n"...)
			cont = len(text) > 3 && text[3] == '-'
		}
		c.wbuf = c.wbuf[i+1:]
		if strings.HasPrefix(text, "421 ") {
			c.closing = true
		}
	}
	if len(c.wbuf) == 0 {
		c.wbuf = c.wbuf[:0]
	}
	if cont {
		c.held = out
		return len(p), nil
	}
	if len(out) > 0 {
		if _, err := c.Conn.Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// startTLS answers 220, runs the server handshake on the socket and hands
// the TLS stream to go-smtp as a new connection. Called with c.mu held, from
// go-smtp's goroutine for this connection.
func (c *frontConn) startTLS() {
	c.over = true
	raw := c.Conn
	if _, err := raw.Write([]byte("220 2.0.0 Ready to start TLS\r\n")); err != nil {
		raw.Close()
		c.info.done()
		return
	}
	tc := tls.Server(raw, c.g.cfg.TLSConfig)
	raw.SetDeadline(time.Now().Add(c.g.cfg.ReadTimeout))
	if err := tc.Handshake(); err != nil {
		c.g.log.Info("smtp: TLS handshake failed", slog.String("client", c.info.remote.String()), slog.String("err", err.Error()))
		raw.Close()
		c.info.done()
		return
	}
	raw.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	next := &frontConn{Conn: tc, g: c.g, info: c.info, tls: &st}
	if !c.g.handoff(next) {
		tc.Close()
		c.info.done()
	}
}

func (c *frontConn) Close() error {
	c.mu.Lock()
	over, linger := c.over, c.closing || c.lingering
	c.mu.Unlock()
	if over {
		return nil // the socket belongs to the TLS successor
	}
	if linger {
		c.linger()
	}
	err := c.Conn.Close()
	c.info.done()
	return err
}

// Lingering close: after a 421, a 521 or an over-long line the client may
// still be sending what it pipelined. Closing a socket with unread input makes the kernel send a
// reset, which can destroy the reply before the client reads it; so the
// server first ends its side and drops what still comes, for a short,
// bounded while (as HTTP servers do).
const (
	lingerTime  = time.Second
	lingerBytes = 1 << 20
)

func (c *frontConn) linger() {
	cw, ok := c.Conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.Conn.SetReadDeadline(time.Now().Add(lingerTime))
	io.CopyN(io.Discard, c.Conn, lingerBytes)
}

// limiter caps connections in total and per client IP.
type limiter struct {
	mu    sync.Mutex
	total int
	perIP map[netip.Addr]int
	max   int
	maxIP int
}

func (l *limiter) acquire(ip netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.max || l.perIP[ip] >= l.maxIP {
		return false
	}
	l.total++
	l.perIP[ip]++
	return true
}

func (l *limiter) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perIP[ip]--; l.perIP[ip] <= 0 {
		delete(l.perIP, ip)
	}
}

// chanListener feeds connections accepted by the Gateway (and TLS
// successors) to go-smtp's Serve.
type chanListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
	addr net.Addr
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

func remoteAddr(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
