package smtp

import (
	"context"
	"fmt"
)

// Envelope is what a Processor learns of a queued message: its queue ID,
// reverse path and the recipients of one delivery (addresses as queued).
type Envelope struct {
	ID    string
	From  string
	Rcpts []string
}

// Variant is the content for some of an Envelope's recipients (indexes
// into Rcpts), or the reason they get none: Err with a 4xx defers them
// (the reason shows in `queue show`), with a 5xx fails them (a DSN).
type Variant struct {
	Rcpts   []int
	Content []byte
	Err     *Error
}

// Processor is the step between the queue and the next hop (secure mail,
// package postern/smtp/secure). The queue keeps the message as it was
// accepted; what a Processor makes of it exists in memory only, for one
// delivery attempt.
type Processor interface {
	// CheckRecipient is asked at RCPT, after the relay policy accepted
	// rcpt: a non-nil reply refuses the recipient.
	CheckRecipient(ctx context.Context, from, rcpt string) *Error
	// CheckMessage is asked at the end of the data, before the message is
	// queued (content is canonical, with the Received field): a non-nil
	// reply refuses the message.
	CheckMessage(ctx context.Context, from string, rcpts []string, content []byte) *Error
	// Prepare turns a message into what each recipient of env gets. Every
	// recipient index must be in exactly one Variant.
	Prepare(ctx context.Context, env Envelope, content []byte) []Variant
	// Seal runs on the final octets of one transaction, after the
	// downgrade for the next hop (DKIM signs here).
	Seal(ctx context.Context, env Envelope, content []byte) ([]byte, *Error)
}

// SevenBit converts a MIME entity (header section and body, canonical CRLF)
// to 7 bit as the 8BITMIME downgrade does (downgrade.go): for content that
// is about to be signed (RFC 8551 §3.1.1, RFC 3156 §3).
func SevenBit(entity []byte) ([]byte, error) {
	if !has8bit(entity) {
		return entity, nil
	}
	out, headerUTF8, err := to7bit(canonical(entity), 0, "text/plain", false)
	if err != nil {
		return nil, err
	}
	if headerUTF8 {
		return nil, fmt.Errorf("smtp: 8-bit header field in a part to be signed")
	}
	return out, nil
}

// errUnprocessed is the reply when the Processor leaves a recipient out.
var errUnprocessed = newError(451, [3]int{4, 3, 0}, "Message could not be prepared for delivery", nil)

// prepare runs the Processor over a job: parts to send, and results for
// the recipients it refused.
func (g *Gateway) prepare(ctx context.Context, m Envelope, j *job, content []byte) (parts []preparedPart, res []result) {
	p := g.cfg.Processor
	if p == nil {
		return []preparedPart{{j: j, content: content}}, nil
	}
	vs := p.Prepare(ctx, m, content)
	seen := make([]bool, len(j.rcpts))
	for _, v := range vs {
		var idx []int
		for _, i := range v.Rcpts {
			if i < 0 || i >= len(j.rcpts) || seen[i] {
				continue
			}
			seen[i] = true
			idx = append(idx, j.rcpts[i])
		}
		if len(idx) == 0 {
			continue
		}
		sub := &job{id: j.id, rcpts: idx}
		if v.Err != nil {
			res = append(res, failAll(sub, v.Err, "")...)
			continue
		}
		parts = append(parts, preparedPart{j: sub, content: v.Content})
	}
	var left []int
	for i, ok := range seen {
		if !ok {
			left = append(left, j.rcpts[i])
		}
	}
	if len(left) > 0 {
		res = append(res, failAll(&job{id: j.id, rcpts: left}, errUnprocessed, "")...)
	}
	return parts, res
}

// preparedPart is one transaction of a job: some of its recipients and
// the content they get.
type preparedPart struct {
	j       *job
	content []byte
}
