package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"postern/ldapstore"
)

// identity is who a connection is bound as. The zero value is anonymous.
type identity struct {
	dn   string // as bound (the configured RootDN for the root)
	norm string // normalised DN
	root bool
	// restricted is a read-only session of limited sight (a cluster
	// frontend's, ServeConnRestricted): it never sees userPassword nor
	// the Config.RestrictedHide types, and cannot write.
	restricted bool
}

func (i identity) anonymous() bool { return i.dn == "" }

// operation is one request being served in its own goroutine.
type operation struct {
	ctx    context.Context
	cancel context.CancelFunc
	// moveReader, set when the operation runs in the reading goroutine,
	// hands reading to a new goroutine (runInline); nil otherwise
	moveReader func()
}

// abandoned reports whether the client abandoned the operation (or the
// connection went away): its result must not be sent (RFC 4511 §4.11).
func (o *operation) abandoned() bool { return o.ctx.Err() != nil }

// conn is one client connection. One goroutine reads and decodes requests
// and runs binds, abandons and StartTLS itself; every other operation runs
// in its own goroutine, so responses may go out in any order (RFC 4511
// §4.1.1.1 lets the client match them by messageID). All writes go through
// send, which writes whole messages under wmu.
type conn struct {
	srv   *Server
	log   *slog.Logger
	raw   net.Conn // the TCP connection, closed to stop everything
	nc    net.Conn // raw or the TLS connection on top of it
	br    *bufio.Reader
	isTLS bool
	ip    string   // the client's address without port ("" when unknown)
	ident identity // owned by the reading goroutine
	// restricted marks a connection served by ServeConnRestricted: no Bind
	// on it may become the root DN
	restricted bool

	ctx    context.Context
	cancel context.CancelFunc

	wmu  sync.Mutex
	bw   *bufio.Writer
	werr error

	results *budget // memory of this connection's unsent search results

	mu       sync.Mutex
	ops      map[int64]*operation
	inflight int
	opsWG    sync.WaitGroup
	pages    pagedState

	closeOnce sync.Once
	// readers counts reading goroutines: one, and a second while an
	// operation that ran inline ends after reading moved (runInline)
	readers sync.WaitGroup
}

func newConn(s *Server, nc, raw net.Conn, isTLS bool) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	peer, ip := "unknown", ""
	if a := raw.RemoteAddr(); a != nil {
		peer = a.String()
		if h, _, err := net.SplitHostPort(peer); err == nil {
			ip = h
		}
	}
	return &conn{
		srv:     s,
		log:     s.log.With(slog.String("peer", peer)),
		raw:     raw,
		nc:      nc,
		br:      bufio.NewReaderSize(nc, 16<<10),
		bw:      bufio.NewWriterSize(nc, 16<<10),
		isTLS:   isTLS,
		ip:      ip,
		ctx:     ctx,
		cancel:  cancel,
		ops:     make(map[int64]*operation),
		results: newBudget(s.cfg.MaxResultBufferConn),
	}
}

// close cancels every operation and closes the socket; safe to call from
// any goroutine, more than once.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.cancel()
		c.raw.Close()
	})
}

// recoverPanic logs a panic in one of the connection's goroutines and
// closes only this connection (STYLE.md, from maddy).
func (c *conn) recoverPanic(where string) {
	if v := recover(); v != nil {
		c.log.Error("ldap panic", slog.String("in", where), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
		c.close()
	}
}

// serve runs the connection until the client unbinds or disconnects, a
// limit is hit or the server closes.
func (c *conn) serve() {
	c.log.Debug("ldap connection opened", slog.Bool("tls", c.isTLS))
	c.readers.Add(1)
	c.read(true)
	c.readers.Wait() // reading may have moved to another goroutine
}

// read is the reading goroutine's loop; handshake is true for the first
// one, which runs the TLS handshake of an LDAPS connection. When an
// operation it ran inline hands reading to a new goroutine (runInline), it
// returns as soon as that operation ends and leaves the connection to the
// new reader; otherwise, when reading ends, it closes the connection.
func (c *conn) read(handshake bool) {
	defer c.readers.Done()
	moved := false
	defer func() {
		if moved {
			return
		}
		c.close()
		c.opsWG.Wait()
		c.dropPaged()
		c.log.Debug("ldap connection closed")
	}()
	defer c.recoverPanic("connection")
	if handshake && c.isTLS {
		if err := c.handshake(c.nc.(*tls.Conn)); err != nil {
			c.log.Info("ldaps handshake failed", slog.Any("err", err))
			return
		}
	}
	var buf []byte
	var deadlineSet time.Time
	var lastIdle time.Duration
	for {
		// Wait for the next request's first octet under the idle timeout;
		// RFC 4511 §5.2 leaves idle disconnects to the server. A connection
		// that has not bound gets the much shorter AnonymousIdleTimeout.
		// A connection with outstanding operations (a persistent search) is
		// not idle. Resetting the deadline costs a timer update; doing it
		// only when an eighth of the timeout has passed keeps at least 7/8
		// of it ahead.
		idle := c.idleTimeout()
		now := time.Now()
		if idle != lastIdle || now.Sub(deadlineSet) > idle/8 {
			c.nc.SetReadDeadline(now.Add(idle))
			deadlineSet, lastIdle = now, idle
		}
		if _, err := c.br.Peek(1); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && c.outstanding() > 0 && c.ctx.Err() == nil {
				deadlineSet = time.Time{}
				continue
			}
			if ne != nil && ne.Timeout() {
				c.log.Debug("ldap connection idle, closing")
			}
			return
		}
		frame, err := readFrame(c.br, c.srv.cfg.MaxMessageSize, buf)
		if err != nil {
			c.readFailed(err)
			return
		}
		if len(frame) <= bigFrame {
			buf = frame
		}
		m, err := decodeMessage(frame)
		if err != nil {
			c.readFailed(err)
			return
		}
		switch c.dispatch(m) {
		case dispatchStop:
			return
		case dispatchMoved:
			moved = true
			return
		}
	}
}

// idleTimeout is how long the connection may wait for its next request.
func (c *conn) idleTimeout() time.Duration {
	if c.ident.anonymous() {
		return min(c.srv.cfg.IdleTimeout, c.srv.cfg.AnonymousIdleTimeout)
	}
	return c.srv.cfg.IdleTimeout
}

// readFailed ends the connection after a read or decode error, sending a
// Notice of Disconnection when the client sent something we cannot accept.
func (c *conn) readFailed(err error) {
	var me *MalformedError
	switch {
	case errors.Is(err, ErrMessageTooLarge):
		c.log.Info("ldap message too large, disconnecting", slog.Any("err", err))
		c.noticeOfDisconnection(ldapstore.ProtocolError, "message too large")
		c.srv.metrics.protocolError()
	case errors.As(err, &me), errors.Is(err, io.ErrUnexpectedEOF):
		c.log.Info("malformed ldap message, disconnecting", slog.Any("err", err))
		c.noticeOfDisconnection(ldapstore.ProtocolError, "malformed message")
		c.srv.metrics.protocolError()
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.log.Info("ldap client stalled mid-message, disconnecting")
	default:
		c.log.Debug("ldap read", slog.Any("err", err))
	}
}

// What the reading goroutine does after dispatch.
const (
	dispatchNext  = iota // read the next request
	dispatchStop         // end the connection
	dispatchMoved        // another goroutine reads now: return, leave the connection open
)

// dispatch starts the operation of m. It returns dispatchStop when the
// connection must end, dispatchMoved when an operation it ran inline
// handed reading to another goroutine.
func (c *conn) dispatch(m *message) int {
	switch r := m.op.(type) {
	case *unbindRequest:
		// RFC 4511 §4.3: the server terminates the session, no response.
		c.srv.metrics.op("unbind", ldapstore.Success)
		return dispatchStop
	case *abandonRequest:
		// RFC 4511 §4.11: no response; unknown IDs are ignored.
		c.abandon(r.id)
		c.srv.metrics.op("abandon", ldapstore.Success)
		return dispatchNext
	case *bindRequest:
		// Binds run in the reading goroutine so that requests sent after a
		// bind see its outcome (RFC 4511 §4.2.1). Outstanding operations
		// keep the identity they started with.
		c.bind(m, r)
		return dispatchNext
	case *extendedRequest:
		if r.name == OIDStartTLS {
			if !c.startTLS(m) {
				return dispatchStop
			}
			return dispatchNext
		}
	}
	op, ok := c.begin(m.id)
	if !ok {
		c.sendResult(m.id, responseTag(m.op), ldapstore.Errorf(ldapstore.Busy, "too many outstanding operations"), nil)
		return dispatchNext
	}
	id := c.ident
	if c.inline(m) {
		return c.runInline(m, op, id)
	}
	c.srv.workers.run(func() { c.run(m, op, id) })
	return dispatchNext
}

// inlineEntries is how many entries a search that runs in the reading
// goroutine sends before reading moves to a new goroutine (runInline).
const inlineEntries = 16

// inline reports whether m may run in the reading goroutine: a search
// without controls, a compare, add, delete or modify, when it is the
// connection's only operation and no further request is buffered; that is
// a synchronous client (an administrator's script, a mail server's
// lookups), whose next request waits for this answer anyway. Handing the
// operation to a worker goroutine and reading on costs a goroutine wake-up
// (a futex call, and often a move to the other core) on every request,
// about a tenth of a lone search's CPU.
//
// While it runs the connection is not read: a write waits for its commit
// (a few milliseconds at most), a search hands reading over after
// inlineEntries entries or ldapstore.LongScanEntries candidates examined
// (an unindexed filter that returns little), so an abandon (RFC 4511
// §4.11) or a closed connection is still seen while a long search runs.
func (c *conn) inline(m *message) bool {
	if len(m.controls) > 0 || c.br.Buffered() > 0 {
		return false
	}
	switch m.op.(type) {
	case *searchRequest, *compareRequest, *addRequest, *delRequest, *modifyRequest:
	default:
		return false
	}
	c.mu.Lock()
	alone := c.inflight == 1 // the one begin just counted
	c.mu.Unlock()
	return alone
}

// runInline runs an operation in the reading goroutine. When the
// operation calls op.moveReader (a search that sent inlineEntries entries),
// a new goroutine takes over reading, so that the client's further requests
// are served meanwhile; this goroutine then ends with the operation
// (dispatchMoved).
func (c *conn) runInline(m *message, op *operation, id identity) int {
	var state atomic.Int32 // 0 running, 1 ended inline, 2 reading moved
	op.moveReader = func() {
		if state.CompareAndSwap(0, 2) {
			c.readers.Add(1)
			go c.read(false)
		}
	}
	c.run(m, op, id)
	if state.CompareAndSwap(0, 1) {
		return dispatchNext
	}
	return dispatchMoved
}

// begin registers an operation, refusing it when MaxInFlight are running.
func (c *conn) begin(id int64) (*operation, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight >= c.srv.cfg.MaxInFlight {
		return nil, false
	}
	ctx, cancel := context.WithCancel(c.ctx)
	op := &operation{ctx: ctx, cancel: cancel}
	c.ops[id] = op
	c.inflight++
	c.opsWG.Add(1)
	return op, true
}

func (c *conn) end(id int64, op *operation) {
	c.mu.Lock()
	if c.ops[id] == op {
		delete(c.ops, id)
	}
	c.inflight--
	c.mu.Unlock()
	op.cancel()
	c.opsWG.Done()
}

func (c *conn) outstanding() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inflight
}

func (c *conn) abandon(id int64) {
	c.mu.Lock()
	op := c.ops[id]
	c.mu.Unlock()
	if op != nil {
		op.cancel()
	}
}

// run serves one operation in its own goroutine.
func (c *conn) run(m *message, op *operation, id identity) {
	defer c.end(m.id, op)
	defer c.recoverPanic("operation")
	tag := responseTag(m.op)
	if err := c.srv.checkControls(m); err != nil {
		c.sendResult(m.id, tag, err, nil)
		return
	}
	switch r := m.op.(type) {
	case *searchRequest:
		c.search(op, m, r, id)
	case *addRequest:
		c.finish(op, m, tag, c.add(op.ctx, r, id))
	case *modifyRequest:
		c.finish(op, m, tag, c.modify(op.ctx, r, id))
	case *delRequest:
		c.finish(op, m, tag, c.del(op.ctx, r, id))
	case *modDNRequest:
		c.finish(op, m, tag, c.modDN(op.ctx, r, id))
	case *compareRequest:
		c.finish(op, m, tag, c.compare(op.ctx, r, id))
	case *extendedRequest:
		c.extended(op, m, r, id)
	}
}

// finish sends the result of an operation unless it was abandoned.
func (c *conn) finish(op *operation, m *message, tag byte, err error) {
	if op.abandoned() {
		c.srv.metrics.op(opName(tag), ldapstore.Canceled)
		return
	}
	c.sendResult(m.id, tag, err, nil)
}

// handshake runs a TLS handshake under the write timeout, and for a
// connection that has not bound (LDAPS) the anonymous idle timeout.
func (c *conn) handshake(t *tls.Conn) error {
	d := c.srv.cfg.WriteTimeout
	if c.ident.anonymous() {
		d = min(d, c.srv.cfg.AnonymousIdleTimeout)
	}
	ctx, cancel := context.WithTimeout(c.ctx, d)
	defer cancel()
	return t.HandshakeContext(ctx)
}

// responseTag is the application tag of the response to a request.
func responseTag(op any) byte {
	switch op.(type) {
	case *bindRequest:
		return appBindResponse
	case *searchRequest:
		return appSearchDone
	case *modifyRequest:
		return appModifyResponse
	case *addRequest:
		return appAddResponse
	case *delRequest:
		return appDelResponse
	case *modDNRequest:
		return appModDNResponse
	case *compareRequest:
		return appCompareResponse
	default:
		return appExtendedResponse
	}
}

// opName names an operation by its response tag, for metrics.
func opName(tag byte) string {
	switch tag {
	case appBindResponse:
		return "bind"
	case appSearchDone:
		return "search"
	case appModifyResponse:
		return "modify"
	case appAddResponse:
		return "add"
	case appDelResponse:
		return "delete"
	case appModDNResponse:
		return "modrdn"
	case appCompareResponse:
		return "compare"
	default:
		return "extended"
	}
}
