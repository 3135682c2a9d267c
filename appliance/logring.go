package appliance

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The appliance's recent log lines, kept in memory for the web menu's Logs
// page (machine-local: never replicated, gone at restart): every record
// of level Info and above goes to the configured logger and to a ring of
// the last logRingSize lines.

const logRingSize = 5000

// LogLine is one log record as GET /v1/logs returns it.
type LogLine struct {
	Time  time.Time `json:"time"`
	Level string    `json:"level"`
	Msg   string    `json:"msg"`
	Attrs string    `json:"attrs"` // key=value ..., as the text log prints them
}

// logRing is a fixed-size ring of log lines.
type logRing struct {
	mu    sync.Mutex
	lines []LogLine
	next  int
	full  bool
}

func newLogRing(n int) *logRing { return &logRing{lines: make([]LogLine, n)} }

func (r *logRing) add(l LogLine) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines[r.next] = l
	r.next = (r.next + 1) % len(r.lines)
	if r.next == 0 {
		r.full = true
	}
}

// search returns up to n lines, newest first, whose text holds q (case
// insensitive; "" matches every line).
func (r *logRing) search(q string, n int) []LogLine {
	q = strings.ToLower(q)
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []LogLine{}
	count := r.next
	if r.full {
		count = len(r.lines)
	}
	for i := 1; i <= count && len(out) < n; i++ {
		l := r.lines[(r.next-i+len(r.lines))%len(r.lines)]
		if q == "" || strings.Contains(strings.ToLower(l.Level+" "+l.Msg+" "+l.Attrs), q) {
			out = append(out, l)
		}
	}
	return out
}

// ringHandler is a slog.Handler that tees records into the ring.
type ringHandler struct {
	next  slog.Handler
	ring  *logRing
	attrs string // pre-formatted attributes of With
	group string
}

func newRingHandler(next slog.Handler, ring *logRing) *ringHandler {
	return &ringHandler{next: next, ring: ring}
}

func (h *ringHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.next.Enabled(ctx, l)
}

func (h *ringHandler) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Level >= slog.LevelInfo {
		var b strings.Builder
		b.WriteString(h.attrs)
		rec.Attrs(func(a slog.Attr) bool {
			appendAttr(&b, h.group, a)
			return true
		})
		h.ring.add(LogLine{Time: rec.Time.UTC(), Level: rec.Level.String(), Msg: rec.Message, Attrs: strings.TrimSpace(b.String())})
	}
	if h.next.Enabled(ctx, rec.Level) {
		return h.next.Handle(ctx, rec)
	}
	return nil
}

func (h *ringHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range as {
		appendAttr(&b, h.group, a)
	}
	return &ringHandler{next: h.next.WithAttrs(as), ring: h.ring, attrs: b.String(), group: h.group}
}

func (h *ringHandler) WithGroup(name string) slog.Handler {
	g := name
	if h.group != "" {
		g = h.group + "." + name
	}
	return &ringHandler{next: h.next.WithGroup(name), ring: h.ring, attrs: h.attrs, group: g}
}

func appendAttr(b *strings.Builder, group string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	key := a.Key
	if group != "" {
		key = group + "." + key
	}
	if a.Value.Kind() == slog.KindGroup {
		for _, ga := range a.Value.Group() {
			appendAttr(b, key, ga)
		}
		return
	}
	v := a.Value.String()
	if strings.ContainsAny(v, " \"=") || v == "" {
		v = strconv.Quote(v)
	}
	fmt.Fprintf(b, " %s=%s", key, v)
}

// logRoutes serves GET /v1/logs?q=TEXT&n=200: the newest lines first.
func (a *Appliance) logRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/logs", a.jsonHandler(func(r *http.Request) (any, error) {
		n := 200
		if s := r.URL.Query().Get("n"); s != "" {
			v, err := strconv.Atoi(s)
			if err != nil || v < 1 {
				return nil, badRequest("n=%q: want a positive number of lines", s)
			}
			n = min(v, logRingSize)
		}
		return a.logs.search(r.URL.Query().Get("q"), n), nil
	}))
}
