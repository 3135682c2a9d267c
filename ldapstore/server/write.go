package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"postern/ldapstore"
)

// OIDNoticeOfDisconnection names the unsolicited notification sent before
// the server closes a connection it cannot keep (RFC 4511 §4.4.1).
const OIDNoticeOfDisconnection = "1.3.6.1.4.1.1466.20036"

var encoders = sync.Pool{New: func() any { return &encoder{b: make([]byte, 0, 1024)} }}

func getEncoder() *encoder { return encoders.Get().(*encoder) }

func putEncoder(e *encoder) {
	if cap(e.b) > 256<<10 {
		return // do not keep huge buffers around
	}
	e.reset()
	encoders.Put(e)
}

// send writes one or more whole encoded messages. With flush, everything
// buffered so far (other operations' messages included) goes to the peer.
// After the first write error the connection is closed and every later send
// fails.
func (c *conn) send(b []byte, flush bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	if len(b) > c.bw.Available() || flush {
		c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
	}
	_, err := c.bw.Write(b)
	if err == nil && flush {
		err = c.bw.Flush()
	}
	if err != nil {
		c.werr = err
		c.log.Debug("ldap write", slog.Any("err", err))
		go c.close()
	}
	return err
}

// resultOf maps an operation's error to an LDAPResult (RFC 4511 §4.1.9).
// Errors that are not *ldapstore.Error are logged and reported as "other"
// without their text: internals never reach the peer.
func (c *conn) resultOf(err error) (ldapstore.ResultCode, string, string) {
	if err == nil {
		return ldapstore.Success, "", ""
	}
	var le *ldapstore.Error
	if errors.As(err, &le) {
		return le.Code, le.MatchedDN, le.Message
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ldapstore.TimeLimitExceeded, "", "time limit exceeded"
	}
	if errors.Is(err, context.Canceled) {
		return ldapstore.Canceled, "", "operation canceled"
	}
	c.log.Error("ldap operation failed", slog.Any("err", err))
	return ldapstore.Other, "", "internal error"
}

// beginMessage opens an LDAPMessage and its protocolOp (RFC 4511 §4.1.1).
func (e *encoder) beginMessage(id int64, app byte) {
	e.begin(tagSequence)
	e.int(tagInteger, id)
	e.begin(classApplication | constructed | app)
}

// endMessage closes the protocolOp, appends the controls and closes the
// LDAPMessage.
func (e *encoder) endMessage(ctrls []Control) {
	e.end()
	e.controls(ctrls)
	e.end()
}

// result appends the LDAPResult fields (RFC 4511 §4.1.9).
func (e *encoder) result(code ldapstore.ResultCode, matched, msg string) {
	e.int(tagEnumerated, int64(code))
	e.str(tagOctetString, matched)
	e.str(tagOctetString, msg)
}

// controls appends Controls ::= [0] SEQUENCE OF Control (RFC 4511 §4.1.11).
func (e *encoder) controls(ctrls []Control) {
	if len(ctrls) == 0 {
		return
	}
	e.begin(classContext | constructed | 0)
	for _, c := range ctrls {
		e.begin(tagSequence)
		e.str(tagOctetString, c.OID)
		if c.Criticality {
			e.bool(tagBoolean, true) // DEFAULT FALSE is omitted
		}
		if c.Value != nil {
			e.bytes(tagOctetString, c.Value)
		}
		e.end()
	}
	e.end()
}

// sendResult sends the response of an operation that has nothing but an
// LDAPResult (and controls), and counts it.
func (c *conn) sendResult(id int64, tag byte, err error, ctrls []Control) {
	code, matched, msg := c.resultOf(err)
	e := getEncoder()
	e.beginMessage(id, tag)
	e.result(code, matched, msg)
	e.endMessage(ctrls)
	c.srv.metrics.op(opName(tag), code)
	c.send(e.b, true)
	putEncoder(e)
}

// sendExtended sends an ExtendedResponse (RFC 4511 §4.12): the LDAPResult,
// then responseName [10] and responseValue [11] when given.
func (c *conn) sendExtended(id int64, err error, name string, value []byte) {
	code, matched, msg := c.resultOf(err)
	e := getEncoder()
	e.beginMessage(id, appExtendedResponse)
	e.result(code, matched, msg)
	if name != "" {
		e.str(classContext|10, name)
	}
	if value != nil {
		e.bytes(classContext|11, value)
	}
	e.endMessage(nil)
	c.srv.metrics.op("extended", code)
	c.send(e.b, true)
	putEncoder(e)
}

// noticeOfDisconnection sends the unsolicited notification of RFC 4511
// §4.4.1: an ExtendedResponse with messageID 0 and responseName
// 1.3.6.1.4.1.1466.20036. The caller closes the connection.
func (c *conn) noticeOfDisconnection(code ldapstore.ResultCode, msg string) {
	e := getEncoder()
	e.beginMessage(0, appExtendedResponse)
	e.result(code, "", msg)
	e.str(classContext|10, OIDNoticeOfDisconnection)
	e.endMessage(nil)
	c.send(e.b, true)
	putEncoder(e)
}

// intermediate appends an IntermediateResponse (RFC 4511 §4.13):
// responseName [0] and responseValue [1], both optional.
func (e *encoder) intermediate(id int64, oid string, value []byte) {
	e.beginMessage(id, appIntermediateReply)
	if oid != "" {
		e.str(classContext|0, oid)
	}
	if value != nil {
		e.bytes(classContext|1, value)
	}
	e.endMessage(nil)
}
