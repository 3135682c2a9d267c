package smtp

import (
	"bytes"
	"context"
	"time"

	"postern/smtp/queue"
)

// List returns the queued messages, oldest first (postern queue list).
func (g *Gateway) List(ctx context.Context) ([]queue.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return g.q.List(), nil
}

// Show returns a queued message and its header section (postern queue show).
func (g *Gateway) Show(ctx context.Context, id string) (queue.Message, []byte, error) {
	if err := ctx.Err(); err != nil {
		return queue.Message{}, nil, err
	}
	m, ok := g.q.Get(id)
	if !ok {
		return queue.Message{}, nil, queue.ErrNotFound
	}
	content, err := g.q.Content(id)
	if err != nil {
		return queue.Message{}, nil, err
	}
	return m, headerSection(content), nil
}

// Flush makes every deferred recipient due now (postern queue flush) and
// returns the number of messages scheduled.
func (g *Gateway) Flush(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	now := time.Now()
	for _, m := range g.q.List() {
		g.sch.schedule(m.ID, now, true)
		n++
	}
	return n, nil
}

// Delete removes a message from the queue without notifying anyone
// (postern queue delete).
func (g *Gateway) Delete(ctx context.Context, id string) error {
	return g.q.Remove(ctx, id)
}

// headerSection returns the header of an RFC 5322 message up to and
// including the empty line that ends it (or all of it if there is none).
func headerSection(content []byte) []byte {
	if bytes.HasPrefix(content, []byte("\r\n")) {
		return content[:2]
	}
	if i := bytes.Index(content, []byte("\r\n\r\n")); i >= 0 {
		return content[:i+4]
	}
	if i := bytes.Index(content, []byte("\n\n")); i >= 0 {
		return content[:i+2]
	}
	return content
}
