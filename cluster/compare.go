package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"postern/ldapstore"
)

// `postern cluster compare`: the consistency checker that admins of 389-ds
// have in ds-replcheck. Every backend member lists its tree (entryUUID,
// DN, entryCSN, and with attributes a hash of every user and operational
// attribute); the lists are compared entry by entry. Differences are
// asked about again after a pause, so changes in flight are not reported.

// CompareItem is one entry of a member's list.
type CompareItem struct {
	UUID     string `json:"u"`
	DN       string `json:"d"`
	CSN      string `json:"c"`
	Attrs    string `json:"a,omitempty"` // hex SHA-256 of the attributes, with --attrs
	Conflict bool   `json:"x,omitempty"` // a replication conflict or lost+found entry
	Deleted  bool   `json:"g,omitempty"` // a tombstone (with CompareRequest.Tombstones): CSN is the delete's
}

// CompareRequest asks a member for its list; UUIDs limits it to those
// entries (the second look at differences).
type CompareRequest struct {
	Attrs bool     `json:"attrs,omitempty"`
	UUIDs []string `json:"uuids,omitempty"`
	// Tombstones adds the deleted entries kept (Deleted items) after the
	// live ones: what a joiner needs to tell its own changes from entries
	// the cluster deleted meanwhile.
	Tombstones bool `json:"tombstones,omitempty"`
}

// CompareMember is one member's side of a comparison.
type CompareMember struct {
	DeviceID   string `json:"device_id"`
	ClusterNo  int    `json:"cluster_no"`
	Entries    int    `json:"entries"`
	Tombstones int    `json:"tombstones"`
	Conflicts  int    `json:"conflicts"`
	Glue       int    `json:"glue"`
	Error      string `json:"error,omitempty"`
}

// CompareDiff is one entry the members do not hold alike.
type CompareDiff struct {
	UUID string `json:"entry_uuid"`
	// Kind is "missing" (some members lack it) or "version" (another DN,
	// entryCSN or, with --attrs, other attributes).
	Kind string `json:"kind"`
	// Members maps each Device ID to what it holds: "DN @ entryCSN", or
	// "absent".
	Members map[string]string `json:"members"`
}

// CompareReport is the result of Compare.
type CompareReport struct {
	Members     []CompareMember `json:"members"`
	Entries     int             `json:"entries"` // distinct entryUUIDs seen
	Missing     int             `json:"missing"`
	Versions    int             `json:"versions"`
	Diffs       []CompareDiff   `json:"diffs"` // at most maxDiffs
	Equal       bool            `json:"equal"`
	Measured    time.Time       `json:"measured"`
	DurationSec float64         `json:"duration_seconds"`
}

const maxDiffs = 200

// compareBatch is how many items one list message carries.
const compareBatch = 2000

// listItems lists this member's tree for a comparison.
func (a *Agent) listItems(ctx context.Context, req CompareRequest, each func(CompareItem) error) (glue int, err error) {
	want := map[string]bool{}
	for _, u := range req.UUIDs {
		want[strings.ToLower(u)] = true
	}
	err = a.cfg.Store.Search(ctx, &ldapstore.SearchRequest{BaseDN: a.cfg.Store.Suffix(), Scope: ldapstore.ScopeSub}, func(e *ldapstore.Entry) error {
		if ldapstore.IsGlue(e) {
			glue++
			return nil
		}
		it := CompareItem{UUID: strings.ToLower(e.First("entryUUID")), DN: e.DN, CSN: e.First("entryCSN"), Conflict: e.First("posternReplConflict") != ""}
		if len(want) > 0 && !want[it.UUID] {
			return nil
		}
		if req.Attrs {
			it.Attrs = attrsHash(e)
		}
		return each(it)
	})
	return glue, err
}

// attrsHash hashes an entry's attributes, types and values in a canonical
// order (what the store computes on read left out).
func attrsHash(e *ldapstore.Entry) string {
	var lines []string
	for _, at := range e.Attributes {
		switch strings.ToLower(at.Type) {
		case "hassubordinates", "subschemasubentry", "entrydn":
			continue
		}
		vals := slices.Clone(at.Vals)
		slices.Sort(vals)
		lines = append(lines, strings.ToLower(at.Type)+"\x00"+strings.Join(vals, "\x00"))
	}
	slices.Sort(lines)
	h := sha256.Sum256([]byte(strings.Join(lines, "\x01")))
	return hex.EncodeToString(h[:16])
}

// serveCompare streams the list to a member (msgCompare).
func (a *Agent) serveCompare(ctx context.Context, ch ssh.Channel, req CompareRequest) error {
	batch := make([]CompareItem, 0, compareBatch)
	glue, err := a.listItems(ctx, req, func(it CompareItem) error {
		batch = append(batch, it)
		if len(batch) == compareBatch {
			err := WriteMessage(ch, &Message{Type: msgItems, Items: batch})
			batch = batch[:0]
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	deleted, err := a.cfg.Store.Tombstones(ctx)
	if err != nil {
		return err
	}
	if req.Tombstones {
		for _, d := range deleted {
			batch = append(batch, CompareItem{UUID: d.EntryUUID.String(), DN: d.DN, CSN: d.CSN.String(), Deleted: true})
			if len(batch) == compareBatch {
				if err := WriteMessage(ch, &Message{Type: msgItems, Items: batch}); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
	}
	return WriteMessage(ch, &Message{Type: msgItems, Items: batch, Done: true, Total: len(deleted), ClusterNo: glue})
}

// memberList is one member's list during a comparison.
type memberList struct {
	m     CompareMember
	items map[string]CompareItem
}

// fetchList gets a member's list: the local one, or a peer's over its
// control channel.
func (a *Agent) fetchList(ctx context.Context, m MemberInfo, req CompareRequest, progress func(string)) *memberList {
	ml := &memberList{m: CompareMember{DeviceID: m.DeviceID, ClusterNo: m.ClusterNo}, items: map[string]CompareItem{}}
	add := func(it CompareItem) {
		ml.items[it.UUID] = it
		if it.Conflict {
			ml.m.Conflicts++
		}
		if n := len(ml.items); progress != nil && n%50000 == 0 {
			progress(fmt.Sprintf("%s: %d entries listed", m.DeviceID, n))
		}
	}
	if m.DeviceID == a.cfg.DeviceID {
		glue, err := a.listItems(ctx, req, func(it CompareItem) error { add(it); return nil })
		ml.m.Glue = glue
		if err != nil {
			ml.m.Error = err.Error()
		}
		if deleted, err := a.cfg.Store.Tombstones(ctx); err == nil {
			ml.m.Tombstones = len(deleted)
		}
		ml.m.Entries = len(ml.items)
		return ml
	}
	p := a.peer(m.DeviceID)
	if p == nil {
		ml.m.Error = "no link to this member"
		return ml
	}
	err := func() error {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		c, err := p.conn(cctx)
		if err != nil {
			return err
		}
		ch, reqs, err := c.OpenChannel(ControlChannel, nil)
		if err != nil {
			return err
		}
		go ssh.DiscardRequests(reqs)
		defer ch.Close()
		stop := context.AfterFunc(cctx, func() { ch.Close() })
		defer stop()
		if err := WriteMessage(ch, &Message{Type: msgCompare, Compare: &req}); err != nil {
			return err
		}
		for {
			ans, err := ReadMessage(ch)
			if err != nil {
				return err
			}
			if ans.Type == msgError {
				return errors.New(ans.Error)
			}
			for _, it := range ans.Items {
				add(it)
			}
			if ans.Done {
				ml.m.Tombstones, ml.m.Glue = ans.Total, ans.ClusterNo
				return nil
			}
		}
	}()
	if err != nil {
		ml.m.Error = err.Error()
	}
	ml.m.Entries = len(ml.items)
	return ml
}

// Compare compares the trees of every backend member entry by entry
// (Equal false when any member differs or could not be listed). progress
// gets a line per member listed.
func (a *Agent) Compare(ctx context.Context, attrs bool, progress func(string)) (*CompareReport, error) {
	if a.state() == nil {
		return nil, ErrNotMember
	}
	start := time.Now()
	members, err := readMembers(ctx, a.cfg.Store)
	if err != nil {
		return nil, err
	}
	members = slices.DeleteFunc(members, func(m MemberInfo) bool { return m.Role == "frontend" })
	slices.SortFunc(members, func(x, y MemberInfo) int { return x.ClusterNo - y.ClusterNo })
	lists := a.fetchAll(ctx, members, CompareRequest{Attrs: attrs}, progress)
	diff := diffLists(lists)
	if len(diff) > 0 {
		// a second look, after the changes in flight have arrived
		if progress != nil {
			progress(fmt.Sprintf("%s; looking at them again in 2s (changes in flight)", map[bool]string{true: "1 entry differs", false: fmt.Sprintf("%d entries differ", len(diff))}[len(diff) == 1]))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
		again := a.fetchAll(ctx, members, CompareRequest{Attrs: attrs, UUIDs: diff}, nil)
		for i := range lists {
			for _, u := range diff {
				delete(lists[i].items, u)
				if it, ok := again[i].items[u]; ok {
					lists[i].items[u] = it
				}
			}
		}
	}
	rep := &CompareReport{Measured: time.Now().UTC()}
	seen := map[string]bool{}
	for _, l := range lists {
		rep.Members = append(rep.Members, l.m)
		for u := range l.items {
			seen[u] = true
		}
	}
	rep.Entries = len(seen)
	for _, u := range diffLists(lists) {
		d := CompareDiff{UUID: u, Kind: "version", Members: map[string]string{}}
		for _, l := range lists {
			if it, ok := l.items[u]; ok {
				d.Members[l.m.DeviceID] = it.DN + " @ " + it.CSN
			} else {
				d.Members[l.m.DeviceID], d.Kind = "absent", "missing"
			}
		}
		if d.Kind == "missing" {
			rep.Missing++
		} else {
			rep.Versions++
		}
		if len(rep.Diffs) < maxDiffs {
			rep.Diffs = append(rep.Diffs, d)
		}
	}
	rep.Equal = rep.Missing == 0 && rep.Versions == 0
	for _, m := range rep.Members {
		if m.Error != "" {
			rep.Equal = false
		}
	}
	rep.DurationSec = time.Since(start).Seconds()
	a.mu.Lock()
	a.lastCompare = rep
	a.mu.Unlock()
	level := slog.LevelInfo
	if !rep.Equal {
		level = slog.LevelWarn
	}
	a.log.Log(ctx, level, "cluster: compare", slog.Int("entries", rep.Entries), slog.Int("missing", rep.Missing), slog.Int("versions", rep.Versions))
	return rep, nil
}

func (a *Agent) fetchAll(ctx context.Context, members []MemberInfo, req CompareRequest, progress func(string)) []*memberList {
	lists := make([]*memberList, len(members))
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lists[i] = a.fetchList(ctx, m, req, progress)
			if progress != nil {
				mu.Lock()
				l := lists[i].m
				if l.Error != "" {
					progress(fmt.Sprintf("%s (Cluster No. %d): %s", l.DeviceID, l.ClusterNo, l.Error))
				} else {
					progress(fmt.Sprintf("%s (Cluster No. %d): %d entries, %d tombstones", l.DeviceID, l.ClusterNo, l.Entries, l.Tombstones))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return lists
}

// diffLists returns the entryUUIDs the members do not hold alike, sorted.
func diffLists(lists []*memberList) []string {
	seen := map[string]bool{}
	for _, l := range lists {
		if l.m.Error != "" {
			continue
		}
		for u := range l.items {
			seen[u] = true
		}
	}
	var out []string
	for u := range seen {
		var first *CompareItem
		for _, l := range lists {
			if l.m.Error != "" {
				continue
			}
			it, ok := l.items[u]
			if !ok {
				out = append(out, u)
				break
			}
			if first == nil {
				first = &it
				continue
			}
			if !strings.EqualFold(it.DN, first.DN) || it.CSN != first.CSN || it.Attrs != first.Attrs {
				out = append(out, u)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// LastCompare returns the last comparison's report (nil before the first).
func (a *Agent) LastCompare() *CompareReport {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastCompare
}
