package webadmin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// backend calls the appliance's control API (the handler the CLI talks to
// through the control socket) in process: every action the menu offers is
// the control route's, so it exists once.
type backend struct {
	h http.Handler
}

// Error is an answer of the control API that is not 2xx: its message is
// the API's, written for a person.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// do runs one request against the control handler in its own goroutine
// and returns the response as soon as its header is written; the body
// streams (a join's progress arrives line by line).
func (b *backend) do(ctx context.Context, method, path string, body io.Reader, ctype string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://postern"+path, body)
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if body == nil {
		req.Body = http.NoBody
	}
	resp, err := b.roundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e struct{ Error string }
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return nil, &Error{resp.StatusCode, e.Error}
		}
		return nil, &Error{resp.StatusCode, fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(raw)))}
	}
	return resp, nil
}

// call sends in as JSON (when not nil) and decodes the answer into out
// (when not nil).
func (b *backend) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	ctype := ""
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ctype = strings.NewReader(string(raw)), "application/json"
	}
	resp, err := b.do(ctx, method, path, body, ctype)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("webadmin: %s %s: bad answer: %w", method, path, err)
	}
	return nil
}

// stream sends in as JSON and calls line for every JSON line of the
// answer (the control API streams progress as NDJSON).
func (b *backend) stream(ctx context.Context, path string, body io.Reader, ctype string, line func([]byte) error) error {
	resp, err := b.do(ctx, "POST", path, body, ctype)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if err := line(sc.Bytes()); err != nil {
			return err
		}
	}
	return sc.Err()
}

// roundTrip serves req with the handler; the response is handed over when
// the handler writes its header (or returns).
func (b *backend) roundTrip(req *http.Request) (*http.Response, error) {
	pr, pw := io.Pipe()
	w := &pipeWriter{header: http.Header{}, pw: pw, ready: make(chan struct{})}
	go func() {
		defer func() {
			if p := recover(); p != nil {
				pw.CloseWithError(fmt.Errorf("webadmin: control handler panicked: %v", p))
				w.writeHeader(http.StatusInternalServerError)
				return
			}
			w.writeHeader(http.StatusOK)
			pw.Close()
		}()
		b.h.ServeHTTP(w, req)
	}()
	select {
	case <-w.ready:
	case <-req.Context().Done():
		pr.CloseWithError(req.Context().Err())
		return nil, req.Context().Err()
	}
	return &http.Response{StatusCode: w.status, Status: fmt.Sprintf("%d %s", w.status, http.StatusText(w.status)),
		Header: w.snapshot, Body: pr, Request: req}, nil
}

// pipeWriter is the in-process http.ResponseWriter: the body goes into a
// pipe the caller reads as the response body.
type pipeWriter struct {
	header   http.Header
	snapshot http.Header
	pw       *io.PipeWriter
	once     sync.Once
	ready    chan struct{}
	status   int
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) WriteHeader(code int) { w.writeHeader(code) }

func (w *pipeWriter) writeHeader(code int) {
	w.once.Do(func() {
		w.status = code
		w.snapshot = w.header.Clone()
		close(w.ready)
	})
}

func (w *pipeWriter) Write(p []byte) (int, error) {
	w.writeHeader(http.StatusOK)
	return w.pw.Write(p)
}

// Flush is a no-op: every Write reaches the reader at once.
func (w *pipeWriter) Flush() {}

// EnableFullDuplex lets handlers that answer while they read (LDIF
// import) do so: the pipe already is.
func (w *pipeWriter) EnableFullDuplex() error { return nil }

// errorText is what a page shows for a failed backend call.
func errorText(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Msg
	}
	return err.Error()
}
