package replication

import (
	"context"
	"errors"

	"postern/ldapstore"
	"postern/ldapstore/csn"
	"postern/ldapstore/server"
)

// maxIDSet bounds the UUIDs of one syncIdSet message (16 octets each).
const maxIDSet = 1024

// refresh runs the refresh stage (RFC 4533 §3.3) and sends its end: a Sync
// Done control for refreshOnly (§3.3.2), a refreshDelete or refreshPresent
// Sync Info for refreshAndPersist (§3.4).
func (s *session) refresh(ctx context.Context) error {
	present := len(s.since) == 0 || !covers(s.since, s.p.st.Pruned())
	if !present {
		err := s.deltaRefresh(ctx)
		switch {
		case errors.Is(err, ldapstore.ErrChangelogTrimmed):
			// pruned between the check and the read; nothing was sent
			present = true
		case err != nil:
			return err
		}
	}
	if present {
		if err := s.presentRefresh(ctx); err != nil {
			return err
		}
	}
	ck := s.cookie()
	s.log.Debug("replication: refresh done", "present", present, "cookie", string(ck))
	if s.mode == ModeRefreshOnly {
		// RFC 4533 §3.3.2: refreshDeletes TRUE says the refresh was a
		// delete phase (deleted entries were named), FALSE a present phase.
		done := SyncDone{Cookie: ck, RefreshDeletes: !present || s.deletePhase}
		return s.w.Done(ldapstore.Success, "", server.Control{OID: OIDSyncDone, Value: done.Encode()})
	}
	kind := InfoRefreshDelete
	if present && !s.deletePhase {
		kind = InfoRefreshPresent
	}
	return s.sendInfo(SyncInfo{Kind: kind, Cookie: ck, RefreshDone: true})
}

// covers reports whether since reaches, for every server ID the changelog
// was pruned for, past the pruned records.
func covers(since, pruned csn.Vector) bool {
	for _, p := range pruned {
		if !since.Covers(p) {
			return false
		}
	}
	return true
}

// deltaRefresh is the delete phase of a refresh from a cookie (RFC 4533
// §3.3.2): from the changelog, the current state of every entry changed
// after the cookie (state add or modify) and the entries deleted since
// (state delete, with the delete's CSN), in CSN order, with a cookie every
// Checkpoint records so that an interrupted refresh resumes near where it
// stopped.
func (s *session) deltaRefresh(ctx context.Context) error {
	snap := s.p.st.ContextCSN() // before reading: everything up to it is read below
	st := &stream{s: s}
	n := 0
	err := s.p.st.ChangesSince(ctx, s.since, func(ch ldapstore.Change) error {
		if err := st.change(ctx, ch); err != nil {
			return err
		}
		if n++; n%s.p.opts.Checkpoint == 0 {
			return st.checkpoint()
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range snap {
		s.cursor.Update(c)
	}
	return nil
}

// stream sends changelog records in CSN order, in the refresh stage
// (persist false) or the persist stage (persist true: every message
// carries the cookie, RFC 4533 §3.4).
type stream struct {
	s       *session
	persist bool
}

func (st *stream) change(ctx context.Context, ch ldapstore.Change) error {
	s := st.s
	defer s.cursor.Update(ch.CSN)
	if s.peer >= 0 && int(ch.CSN.SID) == s.peer && (st.persist || !s.peerOwn) {
		// the consumer made this change: never send it back (as syncprov
		// does for multi-provider); it converges by the consumer's own
		// rules. In a refresh, a consumer that said how far it holds its
		// own changes gets those it lacks (it went back in time): the
		// changelog read skips the ones its cookie covers.
		return nil
	}
	if ch.Kind == ldapstore.ChangeDelete {
		return st.delete(ch)
	}
	e, parent, err := s.p.st.GetForSync(ctx, ch.EntryUUID)
	if ldapstore.CodeOf(err) == ldapstore.NoSuchObject {
		return nil // deleted later: its delete record follows
	}
	if err != nil {
		return err
	}
	if ec, err := csn.Parse(e.First("entryCSN")); err == nil && ec.Compare(ch.CSN) > 0 {
		return nil // changed later: sent with its newest record
	}
	if !s.inScope(e) {
		return st.delete(ldapstore.Change{CSN: ch.CSN, Kind: ldapstore.ChangeDelete, EntryUUID: ch.EntryUUID, DN: e.DN})
	}
	state := StateModify
	if ch.Kind == ldapstore.ChangeAdd {
		state = StateAdd
	}
	var ck []byte
	if st.persist {
		s.cursor.Update(ch.CSN)
		ck = s.cookie()
	}
	return s.sendState(s.withParent(wire(e), parent), state, ck)
}

// delete sends a deleted entry: a SearchResultEntry with its DN and state
// delete (RFC 4533 §3.3.2 in the refresh, §3.4 in persist). Postern adds
// the delete's entryCSN (consumers that do not know it ignore attributes
// of deleted entries), so the delete keeps its own CSN on every member:
// a syncIdSet names no CSN, and a consumer would record the delete at the
// entry's last CSN, which is another change's (and its changelog slot).
func (st *stream) delete(ch ldapstore.Change) error {
	s := st.s
	var ck []byte
	if st.persist {
		s.cursor.Update(ch.CSN)
		ck = s.cookie()
	}
	e := &ldapstore.Entry{DN: ch.DN, Attributes: []ldapstore.Attribute{
		{Type: "entryUUID", Vals: []string{ch.EntryUUID}},
		{Type: "entryCSN", Vals: []string{ch.CSN.String()}},
	}}
	if e.DN == "" {
		e.DN = s.base
	}
	return s.sendState(e, StateDelete, ck)
}

// checkpoint hands the consumer the cookie of what was sent so far, as a
// newcookie Sync Info (RFC 4533 §2.5).
func (st *stream) checkpoint() error {
	return st.s.sendInfo(SyncInfo{Kind: InfoNewCookie, Cookie: st.s.cookie()})
}

// presentRefresh is the present phase (RFC 4533 §3.3.1), for an empty
// cookie or one older than the changelog: from one consistent snapshot,
// entries unchanged since the cookie are named present (syncIdSet,
// refreshDeletes FALSE), the others sent whole with state add; parents come
// before subordinates. A delete phase follows (§3.3.2: refreshPresent with
// refreshDone FALSE, then the deleted entries with state delete and the
// CSN of their delete): the tombstones this member keeps, so that a
// consumer deletes what is known deleted here whoever wrote it last. The
// consumer deletes, of the rest it holds, only what the provider's state
// vouches for (consumer_apply.go).
func (s *session) presentRefresh(ctx context.Context) error {
	snap, err := s.p.st.Snapshot(ctx, s.base)
	if ldapstore.CodeOf(err) == ldapstore.NoSuchObject {
		snap, err = &ldapstore.SyncSnapshot{Context: s.p.st.ContextCSN()}, nil
	}
	if err != nil {
		return err
	}
	var present [][16]byte
	flush := func() error {
		if len(present) == 0 {
			return nil
		}
		err := s.sendInfo(SyncInfo{Kind: InfoSyncIDSet, UUIDs: present})
		present = present[:0]
		return err
	}
	for _, it := range snap.Items {
		e, parent, err := s.p.st.GetForSync(ctx, it.EntryUUID.String())
		if ldapstore.CodeOf(err) == ldapstore.NoSuchObject {
			continue // deleted since the snapshot: persist or the next refresh says so
		}
		if err != nil {
			return err
		}
		if !s.inScope(e) {
			continue
		}
		if s.knows(e, it.CSN) {
			if present = append(present, it.EntryUUID); len(present) >= maxIDSet {
				if err := flush(); err != nil {
					return err
				}
			}
			continue
		}
		if err := s.sendState(s.withParent(wire(e), parent), StateAdd, nil); err != nil {
			return err
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if len(snap.Deleted) > 0 {
		// §3.3.1: refreshPresent with refreshDone FALSE ends the present
		// phase; the delete phase follows in the same refresh.
		if err := s.sendInfo(SyncInfo{Kind: InfoRefreshPresent}); err != nil {
			return err
		}
		s.deletePhase = true
		st := &stream{s: s}
		for _, d := range snap.Deleted {
			if err := st.delete(ldapstore.Change{CSN: d.CSN, Kind: ldapstore.ChangeDelete, EntryUUID: d.EntryUUID.String(), DN: d.DN}); err != nil {
				return err
			}
		}
	}
	for _, c := range snap.Context {
		s.cursor.Update(c)
	}
	return nil
}

// knows reports whether the consumer already holds e as it is now, so the
// present phase names it (syncIdSet) instead of sending it whole: e is
// unchanged since the consumer's cookie (snap is its CSN in the snapshot),
// or the consumer made e's current version itself. The second is the
// multi-master case of a member's first session with a peer that is
// copying from it: without it the member would get back every entry it
// has just sent. It rests on what the delta refresh and persist stage rest
// on as well (they never send a consumer its own changes): a member holds
// every change it made, since its server ID is its own (a device that
// joins again is given the base's copy first).
func (s *session) knows(e *ldapstore.Entry, snap csn.CSN) bool {
	cur := e.First("entryCSN")
	if len(s.since) > 0 && s.since.Covers(snap) && cur == snap.String() {
		return true
	}
	if s.peer < 0 || s.peer == s.p.st.ServerID() {
		return false
	}
	c, err := csn.Parse(cur)
	if err != nil || int(c.SID) != s.peer {
		return false
	}
	// a consumer that said how far it holds its own changes knows those
	// up to there; a later one of its own it has lost (restored store)
	return !s.peerOwn || s.since.Covers(c)
}

// persist is the persist stage (RFC 4533 §3.4): after each commit, every
// new changelog record, each message with its cookie. Sends block on this
// connection only, so a slow consumer slows its own stream: the store's
// changelog is the buffer, read a chunk at a time.
func (s *session) persist(ctx context.Context, notify <-chan struct{}) error {
	st := &stream{s: s, persist: true}
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-notify:
			if !ok {
				return ldapstore.Errorf(ldapstore.Unavailable, "directory is shutting down")
			}
		}
		err := s.p.st.ChangesSince(ctx, s.cursor, func(ch ldapstore.Change) error { return st.change(ctx, ch) })
		if errors.Is(err, ldapstore.ErrChangelogTrimmed) {
			// fell behind the retention: end the search; the consumer
			// reconnects and gets a present phase
			return ldapstore.Errorf(ldapstore.Busy, "consumer fell behind the changelog")
		}
		if err != nil {
			return err
		}
	}
}
