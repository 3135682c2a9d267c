package smtp

import (
	"container/heap"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"postern/smtp/queue"
)

// scheduler decides when each queued message is tried and runs the
// deliveries: due messages are split into jobs (the recipients that share a
// next hop), jobs wait in a FIFO per next hop, and each next hop is served by
// at most DestinationConcurrency runner goroutines (MaxDeliveries in all),
// each owning one outbound connection that it reuses for consecutive jobs.
type scheduler struct {
	g    *Gateway
	wake chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	due     dueHeap
	msgs    map[string]*msgState
	dests   map[string]*dest
	slots   int     // runners in all
	waiting []*dest // next hops waiting for a runner slot, FIFO
	routes  map[string]cachedRoute
}

type msgState struct {
	inflight int  // jobs not finished
	forced   bool // queue flush: deferred recipients are due now
	again    bool // dispatch again when the jobs finish
}

type job struct {
	id    string
	rcpts []int // indexes into the message's recipients
}

// dest is one next hop.
type dest struct {
	r      route
	jobs   []*job
	active int // runners
	idle   int // runners waiting for a job
	queued bool
	signal chan struct{}
}

type dueItem struct {
	at time.Time
	id string
}

type dueHeap []dueItem

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueItem)) }
func (h *dueHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

func newScheduler(g *Gateway) *scheduler {
	return &scheduler{
		g:      g,
		wake:   make(chan struct{}, 1),
		msgs:   make(map[string]*msgState),
		dests:  make(map[string]*dest),
		routes: make(map[string]cachedRoute),
	}
}

// start schedules everything in the queue (after a restart, too) and starts
// the dispatcher.
func (s *scheduler) start() {
	now := time.Now()
	for _, m := range s.g.q.List() {
		at := now
		for _, r := range m.Recipients {
			if r.Status == queue.Deferred && r.NextAttempt.After(now) {
				at = r.NextAttempt
			} else if !r.Status.Final() {
				at = now
				break
			}
		}
		s.schedule(m.ID, at, false)
	}
	s.wg.Add(1)
	go s.dispatcher()
}

func (s *scheduler) stop() { s.wg.Wait() }

// schedule asks for message id to be looked at, at time at. force makes
// its deferred recipients due (queue flush).
func (s *scheduler) schedule(id string, at time.Time, force bool) {
	s.mu.Lock()
	if force {
		s.state(id).forced = true
	}
	heap.Push(&s.due, dueItem{at, id})
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// enqueueNew hands a message just queued (every recipient Queued) to its
// next hops at once when the route of every recipient domain is cached,
// as it is under load; otherwise it schedules the message for the
// dispatcher. It spares the dispatcher a wake-up and a copy of the
// envelope per message (issue 16).
func (s *scheduler) enqueueNew(m *queue.Message) {
	now := time.Now()
	var keys []string
	var idx [][]int
	var rts []route
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.g.ctx.Err() != nil {
		return
	}
	for i, r := range m.Recipients {
		c, ok := s.routes[domainOf(r.Addr)]
		if !ok || !now.Before(c.exp) {
			heap.Push(&s.due, dueItem{now, m.ID})
			select {
			case s.wake <- struct{}{}:
			default:
			}
			return
		}
		k := slices.Index(keys, c.r.key)
		if k < 0 {
			k = len(keys)
			keys, idx, rts = append(keys, c.r.key), append(idx, nil), append(rts, c.r)
		}
		idx[k] = append(idx[k], i)
	}
	if len(keys) == 0 {
		return
	}
	s.state(m.ID).inflight = len(keys)
	for k, key := range keys {
		d := s.dests[key]
		if d == nil {
			d = &dest{r: rts[k], signal: make(chan struct{}, 1)}
			s.dests[key] = d
		}
		d.jobs = append(d.jobs, &job{id: m.ID, rcpts: idx[k]})
		s.kick(d)
	}
}

func (s *scheduler) state(id string) *msgState {
	st := s.msgs[id]
	if st == nil {
		st = &msgState{}
		s.msgs[id] = st
	}
	return st
}

func (s *scheduler) dispatcher() {
	defer s.wg.Done()
	ctx := s.g.ctx
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var ready []string
	for {
		now := time.Now()
		next := now.Add(time.Hour)
		ready = ready[:0]
		s.mu.Lock()
		for s.due.Len() > 0 && !s.due[0].at.After(now) {
			ready = append(ready, heap.Pop(&s.due).(dueItem).id)
		}
		if s.due.Len() > 0 {
			next = s.due[0].at
		}
		s.mu.Unlock()
		for _, id := range ready {
			if ctx.Err() != nil {
				return
			}
			s.dispatch(ctx, id)
		}
		if len(ready) > 0 {
			continue
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// dispatch looks at one message: expires it, bounces its failed recipients,
// and hands its due recipients to their next hops.
func (s *scheduler) dispatch(ctx context.Context, id string) {
	m, ok := s.g.q.Get(id)
	s.mu.Lock()
	st := s.msgs[id]
	if !ok {
		delete(s.msgs, id)
		s.mu.Unlock()
		return
	}
	if st != nil && st.inflight > 0 {
		st.again = true
		s.mu.Unlock()
		return
	}
	forced := st != nil && st.forced
	delete(s.msgs, id)
	s.mu.Unlock()

	now := time.Now()
	if now.Sub(m.Arrival) >= s.g.cfg.QueueLifetime {
		s.expire(ctx, &m, now)
	}
	if s.hasFailed(&m) {
		if !s.g.bounce(ctx, &m) {
			s.schedule(id, now.Add(s.g.cfg.RetryMin), false)
			return
		}
	}

	groups := make(map[string][]int)
	routes := make(map[string]route)
	var next time.Time
	for i, r := range m.Recipients {
		switch {
		case r.Status == queue.Queued, r.Status == queue.Deferred && (forced || !r.NextAttempt.After(now)):
		case r.Status == queue.Deferred:
			if next.IsZero() || r.NextAttempt.Before(next) {
				next = r.NextAttempt
			}
			continue
		default:
			continue
		}
		rt, err := s.route(ctx, domainOf(r.Addr))
		if err != nil {
			s.g.log.Warn("smtp: routing lookup failed", slog.String("id", id), slog.String("err", err.Error()))
			retry := now.Add(time.Minute)
			if next.IsZero() || retry.Before(next) {
				next = retry
			}
			continue
		}
		groups[rt.key] = append(groups[rt.key], i)
		routes[rt.key] = rt
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(groups) == 0 {
		if !next.IsZero() {
			heap.Push(&s.due, dueItem{next, id})
		}
		return
	}
	s.state(id).inflight = len(groups)
	for key, idx := range groups {
		d := s.dests[key]
		if d == nil {
			d = &dest{r: routes[key], signal: make(chan struct{}, 1)}
			s.dests[key] = d
		}
		d.jobs = append(d.jobs, &job{id: id, rcpts: idx})
		s.kick(d)
	}
}

func (s *scheduler) hasFailed(m *queue.Message) bool {
	for _, r := range m.Recipients {
		if r.Status == queue.Failed {
			return true
		}
	}
	return false
}

// expire fails the unfinished recipients of a message past QueueLifetime.
func (s *scheduler) expire(ctx context.Context, m *queue.Message, now time.Time) {
	var ups []queue.RecipientUpdate
	for i, r := range m.Recipients {
		if r.Status != queue.Queued && r.Status != queue.Deferred {
			continue
		}
		r.Status = queue.Failed
		r.Enhanced = "4.4.7" // RFC 3463 X.4.7: delivery time expired
		if r.Diagnostic == "" {
			r.Diagnostic = "delivery time expired"
		} else {
			r.Diagnostic = "delivery time expired; last error: " + r.Diagnostic
		}
		m.Recipients[i] = r
		ups = append(ups, queue.RecipientUpdate{Index: i, Recipient: r})
		s.g.met.bounced.Inc()
	}
	if err := s.g.q.Update(ctx, m.ID, ups...); err != nil {
		s.g.log.Error("smtp: expire", slog.String("id", m.ID), slog.String("err", err.Error()))
	}
}

// kick starts a runner for d when it has jobs, no idle runner and a free
// slot; called with s.mu held.
func (s *scheduler) kick(d *dest) {
	if len(d.jobs) == 0 {
		return
	}
	if d.idle > 0 {
		select {
		case d.signal <- struct{}{}:
		default:
		}
		return
	}
	if d.active >= s.g.cfg.DestinationConcurrency || s.g.ctx.Err() != nil {
		return
	}
	if s.slots >= s.g.cfg.MaxDeliveries {
		if !d.queued {
			d.queued = true
			s.waiting = append(s.waiting, d)
		}
		return
	}
	s.slots++
	d.active++
	s.wg.Add(1)
	go s.run(d)
}

// maxJobsPerRunner makes a busy next hop give its runner slot back now and
// then, so that other next hops waiting for slots get their turn.
const maxJobsPerRunner = 500

// run serves jobs of one next hop over one reused connection.
func (s *scheduler) run(d *dest) {
	ctx := s.g.ctx
	var oc *outConn
	defer func() {
		oc.quit()
		s.mu.Lock()
		d.active--
		s.slots--
		for len(s.waiting) > 0 && s.slots < s.g.cfg.MaxDeliveries {
			w := s.waiting[0]
			s.waiting = s.waiting[1:]
			w.queued = false
			s.kick(w)
		}
		s.kick(d)
		if d.active == 0 && len(d.jobs) == 0 && !d.queued {
			delete(s.dests, d.r.key)
		}
		s.mu.Unlock()
		s.wg.Done()
	}()
	for served := 0; ; served++ {
		s.mu.Lock()
		if served >= maxJobsPerRunner && len(s.waiting) > 0 {
			s.mu.Unlock()
			return
		}
		if len(d.jobs) == 0 {
			// Keep the connection for ConnCacheTime (Postfix's
			// connection cache). A wake-up whose job another runner
			// took first is no reason to close it: wait again.
			d.idle++
			s.mu.Unlock()
			t := time.NewTimer(s.g.cfg.ConnCacheTime)
			expired := false
			for {
				select {
				case <-ctx.Done():
				case <-d.signal:
				case <-t.C:
					expired = true
				}
				s.mu.Lock()
				if len(d.jobs) > 0 || expired || ctx.Err() != nil {
					break
				}
				s.mu.Unlock()
			}
			t.Stop()
			d.idle--
			if len(d.jobs) == 0 || ctx.Err() != nil {
				s.mu.Unlock()
				return
			}
		}
		j := d.jobs[0]
		d.jobs[0] = nil
		d.jobs = d.jobs[1:]
		s.mu.Unlock()

		res, connFailed := s.g.deliver(ctx, d.r, &oc, j)
		s.finish(ctx, j, res)
		if connFailed != nil {
			// The next hop cannot be reached: defer what waits for it
			// now instead of trying each job (Postfix does the same).
			s.mu.Lock()
			rest := d.jobs
			d.jobs = nil
			s.mu.Unlock()
			for _, rj := range rest {
				s.finish(ctx, rj, failAll(rj, connFailed, ""))
			}
		}
	}
}

// finish records the outcome of a job and re-dispatches the message when
// its last job is done.
func (s *scheduler) finish(ctx context.Context, j *job, res []result) {
	if len(res) > 0 {
		s.g.record(ctx, j.id, res)
	}
	s.mu.Lock()
	st := s.msgs[j.id]
	last := true
	if st != nil {
		st.inflight--
		last = st.inflight <= 0
		if last {
			delete(s.msgs, j.id)
		}
	}
	s.mu.Unlock()
	// A message that left the queue (every recipient final) needs no
	// second look; it went at once in the common case, delivered.
	if last && s.g.q.Has(j.id) {
		s.schedule(j.id, time.Now(), false)
	}
}

// record applies delivery results to the queue.
func (g *Gateway) record(ctx context.Context, id string, res []result) {
	m, ok := g.q.Get(id)
	if !ok {
		return // deleted meanwhile
	}
	now := time.Now()
	ups := make([]queue.RecipientUpdate, 0, len(res))
	for _, x := range res {
		r := m.Recipients[x.idx]
		r.Attempts++
		r.LastAttempt = now
		r.Status, r.Diagnostic, r.Enhanced, r.RemoteMTA = x.status, x.diag, x.enh, x.remote
		switch x.status {
		case queue.Delivered:
			g.met.delivered.Inc()
			g.met.latency.Observe(now.Sub(m.Arrival).Seconds())
		case queue.Deferred:
			g.met.deferred.Inc()
			r.NextAttempt = now.Add(g.backoff(r.Attempts))
		case queue.Failed:
			g.met.bounced.Inc()
		}
		g.log.Debug("smtp: delivery", slog.String("id", id), slog.String("to", r.Addr),
			slog.String("status", r.Status.String()), slog.String("reply", r.Diagnostic))
		ups = append(ups, queue.RecipientUpdate{Index: x.idx, Recipient: r})
	}
	// Written, not waited for on disk: a power loss at the wrong moment
	// delivers a message twice, never loses one (queue.UpdateWritten).
	if err := g.q.UpdateWritten(ctx, id, ups...); err != nil && err != queue.ErrNotFound {
		g.log.Error("smtp: recording delivery status", slog.String("id", id), slog.String("err", err.Error()))
	}
}

// backoff is the delay before attempt n+1: RetryMin doubled per attempt,
// capped at RetryMax.
func (g *Gateway) backoff(n int) time.Duration {
	d := g.cfg.RetryMin
	for i := 1; i < n && d < g.cfg.RetryMax; i++ {
		d *= 2
	}
	return min(d, g.cfg.RetryMax)
}

func domainOf(addr string) string {
	return strings.ToLower(addr[strings.LastIndexByte(addr, '@')+1:])
}
