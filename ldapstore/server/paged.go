package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"postern/ldapstore"
)

// maxPagedSearches bounds the paged searches a connection keeps open; the
// oldest is dropped first.
const maxPagedSearches = 16

// pagedState holds a connection's paged searches by cookie; guarded by
// conn.mu. Cookies are random and valid on their connection only.
type pagedState struct {
	seq      uint64
	searches map[string]*pagedSearch
}

// pagedSearch is the rest of a paged search's result set. The set is fixed
// by the first page; entries are read again when their page is sent, so
// entries deleted meanwhile are skipped and modified ones appear as they
// are now.
type pagedSearch struct {
	seq          uint64
	key          string
	owner        string
	rest         []pendingEntry
	sizeExceeded bool
	held         int64 // reserved from the server's result budget for rest
}

// pendingSize is what one remembered entry of a paged search is charged
// against the server's paged results budget (as large as MaxResultBuffer,
// and apart from it: paged state is held between requests, and a search
// waiting for chunk budget must never wait for paged state that only its
// own progress frees). The rest of a result set is memory held for unsent
// results, and a client that asks for the first page of large searches and
// never the next must not hold memory without bound (issue 9, item 10).
const pendingSize = 64

// pendingChunk is how many remembered entries are reserved at a time.
const pendingChunk = 1024

var errPagedLimit = ldapstore.Errorf(ldapstore.AdminLimitExceeded, "too many paged search results held; finish or abandon other paged searches")

// releasePaged gives back what ps holds of the server's budget.
func (c *conn) releasePaged(ps *pagedSearch) {
	if ps != nil && ps.held > 0 {
		c.srv.paged.release(ps.held)
		ps.held = 0
	}
}

// dropPaged forgets every paged search of the connection (it closes).
func (c *conn) dropPaged() {
	c.mu.Lock()
	searches := c.pages.searches
	c.pages.searches = nil
	c.mu.Unlock()
	for _, ps := range searches {
		c.releasePaged(ps)
	}
}

type pendingEntry struct {
	uuid  string
	entry *ldapstore.Entry // kept when the entry has no entryUUID
}

// searchKey identifies a search so that a cookie is used only with the
// request that produced it (RFC 2696 §3: the client repeats the same
// request).
func searchKey(r *searchRequest) string {
	var b strings.Builder
	b.WriteString(r.base)
	b.WriteByte(0)
	b.WriteString(strconv.Itoa(int(r.scope)))
	b.WriteByte(0)
	if r.filter != nil {
		b.WriteString(r.filter.String())
	}
	b.WriteByte(0)
	b.WriteString(strings.Join(r.attrs, "\x01"))
	b.WriteByte(0)
	b.WriteString(strconv.FormatBool(r.typesOnly))
	return b.String()
}

func (c *conn) takePaged(cookie string) *pagedSearch {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps := c.pages.searches[cookie]
	delete(c.pages.searches, cookie)
	return ps
}

func (c *conn) putPaged(ps *pagedSearch) string {
	var rb [12]byte
	rand.Read(rb[:])
	cookie := hex.EncodeToString(rb[:])
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pages.searches == nil {
		c.pages.searches = make(map[string]*pagedSearch)
	}
	if len(c.pages.searches) >= maxPagedSearches {
		var oldest string
		var seq uint64
		for k, v := range c.pages.searches {
			if oldest == "" || v.seq < seq {
				oldest, seq = k, v.seq
			}
		}
		if old := c.pages.searches[oldest]; old != nil && old.held > 0 {
			c.srv.paged.release(old.held)
			old.held = 0
		}
		delete(c.pages.searches, oldest)
	}
	c.pages.seq++
	ps.seq = c.pages.seq
	c.pages.searches[cookie] = ps
	return cookie
}

// pagedSearch serves a search with the paged results control (RFC 2696).
func (c *conn) pagedSearch(op *operation, m *message, r *searchRequest, id identity, ctrl *Control) {
	pc, err := decodePaged(ctrl.Value)
	if err != nil {
		c.sendResult(m.id, appSearchDone, err, nil)
		return
	}
	key := searchKey(r)
	var ps *pagedSearch
	if pc.cookie != "" {
		ps = c.takePaged(pc.cookie)
		if ps == nil {
			c.sendResult(m.id, appSearchDone, ldapstore.Errorf(ldapstore.ProtocolError, "paged results cookie is invalid"), nil)
			return
		}
		if ps.key != key || ps.owner != id.norm {
			c.releasePaged(ps)
			c.sendResult(m.id, appSearchDone, ldapstore.Errorf(ldapstore.ProtocolError, "paged results cookie does not match the search"), nil)
			return
		}
	}
	if pc.size == 0 {
		// RFC 2696 §3: a size of zero abandons the paged search; the
		// server frees its resources and returns an empty cookie.
		c.releasePaged(ps)
		c.finishPaged(op, m, nil, 0, "")
		return
	}
	v := c.view(r, id)
	e := getEncoder()
	defer putEncoder(e)
	sent := 0
	if ps == nil {
		ps = &pagedSearch{key: key, owner: id.norm}
		ctx := op.ctx
		if r.timeLimit > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, time.Duration(r.timeLimit)*c.srv.timeUnit)
			defer cancel()
		}
		// The first page runs the whole search: the first entries go out
		// at once, the others are remembered by entryUUID.
		err := c.srv.store.Search(ctx, c.storeRequest(r, id), func(ent *ldapstore.Entry) error {
			if err := op.ctx.Err(); err != nil {
				return err
			}
			if int64(sent) < pc.size {
				sent++
				e.reset()
				e.searchEntry(m.id, ent, c.viewFor(v, ent, id), nil)
				return c.send(e.b, false)
			}
			if len(ps.rest)%pendingChunk == 0 {
				if !c.srv.paged.tryAcquire(pendingChunk * pendingSize) {
					return errPagedLimit
				}
				ps.held += pendingChunk * pendingSize
			}
			if u := ent.First("entryUUID"); u != "" {
				ps.rest = append(ps.rest, pendingEntry{uuid: u})
			} else {
				ps.rest = append(ps.rest, pendingEntry{entry: ent})
			}
			return nil
		})
		if ldapstore.CodeOf(err) == ldapstore.SizeLimitExceeded {
			ps.sizeExceeded, err = true, nil
		}
		if err != nil {
			c.releasePaged(ps)
			c.finishPaged(op, m, err, 0, "")
			return
		}
	} else {
		for len(ps.rest) > 0 && int64(sent) < pc.size {
			if op.abandoned() {
				break
			}
			p := ps.rest[0]
			ps.rest = ps.rest[1:]
			ent := p.entry
			if ent == nil {
				var err error
				if ent, err = c.srv.store.GetByUUID(op.ctx, p.uuid); err != nil {
					if ldapstore.CodeOf(err) == ldapstore.NoSuchObject {
						continue
					}
					c.releasePaged(ps)
					c.finishPaged(op, m, err, 0, "")
					return
				}
				// The entry may have changed since the first page.
				if r.filter != nil && !r.filter.MatchesAccess(c.srv.store.Schema(), ent, c.srv.access(id)) {
					continue
				}
			}
			sent++
			e.reset()
			e.searchEntry(m.id, ent, c.viewFor(v, ent, id), nil)
			if c.send(e.b, false) != nil {
				c.releasePaged(ps)
				return
			}
		}
	}
	// keep reserved what the rest still needs, in whole chunks
	if need := (int64(len(ps.rest)) + pendingChunk - 1) / pendingChunk * pendingChunk * pendingSize; ps.held > need {
		c.srv.paged.release(ps.held - need)
		ps.held = need
	}
	if len(ps.rest) > 0 {
		cookie := c.putPaged(ps)
		c.finishPaged(op, m, nil, len(ps.rest), cookie)
		return
	}
	var final error
	if ps.sizeExceeded {
		final = ldapstore.Errorf(ldapstore.SizeLimitExceeded, "size limit exceeded")
	}
	c.finishPaged(op, m, final, 0, "")
}

// finishPaged sends a page's SearchResultDone with the paged results
// response control: the estimated entries left and the next cookie, empty
// on the last page (RFC 2696 §3).
func (c *conn) finishPaged(op *operation, m *message, err error, left int, cookie string) {
	if op.abandoned() {
		c.srv.metrics.op("search", ldapstore.Canceled)
		return
	}
	c.sendResult(m.id, appSearchDone, err, []Control{pagedResponse(left, cookie)})
}
