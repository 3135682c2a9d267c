package smtp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// The input side of frontConn: it reads the client's octets itself and
// hands go-smtp one piece of the protocol at a time, so that it always
// knows what go-smtp will take each octet for:
//
//   - a command line, up to and including its LF, and nothing after it,
//     after the checks of command.go (which may answer the line itself);
//   - for a DATA body, after go-smtp answered 354, only the end-of-data
//     line: dataDecoder decodes the body, cut at that line, into a buffer
//     that session.Data takes (in.body);
//   - a BDAT chunk (RFC 3030), exactly as many octets as the BDAT line
//     announced, never more.
//
// go-smtp reads through a bufio.Reader; because frontConn never hands it
// more than the current piece, nothing the client sends after a piece can
// sit in that buffer unseen by these checks, and no octet of a chunk or a
// body can be taken for a command.

// inputMode is what the next octets from the client are.
type inputMode int

const (
	inCommand inputMode = iota
	inData              // a DATA body, until the end-of-data line
	inChunk             // a BDAT chunk for go-smtp
	inDiscard           // a BDAT chunk to drop (the BDAT line was refused)
)

// input is frontConn's reading state. It is used only by go-smtp's
// goroutine for the connection (Read, and Write for the 354 reply).
type input struct {
	raw    []byte       // octets read from the socket, not yet processed
	rbuf   []byte       // the read buffer raw lies in
	pooled bool         // rbuf is from readBufs
	dl     time.Time    // the read deadline set on the socket
	dlWhy  string       // the limit that set dl
	out    bytes.Buffer // processed octets for go-smtp
	mode   inputMode
	chunk  int64 // inChunk/inDiscard: octets of the chunk still to come
	last   bool  // inChunk: the chunk ends the message (BDAT ... LAST)
	data   *dataDecoder
	body   *dataDecoder // the DATA body decoded, for session.Data to take
	err    error        // sticky read error

	waiting   bool      // inCommand: waiting for the rest of a line
	lineStart time.Time // inCommand: when that wait began
	msg       bool      // a message transfer (DATA or BDAT) is under way
	msgStart  time.Time
	msgBytes  int64 // octets of the message read so far
}

// How much one socket read asks for: a command line or a few pipelined
// ones need little; in a message a read of 32 KB usually takes a 10 KB
// message at once (issue 16: 4 KB took three). The large buffers come from
// a pool and go back at the end of each message.
const (
	cmdReadSize = 4 << 10
	readSize    = 32 << 10
)

var readBufs = sync.Pool{New: func() any { b := make([]byte, 0, readSize); return &b }}

func (c *frontConn) Read(p []byte) (int, error) {
	if c.handedOver() {
		return 0, io.EOF
	}
	in := &c.in
	for in.out.Len() == 0 {
		if err := c.produce(); err != nil {
			return 0, err
		}
	}
	return in.out.Read(p)
}

// produce processes input until there is something for go-smtp, or fails.
func (c *frontConn) produce() error {
	in := &c.in
	switch in.mode {
	case inData:
		if len(in.raw) == 0 {
			if err := c.fill(); err != nil {
				return unexpectedEOF(err)
			}
		}
		n, end := in.data.feed(in.raw)
		in.raw = in.raw[n:]
		if end {
			// go-smtp reads only the end of data; session.Data takes
			// the content from in.body.
			in.out.WriteString(".\r\n")
			in.body = in.data
			in.mode, in.data, in.msg = inCommand, nil, false
			in.releaseRead()
		}
		return nil
	case inChunk, inDiscard:
		if in.chunk == 0 {
			in.chunkDone()
			return nil
		}
		if len(in.raw) == 0 {
			if err := c.fill(); err != nil {
				return unexpectedEOF(err)
			}
		}
		k := int(min(int64(len(in.raw)), in.chunk))
		if in.mode == inChunk {
			in.out.Write(in.raw[:k])
		}
		in.raw = in.raw[k:]
		if in.chunk -= int64(k); in.chunk == 0 {
			in.chunkDone()
		}
		in.releaseRead()
		return nil
	}
	// inCommand: one whole line.
	limit := c.g.cfg.MaxLineLength
	i := bytes.IndexByte(in.raw, '\n')
	for i < 0 {
		if len(in.raw) > limit {
			return c.tooLong()
		}
		if !in.waiting {
			in.waiting, in.lineStart = true, time.Now()
		}
		if err := c.fill(); err != nil {
			// An unterminated last line is not a command.
			return err
		}
		i = bytes.IndexByte(in.raw, '\n')
	}
	if i+1 > limit {
		return c.tooLong()
	}
	line := in.raw[:i+1]
	in.raw = in.raw[i+1:]
	in.waiting = false
	err := c.command(line)
	in.releaseRead()
	return err
}

// unexpectedEOF: the client closed inside a body or chunk. The message is
// incomplete and must not be taken for a whole one (io.Copy would treat a
// plain EOF in a chunk as its end).
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// tooLong: a command line over MaxLineLength. go-smtp answers 500 and
// closes (RFC 5321 §4.2.4, §4.5.3.1.4); the rest of the line is unread, so
// the close lingers.
func (c *frontConn) tooLong() error {
	c.mu.Lock()
	c.lingering = true
	c.mu.Unlock()
	return c.fail(gosmtp.ErrTooLongLine)
}

// fail makes err the answer to every further read.
func (c *frontConn) fail(err error) error {
	c.in.err = err
	return err
}

// fill reads more octets from the client under the current deadline.
func (c *frontConn) fill() error {
	in := &c.in
	if in.err != nil {
		return in.err
	}
	size := cmdReadSize
	if in.mode != inCommand {
		size = readSize
	}
	if cap(in.raw)-len(in.raw) < size {
		// Move what is left to the start of a buffer with room: the
		// current one, a pooled one, or a new one for a long line
		// (nothing keeps a reference into raw between calls).
		old, oldPooled := in.rbuf, in.pooled
		switch {
		case len(in.raw)+size <= cap(in.rbuf):
			old = nil
		case len(in.raw)+size <= readSize:
			in.rbuf, in.pooled = (*readBufs.Get().(*[]byte))[:0], true
		default:
			in.rbuf, in.pooled = make([]byte, 0, len(in.raw)+size), false
		}
		in.raw = append(in.rbuf[:0], in.raw...)
		if old != nil && oldPooled {
			old = old[:0]
			readBufs.Put(&old)
		}
	}
	c.setReadDeadline(c.deadline(time.Now()))
	n, err := c.Conn.Read(in.raw[len(in.raw) : len(in.raw)+size])
	in.raw = in.raw[:len(in.raw)+n]
	if in.msg && in.mode != inCommand {
		in.msgBytes += int64(n)
	}
	if err == nil {
		return nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.timeout(in.dlWhy)
		err = os.ErrDeadlineExceeded
	}
	if n > 0 {
		// Keep the octets read; the error comes back on the next fill.
		in.err = err
		return nil
	}
	in.releaseRead()
	return c.fail(err)
}

// releaseRead gives a pooled read buffer back once it holds nothing, so
// that a connection holds one only while it reads (go-smtp's goroutine).
func (in *input) releaseRead() {
	if in.pooled && len(in.raw) == 0 {
		b := in.rbuf[:0]
		readBufs.Put(&b)
		in.rbuf, in.raw, in.pooled = nil, nil, false
	}
}

// chunkDone: back to commands after a chunk; a LAST chunk ends the message.
func (in *input) chunkDone() {
	if in.mode == inChunk && in.last {
		in.msg = false
	}
	in.mode, in.last = inCommand, false
}

// startMessage starts the per-message deadline unless a message (a BDAT
// sequence) is already under way.
func (in *input) startMessage(now time.Time) {
	if !in.msg {
		in.msg, in.msgStart, in.msgBytes = true, now, 0
	}
}

// enterData is called when go-smtp answers 354: the DATA body follows.
func (c *frontConn) enterData() {
	in := &c.in
	in.mode = inData
	in.body = nil
	in.data = newDataDecoder(getBody(), bodyHeadroom+int(c.g.cfg.MaxMessageBytes))
	in.startMessage(time.Now())
}
