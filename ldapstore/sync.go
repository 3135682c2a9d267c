package ldapstore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"postern/ldapstore/csn"
)

// ReplChange is one change received from a replication provider (package
// replication, RFC 4533): the complete state of an entry, or its delete.
type ReplChange struct {
	// Entry is the entry's complete state, carrying its entryUUID and
	// entryCSN (an add, modify or modDN at the provider). Nil for a delete.
	Entry *Entry
	// EntryUUID and CSN name a delete when Entry is nil. A zero CSN (RFC
	// 4533 deletes carry none) means the deleted entry's last entryCSN.
	EntryUUID string
	CSN       csn.CSN
	// NotPresent marks a delete found by a present phase (RFC 4533
	// §3.3.1): the provider no longer holds the entry. It applies only
	// while the local entry still carries CSN, which its tombstone keeps.
	NotPresent bool
	// ParentUUID is the entryUUID of Entry's parent at the provider, when
	// the provider names it (a Postern provider does; slapd does not). The
	// entry is placed below that parent wherever the parent is now (a
	// rename of the parent that the provider had not seen moves the entry
	// with it, as 389-ds does with its parent unique ID); without it the
	// entry goes where its DN says.
	ParentUUID string
	// Restamp gives Entry a new CSN of this store when the rules accept it
	// but its own CSN is not newer than the context CSN for its server ID
	// (an LDIF import of an export): replication sends changes newer than
	// what a peer has seen, so the old CSN would stay on this member alone.
	Restamp bool
}

// ApplyResult counts what ApplyBatch did with a batch.
type ApplyResult struct {
	Applied   int // changes written
	Stale     int // changes older than the stored state, or of deleted entries
	Conflicts int // same-DN collisions resolved (one entry moved aside)
	LostFound int // entries placed below ou=lost+found (parent deleted)
	Glue      int // placeholder parents made for entries whose parent has not arrived yet
	Rejected  int // changes refused (schema, DN outside the suffix)
	Errors    []error
}

// maxApplyErrors bounds ApplyResult.Errors.
const maxApplyErrors = 16

func (r *ApplyResult) reject(err error) {
	r.Rejected++
	if len(r.Errors) < maxApplyErrors {
		r.Errors = append(r.Errors, err)
	}
}

var bReplCookies = []byte("replcookies")

// replReq is a ReplChange checked outside the transaction.
type replReq struct {
	ch     *ReplChange
	add    *addReq // nil for deletes
	id     uuid.UUID
	parent uuid.UUID // the provider's parent of the entry; zero: unknown
	c      csn.CSN
	err    error
	// held: the store held this state or a newer one (or the entry's
	// delete) when the batch was prepared, so add was not prepared
	held bool
}

// ApplyBatch applies changes received from a provider, in order, and
// stores cookie under cookieKey, all in one transaction: after a crash the
// consumer resumes exactly from the cookie of the last batch that
// committed. Every change keeps its own CSN and server ID (so a change
// crosses a mesh once: members that already hold it find it stale). The
// multi-master rules (DESIGN.md, Replication):
//
//   - last writer wins per entry by entryCSN;
//   - a delete beats every other change of the entry, older or newer: a
//     tombstone refuses every later state, so no delete is resurrected;
//   - the same DN taken by two entries keeps the entry with the smaller
//     entryUUID there (UUIDs are time-ordered: the first add wins, as in
//     389-ds) and moves the other aside to "entryUUID=<uuid>+<rdn>,<parent>"
//     with posternReplConflict holding the DN it wanted and a new CSN of
//     this server, so the move replicates and every member converges on it;
//   - an entry goes below its parent by the parent's identity
//     (ReplChange.ParentUUID) where the provider names it, wherever that
//     parent is here, else by its DN;
//   - an entry whose parent was deleted (a tombstone says so) goes to
//     "entryUUID=<uuid>+<rdn>,ou=lost+found,<suffix>" marked the same way,
//     and a deleted entry's subordinates move there too, flat, keeping
//     their CSNs (every member makes the same moves);
//   - an entry whose parent has not arrived yet (no entry, no tombstone:
//     a stream in CSN order sends a parent modified after its children
//     after them) is kept below a glue entry (objectClass glue, as
//     OpenLDAP's syncrepl makes) at the parent's DN, which the parent
//     replaces when it arrives; glue is local, never logged or sent;
//   - a rename (modDN) is a state with another DN: the entry moves with its
//     subtree.
//
// Changes refused by the schema are counted in the result, not fatal. An
// empty changes slice only stores the cookie.
func (s *Store) ApplyBatch(ctx context.Context, changes []ReplChange, cookieKey, cookie string) (ApplyResult, error) {
	return s.ApplySync(ctx, changes, cookieKey, cookie, nil)
}

// ApplySync is ApplyBatch that also raises the context CSN to seen in the
// same transaction: the provider's state vector from the cookie stored
// (RFC 4533 §3.5; OpenLDAP's consumer does the same with its cookie). After
// a refresh the consumer holds the provider's state up to that vector,
// including changes it never received as such because a later state or a
// full copy superseded them; without this its context CSN would stay
// behind the provider's for good, and a comparison of the two members
// would never find them equal.
func (s *Store) ApplySync(ctx context.Context, changes []ReplChange, cookieKey, cookie string, seen csn.Vector) (ApplyResult, error) {
	var res ApplyResult
	if s.closed.Load() {
		return res, ErrClosed
	}
	reqs := s.prepareRepl(changes)
	err := s.submit(ctx, true, func(w *wtx) error {
		res = ApplyResult{}
		for i := range reqs {
			r := &reqs[i]
			if r.err != nil {
				res.reject(r.err)
				continue
			}
			if err := w.replApply(r, &res); err != nil {
				var le *Error
				if errors.As(err, &le) && w.err == nil {
					res.reject(fmt.Errorf("ldapstore: apply %s: %w", r.id, err))
					continue
				}
				return err
			}
		}
		if cookieKey != "" {
			bk, err := w.tx.CreateBucketIfNotExists(bReplCookies)
			if err != nil {
				return fmt.Errorf("%w: %v", errDirty, err)
			}
			w.put(bk, []byte(cookieKey), []byte(cookie))
		}
		if len(seen) > 0 {
			s.mu.Lock()
			cur := s.ctxCSN.Clone()
			s.mu.Unlock()
			for _, c := range seen {
				if !cur.Covers(c) && w.ctx.Update(c) {
					w.changes++ // context CSN to be written (writeMeta)
				}
			}
		}
		return w.err
	})
	return res, err
}

// prepareRepl parses and schema-checks the changes, on all cores for big
// batches.
//
// A change whose entry the store already holds at the same or a newer CSN
// (or has deleted) is not prepared: it would be stale, and a provider that
// sends a consumer back its own changes (a refresh that asks for them,
// replication.session) sends many such.
func (s *Store) prepareRepl(changes []ReplChange) []replReq {
	reqs := make([]replReq, len(changes))
	held := s.heldStates(changes)
	one := func(i int) {
		ch := &changes[i]
		r := &reqs[i]
		r.ch = ch
		if ch.Entry == nil {
			id, err := uuid.Parse(ch.EntryUUID)
			if err != nil {
				r.err = Errorf(InvalidAttributeSyntax, "entryUUID %q: invalid", ch.EntryUUID)
			}
			r.id, r.c = id, ch.CSN
			return
		}
		id, err := uuid.Parse(ch.Entry.First("entryUUID"))
		if err != nil {
			r.err = Errorf(InvalidAttributeSyntax, "%s: entryUUID invalid", ch.Entry.DN)
			return
		}
		c, err := csn.Parse(ch.Entry.First("entryCSN"))
		if err != nil {
			r.err = Errorf(InvalidAttributeSyntax, "%s: entryCSN invalid", ch.Entry.DN)
			return
		}
		r.id, r.c = id, c
		if ch.ParentUUID != "" {
			if r.parent, err = uuid.Parse(ch.ParentUUID); err != nil {
				r.err = Errorf(InvalidAttributeSyntax, "%s: parent entryUUID invalid", ch.Entry.DN)
				return
			}
		}
		if held != nil && held[i] {
			r.held = true
			return
		}
		r.prepare(s)
	}
	if len(changes) < 64 {
		for i := range changes {
			one(i)
		}
		return reqs
	}
	var wg sync.WaitGroup
	n := max(1, runtime.GOMAXPROCS(0))
	for k := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := k; i < len(changes); i += n {
				one(i)
			}
		}()
	}
	wg.Wait()
	return reqs
}

// prepare schema-checks r's entry.
func (r *replReq) prepare(s *Store) {
	var err error
	if r.add, err = s.prepareAdd(r.ch.Entry, true); err != nil {
		r.err = fmt.Errorf("ldapstore: replicated entry %s: %w", r.ch.Entry.DN, err)
	}
}

// heldStates reports, for each change that carries an entry, whether the
// store holds that entry at the same or a newer CSN, or its tombstone (nil
// when it holds none of them, or could not tell).
func (s *Store) heldStates(changes []ReplChange) []bool {
	var held []bool
	s.db.View(func(tx *bolt.Tx) error {
		b := s.bucketsOf(tx)
		b.tombstones = tx.Bucket(bTombstones)
		for i := range changes {
			e := changes[i].Entry
			if e == nil {
				continue
			}
			id, err := uuid.Parse(e.First("entryUUID"))
			if err != nil {
				continue
			}
			c, err := csn.Parse(e.First("entryCSN"))
			if err != nil {
				continue
			}
			if stateHeld(b, id, c) {
				if held == nil {
					held = make([]bool, len(changes))
				}
				held[i] = true
			}
		}
		return nil
	})
	return held
}

// stateHeld reports whether b holds entry id at CSN c or newer, or its
// tombstone: a state at c would be stale.
func stateHeld(b buckets, id uuid.UUID, c csn.CSN) bool {
	if b.tombstones.Get(id[:]) != nil {
		return true
	}
	buf := b.entries.Get(id[:])
	if buf == nil {
		return false
	}
	old, err := b.decodeRecord(id[:], buf, 0)
	if err != nil {
		return false
	}
	oc, err := csn.Parse(old.entry.First("entryCSN"))
	return err == nil && oc.Compare(c) >= 0
}

// Cookie returns the cookie ApplyBatch stored under key ("" if none).
func (s *Store) Cookie(key string) (string, error) {
	if s.closed.Load() {
		return "", ErrClosed
	}
	var v string
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bReplCookies); b != nil {
			v = string(b.Get([]byte(key)))
		}
		return nil
	})
	return v, err
}

// Pruned returns, per server ID, the newest CSN pruned from the changelog
// (and tombstones): a replication cookie that does not reach these cannot
// be served from the changelog and needs a present phase (RFC 4533 §3.3.1).
func (s *Store) Pruned() csn.Vector {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pruned.Clone()
}

func (w *wtx) replApply(r *replReq, res *ApplyResult) error {
	b := w.buckets()
	if r.held {
		if stateHeld(b, r.id, r.c) {
			res.Stale++
			return nil
		}
		// gone since it was prepared (a tombstone pruned meanwhile)
		if r.prepare(w.s); r.err != nil {
			res.reject(r.err)
			return nil
		}
	}
	if r.add == nil {
		return w.replDelete(b, r, res)
	}
	if b.tombstones.Get(r.id[:]) != nil {
		res.Stale++ // a delete beats every change of the entry
		return nil
	}
	var old *record
	if buf := b.entries.Get(r.id[:]); buf != nil {
		var err error
		if old, err = b.decodeRecord(r.id[:], buf, 0); err != nil {
			return err
		}
		if oc, err := csn.Parse(old.entry.First("entryCSN")); err == nil && oc.Compare(r.c) >= 0 {
			res.Stale++
			return nil
		}
	}
	w.s.gen.Observe(r.c)
	c := r.c
	if r.ch.Restamp {
		s := w.s
		s.mu.Lock()
		covered := s.ctxCSN.Covers(c)
		s.mu.Unlock()
		if covered || w.ctx.Covers(c) {
			// accepted by the rules at its own CSN, but older than what the
			// peers have seen of its server ID: they would never be sent it
			c = s.gen.Next()
		}
	}
	return w.replPlace(b, r.id, old, r.add, r.parent, c, res)
}

// replPlace writes the state req of entry id (old is its current record,
// or nil) at CSN c, applying the placement, lost+found and conflict rules;
// hint is the provider's parent of the entry (zero: unknown).
func (w *wtx) replPlace(b buckets, id uuid.UUID, old *record, req *addReq, hint uuid.UUID, c csn.CSN, res *ApplyResult) error {
	s := w.s
	t := req.t
	e := req.e.Clone()
	e.Set("structuralObjectClass", req.structural)
	if e.First("entryCSN") != c.String() {
		e.Set("entryCSN", c.String()) // restamped (ReplChange.Restamp)
		e.Set("modifyTimestamp", genTime(c))
	}
	var parent uuid.UUID
	if !t.isSuffix(s) {
		pl, err := w.replParent(b, id, old, t, hint, res)
		if err != nil {
			return err
		}
		parent = pl.parent
		if pl.t != nil && string(pl.t.key) != string(t.key) {
			if pl.lostFound {
				// not yet placed in lost+found by the sender
				markConflict(e, e.DN)
			}
			e.DN = pl.t.dn
			t = pl.t
		}
	}
	if occ := b.dn.Get(t.key); occ != nil && string(occ) != string(id[:]) {
		var other uuid.UUID
		copy(other[:], occ)
		if isGlue, err := w.isGlue(b, other); err != nil {
			return err
		} else if isGlue {
			// the entry a glue entry stood in for (by DN: its provider
			// did not name the parent's identity) takes its place
			if err := w.glueTakeover(b, other, id); err != nil {
				return err
			}
		}
	}
	if occ := b.dn.Get(t.key); occ != nil && string(occ) != string(id[:]) {
		res.Conflicts++
		var other uuid.UUID
		copy(other[:], occ)
		incomingWins := string(id[:]) < string(other[:])
		switch {
		case t.isSuffix(s) && incomingWins:
			if err := w.suffixTakeover(b, other, id); err != nil {
				return err
			}
		case t.isSuffix(s):
			return nil // the local suffix entry keeps the name
		case incomingWins:
			if err := w.moveAside(b, other); err != nil {
				return err
			}
		default:
			nt, err := s.asideTarget(id, e.DN, "")
			if err != nil {
				return err
			}
			if b.dn.Get(nt.key) != nil {
				return Errorf(EntryAlreadyExists, "conflict entry %s already exists", nt.dn)
			}
			markConflict(e, e.DN)
			e.DN = nt.dn
			t = nt
			c = s.gen.Next()
			e.Set("entryCSN", c.String())
			e.Set("modifyTimestamp", genTime(c))
		}
	}
	kind := ChangeAdd
	if old == nil {
		w.put(b.dn, t.key, id[:])
		if !t.isSuffix(s) {
			w.put(b.children, childKey(parent, id), nil)
		}
		w.updateIndexes(b, id, nil, e)
		w.count++
	} else {
		kind = ChangeModify
		if string(t.key) != old.key {
			kind = ChangeModDN
			if err := w.moveSubtree(b, id, old, t.key, e.DN, parent); err != nil {
				return err
			}
		}
		w.updateIndexes(b, id, old.entry, e)
	}
	w.put(b.entries, id[:], w.encodeRecord(parent, t.key, id[:], e))
	w.logChange(b, c, kind, id)
	res.Applied++
	return w.err
}

// replDelete applies a replicated delete: it beats every state of the
// entry; the entry's subordinates go to lost+found.
func (w *wtx) replDelete(b buckets, r *replReq, res *ApplyResult) error {
	id, c := r.id, r.c
	if b.tombstones.Get(id[:]) != nil {
		res.Stale++
		return nil
	}
	buf := b.entries.Get(id[:])
	if buf == nil {
		if r.ch.NotPresent || c.IsZero() {
			res.Stale++
			return nil
		}
		// never seen here (added and deleted elsewhere): keep the
		// tombstone so that a late state of it stays refused
		w.s.gen.Observe(c)
		w.put(b.tombstones, id[:], encodeTombstone(c, w.s.now().Unix(), ""))
		w.logChange(b, c, ChangeDelete, id)
		res.Applied++
		return w.err
	}
	rec, err := b.decodeRecord(id[:], buf, 0)
	if err != nil {
		return err
	}
	if c.IsZero() {
		// RFC 4533 carries no CSN with a delete: keep the entry's last
		// one in the tombstone
		if c, err = csn.Parse(rec.entry.First("entryCSN")); err != nil {
			return errCorrupt
		}
	}
	if r.ch.NotPresent && rec.entry.First("entryCSN") != c.String() {
		res.Stale++ // changed here since the provider's state: keep it
		return nil
	}
	if hasChildren(b, id[:]) {
		if id == lostFoundUUID(w.s) {
			return Errorf(NotAllowedOnNonLeaf, "lost+found is not empty")
		}
		n, err := w.orphanSubtree(b, rec)
		if err != nil {
			return err
		}
		res.LostFound += n
	}
	w.s.gen.Observe(c)
	w.removeEntry(b, id, rec, c)
	res.Applied++
	return w.err
}
