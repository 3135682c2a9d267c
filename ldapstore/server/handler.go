package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"postern/ldapstore"
	"postern/ldapstore/filter"
)

// SearchRequest is a search handed to a SearchHandler (RFC 4511 §4.5.1).
type SearchRequest struct {
	MessageID    int64
	BaseDN       string
	Scope        ldapstore.Scope
	DerefAliases int
	Filter       *filter.Filter
	Attributes   []string
	SizeLimit    int           // 0: none
	TimeLimit    time.Duration // 0: none; the handler decides whether it applies
	TypesOnly    bool
	Controls     []Control // all the request's controls, the handler's included
	BindDN       string    // the connection's identity; "" for anonymous
	Root         bool      // BindDN is the configured root DN
	Restricted   bool      // a read-only session of limited sight (ServeConnRestricted)
	// Access is the client's read access: a handler evaluates Filter with
	// Filter.MatchAccess(schema, entry, Access) so that attributes the
	// client may not read are Undefined (nil: the root DN, everything).
	Access filter.Access
}

// SearchHandler serves searches that carry a control registered with
// Server.HandleSearchControl (package replication serves RFC 4533 this
// way). ServeSearch runs in the operation's goroutine and may run for hours:
// other operations of the connection go on meanwhile. ctx is cancelled when
// the client abandons the search, the connection closes or the server
// stops; the handler must then return.
//
// If ServeSearch returns without calling Done, the server sends the
// SearchResultDone: success for a nil error, else the error's result code.
type SearchHandler interface {
	ServeSearch(ctx context.Context, req *SearchRequest, w SearchWriter) error
}

// SearchHandlerFunc adapts a function to SearchHandler.
type SearchHandlerFunc func(ctx context.Context, req *SearchRequest, w SearchWriter) error

// ServeSearch calls f.
func (f SearchHandlerFunc) ServeSearch(ctx context.Context, req *SearchRequest, w SearchWriter) error {
	return f(ctx, req, w)
}

// SearchWriter sends a search's responses. Its methods are safe for
// concurrent use; each message is flushed to the client at once.
type SearchWriter interface {
	// SendEntry sends a SearchResultEntry (RFC 4511 §4.5.2) with the
	// request's attribute selection and access rules applied, and ctrls
	// attached to the entry.
	SendEntry(e *ldapstore.Entry, ctrls ...Control) error
	// SendIntermediate sends an IntermediateResponse (RFC 4511 §4.13);
	// an empty oid or nil value is omitted.
	SendIntermediate(oid string, value []byte) error
	// Done sends the SearchResultDone (RFC 4511 §4.5.2) with ctrls; later
	// calls fail with ErrSearchDone.
	Done(code ldapstore.ResultCode, msg string, ctrls ...Control) error
}

// ErrSearchDone is returned by a SearchWriter after Done.
var ErrSearchDone = errors.New("server: search already done")

type searchWriter struct {
	c    *conn
	op   *operation
	id   int64
	view *entryView
	who  identity

	mu   sync.Mutex
	done bool
}

func (w *searchWriter) check() error {
	if w.done {
		return ErrSearchDone
	}
	return w.op.ctx.Err()
}

func (w *searchWriter) SendEntry(ent *ldapstore.Entry, ctrls ...Control) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.check(); err != nil {
		return err
	}
	e := getEncoder()
	defer putEncoder(e)
	e.searchEntry(w.id, ent, w.c.viewFor(w.view, ent, w.who), ctrls)
	return w.c.send(e.b, true)
}

func (w *searchWriter) SendIntermediate(oid string, value []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.check(); err != nil {
		return err
	}
	e := getEncoder()
	defer putEncoder(e)
	e.intermediate(w.id, oid, value)
	return w.c.send(e.b, true)
}

func (w *searchWriter) Done(code ldapstore.ResultCode, msg string, ctrls ...Control) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.check(); err != nil {
		return err
	}
	w.done = true
	var err error
	if code != ldapstore.Success {
		err = &ldapstore.Error{Code: code, Message: msg}
	}
	w.c.sendResult(w.id, appSearchDone, err, ctrls)
	return nil
}

// serveHandler runs a registered SearchHandler. Anonymous clients may not
// use it: it exposes the tree.
func (c *conn) serveHandler(op *operation, m *message, r *searchRequest, id identity, h SearchHandler) {
	if err := canRead(id); err != nil {
		c.sendResult(m.id, appSearchDone, err, nil)
		return
	}
	req := &SearchRequest{
		MessageID:    m.id,
		BaseDN:       r.base,
		Scope:        r.scope,
		DerefAliases: int(r.deref),
		Filter:       r.filter,
		Attributes:   r.attrs,
		SizeLimit:    int(r.sizeLimit),
		TimeLimit:    time.Duration(r.timeLimit) * time.Second,
		TypesOnly:    r.typesOnly,
		Controls:     m.controls,
		BindDN:       id.dn,
		Root:         id.root,
		Restricted:   id.restricted,
		Access:       c.srv.access(id),
	}
	w := &searchWriter{c: c, op: op, id: m.id, view: c.view(r, id), who: id}
	err := h.ServeSearch(op.ctx, req, w)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	w.done = true
	c.finish(op, m, appSearchDone, err)
}
