package smtp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// The input side of frontConn: it reads the client's octets itself and
// hands go-smtp one piece of the protocol at a time, so that it always
// knows what go-smtp will take each octet for:
//
//   - a command line, up to and including its LF, and nothing after it,
//     after the checks of command.go (which may answer the line itself);
//   - a DATA body, after go-smtp answered 354, decoded and re-encoded by
//     dataDecoder and cut at the end-of-data line;
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
	raw   []byte       // octets read from the socket, not yet processed
	rbuf  []byte       // the read buffer raw lies in, reused while small
	out   bytes.Buffer // processed octets for go-smtp
	mode  inputMode
	chunk int64 // inChunk/inDiscard: octets of the chunk still to come
	last  bool  // inChunk: the chunk ends the message (BDAT ... LAST)
	data  *dataDecoder
	body  *dataDecoder // the DATA body decoded, for session.Data to take
	err   error        // sticky read error

	waiting   bool      // inCommand: waiting for the rest of a line
	lineStart time.Time // inCommand: when that wait began
	msg       bool      // a message transfer (DATA or BDAT) is under way
	msgStart  time.Time
	msgBytes  int64 // octets of the message read so far
}

// readSize is how much one socket read asks for: a message of 10 KB
// usually arrives in one read (issue 16: 4 KB took three).
const readSize = 32 << 10

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
	return c.command(line)
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
	if cap(in.raw)-len(in.raw) < readSize {
		// Move what is left to the start of the buffer, a new one when
		// it is too small or grew large for a long line (nothing keeps
		// a reference into raw between calls).
		if len(in.raw)+readSize > cap(in.rbuf) || cap(in.rbuf) > 2*readSize && len(in.raw) < readSize {
			in.rbuf = make([]byte, 0, len(in.raw)+readSize)
		}
		in.raw = append(in.rbuf[:0], in.raw...)
	}
	dl, why := c.deadline(time.Now())
	c.Conn.SetReadDeadline(dl)
	n, err := c.Conn.Read(in.raw[len(in.raw) : len(in.raw)+readSize])
	in.raw = in.raw[:len(in.raw)+n]
	if in.msg && in.mode != inCommand {
		in.msgBytes += int64(n)
	}
	if err == nil {
		return nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.timeout(why)
		err = os.ErrDeadlineExceeded
	}
	if n > 0 {
		// Keep the octets read; the error comes back on the next fill.
		in.err = err
		return nil
	}
	return c.fail(err)
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
