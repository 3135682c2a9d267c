package queue

import (
	"slices"
	"time"
)

// Status is the delivery state of one recipient.
type Status uint8

const (
	// Queued: not attempted yet.
	Queued Status = iota
	// Deferred: a temporary failure; retry at NextAttempt.
	Deferred
	// Delivered: the next hop answered 250 to the end of data. Final.
	Delivered
	// Failed: a permanent failure (or the queue lifetime expired) that has
	// not been reported to the sender yet.
	Failed
	// Bounced: the failure has been reported (a DSN was queued) or needs no
	// report (null sender, NOTIFY without FAILURE). Final.
	Bounced
)

// Final reports whether no more work is needed for a recipient in this state.
func (s Status) Final() bool { return s == Delivered || s == Bounced }

func (s Status) String() string {
	switch s {
	case Queued:
		return "queued"
	case Deferred:
		return "deferred"
	case Delivered:
		return "delivered"
	case Failed:
		return "failed"
	case Bounced:
		return "bounced"
	}
	return "unknown"
}

// Notify holds the RFC 3461 §4.1 NOTIFY parameter of a recipient as bit flags.
// Zero means the parameter was absent (the MTA default: notify on failure).
type Notify uint8

const (
	NotifyNever Notify = 1 << iota
	NotifySuccess
	NotifyFailure
	NotifyDelay
)

// OnFailure reports whether a failure DSN is wanted (RFC 3461 §4.1: without
// NOTIFY the default is FAILURE, and DELAY).
func (n Notify) OnFailure() bool { return n == 0 || n&NotifyFailure != 0 }

// Recipient is one envelope recipient and its delivery state.
type Recipient struct {
	Addr        string
	ORcpt       string // RFC 3461 §4.2 ORCPT as "addr-type;addr", decoded; "" if absent
	Notify      Notify
	Status      Status
	Attempts    int
	NextAttempt time.Time // when Deferred: not before
	LastAttempt time.Time
	Diagnostic  string // last reply from the next hop ("550 5.1.1 ...") or a local reason
	Enhanced    string // RFC 3463 status of the last attempt, "4.4.1"
	RemoteMTA   string // host that gave Diagnostic, "" for local failures
}

// Message is the envelope of a queued message and the state of its recipients.
type Message struct {
	ID         string
	Arrival    time.Time
	From       string // reverse path, "" for the null sender
	EnvID      string // RFC 3461 ENVID, decoded
	Ret        string // RFC 3461 RET: "FULL", "HDRS" or ""
	UTF8       bool   // RFC 6531 SMTPUTF8 was given
	Body       string // MAIL BODY= value as received ("", "7BIT", "8BITMIME", "BINARYMIME")
	Client     string // who submitted it, for operators ("helo [ip]")
	Size       int64  // content bytes (set by Put)
	Recipients []Recipient
}

// Clone returns a deep copy.
func (m *Message) Clone() Message {
	c := *m
	c.Recipients = slices.Clone(m.Recipients)
	return c
}

// Done reports whether every recipient is in a final state.
func (m *Message) Done() bool {
	for _, r := range m.Recipients {
		if !r.Status.Final() {
			return false
		}
	}
	return true
}

// RecipientUpdate sets the state of the recipient at Index.
type RecipientUpdate struct {
	Index     int
	Recipient Recipient
}
