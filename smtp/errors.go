package smtp

import (
	"errors"
	"fmt"

	gosmtp "github.com/emersion/go-smtp"
)

// Error is an SMTP reply for the peer together with the cause for the log.
// Message is all the peer sees; Err (internal detail) never leaves the
// process.
type Error struct {
	Code     int    // RFC 5321 §4.2 reply code
	Enhanced [3]int // RFC 3463 enhanced status code
	Message  string // text for the peer
	Err      error  // cause, logged only
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%d %d.%d.%d %s", e.Code, e.Enhanced[0], e.Enhanced[1], e.Enhanced[2], e.Message)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports a 4xx reply.
func (e *Error) Temporary() bool { return e.Code/100 == 4 }

// Status returns the enhanced code as "5.1.1".
func (e *Error) Status() string {
	return fmt.Sprintf("%d.%d.%d", e.Enhanced[0], e.Enhanced[1], e.Enhanced[2])
}

// wire is the reply go-smtp writes: only code, enhanced code and message.
func (e *Error) wire() *gosmtp.SMTPError {
	return &gosmtp.SMTPError{Code: e.Code, EnhancedCode: gosmtp.EnhancedCode(e.Enhanced), Message: e.Message}
}

func newError(code int, enh [3]int, msg string, cause error) *Error {
	return &Error{Code: code, Enhanced: enh, Message: msg, Err: cause}
}

// Replies used by the session, with the RFCs that define them.
var (
	// RFC 1870 §6.3 and RFC 3463 X.3.4: the message is larger than the
	// gateway takes (go-smtp's ErrDataTooLarge says the same).
	errTooBig = newError(552, [3]int{5, 3, 4}, "Maximum message size exceeded", nil)
	// RFC 5321 §4.1.4: MAIL inside a transaction is a bad sequence.
	errNestedMail = newError(503, [3]int{5, 5, 1}, "Error: nested MAIL command", nil)
	// RFC 3463 §3.2 X.1.7: bad sender mailbox syntax.
	errBadSender = newError(501, [3]int{5, 1, 7}, "Bad sender address syntax", nil)
	// RFC 3463 §3.2 X.1.3: bad destination mailbox syntax.
	errBadRcpt = newError(501, [3]int{5, 1, 3}, "Bad recipient address syntax", nil)
	// RFC 3461 §4.2, §4.4 and RFC 5321 §4.1.1.11: a DSN parameter whose
	// value is malformed.
	errBadORCPT = newError(501, [3]int{5, 5, 4}, "Malformed ORCPT parameter value", nil)
	errBadEnvID = newError(501, [3]int{5, 5, 4}, "Malformed ENVID parameter value", nil)
	// RFC 6531 §3.5: a non-ASCII address without SMTPUTF8.
	errNeedUTF8 = newError(553, [3]int{5, 6, 7}, "Non-ASCII address requires SMTPUTF8", nil)
	// RFC 3463 X.1.1: bad destination mailbox.
	errUnknownUser = newError(550, [3]int{5, 1, 1}, "Recipient address rejected: User unknown", nil)
	// RFC 3463 X.7.1: delivery not authorized (Postfix: "Relay access denied").
	errRelayDenied = newError(554, [3]int{5, 7, 1}, "Relay access denied", nil)
	// A text line over maxTextLine (RFC 5322 §2.1.1, RFC 5321 §4.5.3.1.6),
	// refused at the end of the data with a code valid there (RFC 5321
	// §4.3.2: 554) and RFC 3463 X.6.0, a content problem.
	errLongLine = newError(554, [3]int{5, 6, 0}, "Error: message has a line longer than 998 octets", nil)
	// RFC 5321 §4.5.3.2.6: DATA block timeout; §3.8: 421 before closing.
	errDataTimeout = newError(421, [3]int{4, 4, 2}, "Timeout exceeded, closing connection", nil)
	errClosing     = newError(421, [3]int{4, 3, 2}, "Service shutting down", nil)
	// A queued address that is not one RFC 5321 Mailbox is never sent on.
	errQueuedSender = newError(553, [3]int{5, 1, 7}, "Sender address is not a valid mailbox", nil)
	errQueuedRcpt   = newError(553, [3]int{5, 1, 3}, "Recipient address is not a valid mailbox", nil)
)

// tempLookup is the reply when the directory cannot be read.
func tempLookup(err error) *Error {
	if errors.Is(err, ErrDirectoryUnavailable) {
		// RFC 3463 X.4.3: directory server failure; try again later
		return newError(451, [3]int{4, 4, 3}, "Directory server unavailable, try again later", err)
	}
	return newError(451, [3]int{4, 3, 0}, "Temporary lookup failure", err)
}

// ErrDirectoryUnavailable is what a Directory returns while it cannot
// answer at all (a frontend none of whose backends answers): the gateway
// answers 451 4.4.3, never a 5xx, and accepts nothing the policy would
// refuse.
var ErrDirectoryUnavailable = errors.New("smtp: directory unavailable")
