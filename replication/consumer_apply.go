package replication

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"

	"postern/ldapstore"
	"postern/ldapstore/csn"
)

// applier turns a sync search's responses into ldapstore.ApplyBatch calls.
type applier struct {
	c      *Consumer
	batch  []ldapstore.ReplChange
	cookie string // the provider's latest cookie, stored with the next batch
	dirty  bool   // cookie changed since the last flush

	// present holds the entryUUIDs named during the refresh (RFC 4533
	// §3.3.1): after a present phase, what is not in it is deleted.
	present         map[uuid.UUID]struct{}
	persisted       bool // the refresh stage is over
	refreshOnlyDone bool // a Sync Done control ended the search
	mustFlush       bool
	unknown         map[string]bool // attribute types not in our schema, logged once
	provider        providerInfo    // the provider's Root DSE at the session's start
	ownBack         int             // changes of our own server ID received in the refresh (a store gone back in time)
}

func newApplier(c *Consumer, cookie string) *applier {
	return &applier{c: c, cookie: cookie, present: map[uuid.UUID]struct{}{}, unknown: map[string]bool{}}
}

func (a *applier) setCookie(b []byte) {
	if b != nil && string(b) != a.cookie {
		a.cookie, a.dirty = string(b), true
	}
}

func (a *applier) handle(ctx context.Context, r result) error {
	if r.err != nil {
		return fmt.Errorf("replication: sync search: %w", r.err)
	}
	if r.entry != nil {
		return a.entry(r.entry, r.ctrls)
	}
	for _, ctl := range r.ctrls {
		switch v := ctl.(type) {
		case *ldap.ControlSyncInfo:
			if err := a.info(ctx, v); err != nil {
				return err
			}
		case *ldap.ControlSyncDone:
			// RFC 4533 §3.3.2: the end of a refreshOnly search;
			// refreshDeletes FALSE means a present phase.
			a.setCookie(v.Cookie)
			if !v.RefreshDeletes {
				if err := a.presentDone(ctx); err != nil {
					return err
				}
			}
			a.endRefresh()
			a.refreshOnlyDone = true
		}
	}
	return nil
}

func (a *applier) endRefresh() {
	if !a.persisted {
		a.c.log.Info("replication: refresh done, persisting", "cookie", a.cookie)
	}
	a.persisted, a.mustFlush = true, true
	a.present = map[uuid.UUID]struct{}{}
	a.c.update(func(s *LinkStatus) { s.Phase = PhasePersist })
}

// info handles a Sync Info message (RFC 4533 §2.5).
func (a *applier) info(ctx context.Context, v *ldap.ControlSyncInfo) error {
	switch v.Value {
	case ldap.SyncInfoNewcookie:
		a.setCookie(v.NewCookie.Cookie)
	case ldap.SyncInfoRefreshDelete:
		// §3.3.2: the delete phase is over (deletes came as syncIdSets).
		a.setCookie(v.RefreshDelete.Cookie)
		if v.RefreshDelete.RefreshDone {
			a.endRefresh()
		}
	case ldap.SyncInfoRefreshPresent:
		// §3.3.1: the present phase is over: delete what was not named.
		a.setCookie(v.RefreshPresent.Cookie)
		if err := a.presentDone(ctx); err != nil {
			return err
		}
		if v.RefreshPresent.RefreshDone {
			a.endRefresh()
		}
	case ldap.SyncInfoSyncIdSet:
		set := v.SyncIdSet
		for _, u := range set.SyncUUIDs {
			if set.RefreshDeletes {
				a.batch = append(a.batch, ldapstore.ReplChange{EntryUUID: u.String()})
			} else {
				a.present[u] = struct{}{}
			}
		}
		a.setCookie(set.Cookie)
	}
	return nil
}

// entry handles a SearchResultEntry with its Sync State control (§2.3).
func (a *applier) entry(e *ldap.Entry, ctrls []ldap.Control) error {
	var st *ldap.ControlSyncState
	for _, c := range ctrls {
		if s, ok := c.(*ldap.ControlSyncState); ok {
			st = s
		}
	}
	if st == nil {
		a.c.log.Warn("replication: entry without sync state control, ignored", "dn", e.DN)
		return nil
	}
	switch st.State {
	case ldap.SyncStatePresent:
		a.present[st.EntryUUID] = struct{}{}
	case ldap.SyncStateAdd, ldap.SyncStateModify:
		a.present[st.EntryUUID] = struct{}{}
		ch := ldapstore.ReplChange{Entry: a.convert(e, st.EntryUUID), ParentUUID: e.GetAttributeValue(AttrParentUUID)}
		a.own(ch.Entry.First("entryCSN"))
		a.batch = append(a.batch, ch)
	case ldap.SyncStateDelete:
		ch := ldapstore.ReplChange{EntryUUID: st.EntryUUID.String()}
		if c, err := csn.Parse(e.GetAttributeValue("entryCSN")); err == nil {
			ch.CSN = c // Postern providers name the delete's CSN
			a.own(ch.CSN.String())
		}
		a.batch = append(a.batch, ch)
	}
	a.setCookie(st.Cookie)
	return nil
}

// own counts a change of our own server ID received in the refresh: this
// store had gone back in time and gets its own changes back.
func (a *applier) own(v string) {
	st := a.c.cfg.Store
	if c, err := csn.Parse(v); err == nil && int(c.SID) == st.ServerID() && !a.persisted && !st.HasChange(c) {
		if a.ownBack == 0 {
			a.c.log.Warn("replication: the provider sends back changes this member made that its store no longer holds (restored from an older copy?); applying them", "csn", v)
		}
		a.ownBack++
	}
}

// computed are operational attributes a provider computes on read; the
// local store computes its own.
var computed = map[string]bool{
	"hassubordinates": true, "subschemasubentry": true, "entrydn": true, "contextcsn": true,
	"numsubordinates": true, "posternparentuuid": true,
}

// convert makes a store entry of a replicated one, dropping computed
// attributes and types our schema does not know (logged once each).
func (a *applier) convert(e *ldap.Entry, id uuid.UUID) *ldapstore.Entry {
	sch := a.c.cfg.Store.Schema()
	out := &ldapstore.Entry{DN: e.DN, Attributes: make([]ldapstore.Attribute, 0, len(e.Attributes))}
	hasUUID := false
	for _, at := range e.Attributes {
		name := strings.ToLower(at.Name)
		if computed[name] {
			continue
		}
		if sch.Attr(at.Name) == nil {
			if !a.unknown[name] {
				a.unknown[name] = true
				a.c.log.Warn("replication: attribute type unknown here, not replicated", "type", at.Name)
			}
			continue
		}
		if name == "entryuuid" {
			hasUUID = true
		}
		vals := make([]string, len(at.ByteValues))
		for i, b := range at.ByteValues {
			vals[i] = string(b)
		}
		out.Attributes = append(out.Attributes, ldapstore.Attribute{Type: at.Name, Vals: vals})
	}
	if !hasUUID {
		out.Attributes = append(out.Attributes, ldapstore.Attribute{Type: "entryUUID", Vals: []string{id.String()}})
	}
	return out
}

// presentDone deletes, after a present phase, the local entries the
// provider did not name (RFC 4533 §3.3.1), with multi-master care: an
// entry the provider does not hold may simply not have reached it yet
// (its context CSN for other server IDs is a high-water mark, not a
// complete set), so absence alone deletes nothing that a Postern provider
// does not vouch for:
//
//   - what it deleted within its retention it names in the delete phase
//     that follows (its tombstones, with their CSNs): applied as deletes,
//     whoever wrote the entry last;
//   - an entry it does not hold whose entryCSN is covered by both its
//     cookie and its pruning horizon (posternPrunedCSN) was deleted there
//     longer ago than the retention: deleted here (a member that comes
//     back after the retention keeps no deleted entry);
//   - anything newer stays, and reaches the provider by its own stream.
//
// Other providers (slapd): a cookie without sid (a single provider)
// vouches for every server ID it lists; with a sid, only for the entries
// the provider itself last wrote. Nothing is deleted when the provider
// holds older changes of its own than this member has seen (it was
// restored from an older copy): what it lacks is not deleted.
func (a *applier) presentDone(ctx context.Context) error {
	if err := a.flush(ctx); err != nil {
		return err
	}
	ck, err := ParseCookie(a.cookie)
	if err != nil {
		return fmt.Errorf("replication: present phase: %w", err)
	}
	st := a.c.cfg.Store
	if ck.SID >= 0 {
		sid := uint16(ck.SID)
		if mine, theirs := st.ContextCSN()[sid], ck.CSNs[sid]; mine.Compare(theirs) > 0 {
			a.c.log.Warn("replication: the provider holds older changes of its own than this member has (restored from an older copy?): its present phase deletes nothing here",
				"provider_csn", theirs.String(), "seen_here", mine.String())
			a.present = map[uuid.UUID]struct{}{}
			return nil
		}
	}
	snap, err := st.Snapshot(ctx, a.c.cfg.BaseDN)
	if ldapstore.CodeOf(err) == ldapstore.NoSuchObject {
		snap, err = &ldapstore.SyncSnapshot{}, nil
	}
	if err != nil {
		return err
	}
	for i := len(snap.Items) - 1; i >= 0; i-- { // subordinates first
		it := snap.Items[i]
		if _, ok := a.present[it.EntryUUID]; ok || !ck.CSNs.Covers(it.CSN) {
			continue
		}
		switch {
		case a.provider.postern:
			if !a.provider.pruned.Covers(it.CSN) {
				continue
			}
		case ck.SID >= 0 && int(it.CSN.SID) != ck.SID:
			continue
		}
		a.batch = append(a.batch, ldapstore.ReplChange{EntryUUID: it.EntryUUID.String(), CSN: it.CSN, NotPresent: true})
	}
	if n := len(a.batch); n > 0 {
		a.c.log.Info("replication: present phase deletes entries the provider no longer holds", "entries", n)
	}
	a.present = map[uuid.UUID]struct{}{}
	return a.flush(ctx)
}

// flush applies the gathered changes and the latest cookie in one
// transaction (chunks of BatchSize; the cookie goes with the last).
func (a *applier) flush(ctx context.Context) error {
	a.mustFlush = false
	if len(a.batch) == 0 && !a.dirty {
		return nil
	}
	st := a.c.cfg.Store
	for len(a.batch) > 0 || a.dirty {
		n := min(len(a.batch), a.c.cfg.BatchSize)
		chunk := a.batch[:n]
		key, ck := "", ""
		var seen csn.Vector
		if n == len(a.batch) {
			key, ck = a.c.key, a.cookie
			if c, err := ParseCookie(ck); err == nil {
				// our own server ID stays what our changelog says
				seen = c.CSNs.Clone()
				delete(seen, uint16(st.ServerID()))
			}
		}
		res, err := st.ApplySync(ctx, chunk, key, ck, seen)
		if err != nil {
			return fmt.Errorf("replication: apply: %w", err)
		}
		for _, e := range res.Errors {
			a.c.log.Warn("replication: change refused", "err", e)
		}
		a.c.record(chunk, res)
		a.batch = a.batch[n:]
		if key != "" {
			a.dirty = false
		}
	}
	a.batch = a.batch[:0]
	a.c.update(func(s *LinkStatus) {
		s.Cookie = a.cookie
		if n, err := st.Count(ctx); err == nil {
			s.LocalEntries = n
		}
	})
	return nil
}

// record updates the status and metrics after a batch.
func (c *Consumer) record(chunk []ldapstore.ReplChange, res ldapstore.ApplyResult) {
	var newest csn.CSN
	for _, ch := range chunk {
		x := ch.CSN
		if ch.Entry != nil {
			x, _ = csn.Parse(ch.Entry.First("entryCSN"))
		}
		if x.Compare(newest) > 0 {
			newest = x
		}
	}
	now := time.Now()
	c.metrics.applied.Add(float64(res.Applied))
	c.metrics.conflicts.Add(float64(res.Conflicts + res.LostFound))
	c.update(func(s *LinkStatus) {
		s.Applied += int64(res.Applied)
		s.Stale += int64(res.Stale)
		s.Conflicts += int64(res.Conflicts)
		s.LostFound += int64(res.LostFound)
		s.Rejected += int64(res.Rejected)
		if res.Applied > 0 && !newest.IsZero() {
			s.Lag = max(0, now.Sub(newest.Time))
			s.LastApplied = now
			c.metrics.lag.Set(s.Lag.Seconds())
		}
	})
}
