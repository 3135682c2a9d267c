package replication

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"postern/ldapstore"
	"postern/ldapstore/csn"
	"postern/ldapstore/dn"
	"postern/ldapstore/server"
)

// ProviderOptions configures a Provider.
type ProviderOptions struct {
	// Replicators are DNs, besides the server's root DN, allowed to run a
	// sync search. Note that the server applies its access rules to what
	// it sends (users do not see other users' userPassword), so a complete
	// replica needs the root identity (server.ServeConn(c, rootDN) for
	// tunnels).
	Replicators []string
	// Checkpoint is how many changelog records a refresh from a cookie
	// sends between two cookies (default 500), so that an interrupted
	// refresh resumes close to where it stopped.
	Checkpoint int
	Logger     *slog.Logger
}

// Provider is the RFC 4533 provider: a server.SearchHandler for searches
// carrying the Sync Request control, as syncprov is an overlay of slapd.
type Provider struct {
	st          *ldapstore.Store
	opts        ProviderOptions
	log         *slog.Logger
	replicators map[string]bool
}

// Behind reports whether this member's store lacks a change of its own
// server ID that a peer holds (it went back in time, e.g. restored from an
// older copy), and which: until its consumers have brought it back, the
// provider serves no sync search.
func (p *Provider) Behind() (bool, csn.CSN) {
	c, lost := p.st.LostChange()
	return lost, c
}

// NewProvider returns a provider serving st.
func NewProvider(st *ldapstore.Store, opts ProviderOptions) *Provider {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Checkpoint <= 0 {
		opts.Checkpoint = 500
	}
	p := &Provider{st: st, opts: opts, log: opts.Logger, replicators: map[string]bool{}}
	for _, r := range opts.Replicators {
		if n, err := dn.Normalize(r); err == nil {
			p.replicators[n] = true
		}
	}
	return p
}

// Register routes srv's sync searches to p.
func (p *Provider) Register(srv *server.Server) { srv.HandleSearchControl(OIDSyncRequest, p) }

// errAccess is what a client that is neither the root DN nor a replicator gets.
var errAccess = ldapstore.Errorf(ldapstore.InsufficientAccessRights, "only the root DN or a replicator may run a sync search")

func (p *Provider) allowed(req *server.SearchRequest) bool {
	if req.Root || req.Restricted {
		// a restricted session (a cluster frontend's cache) syncs what it
		// may see: the server's access rules apply to every entry sent
		return true
	}
	n, err := dn.Normalize(req.BindDN)
	return err == nil && p.replicators[n]
}

// session is one sync search being served.
type session struct {
	p    *Provider
	req  *server.SearchRequest
	w    server.SearchWriter
	mode Mode
	rid  int // echoed in our cookies (-1: none)
	peer int // the consumer's server ID from its cookie (-1: unknown)
	// peerOwn is whether the cookie states how far the consumer holds its
	// own changes (since[peer], its context CSN for its server ID): a
	// Postern consumer does, so a member restored from an older copy gets
	// its own later changes back in the refresh.
	peerOwn bool
	// parents is whether the consumer asked for posternParentUUID by name:
	// each entry then names its parent's entryUUID (ldapstore.ReplChange).
	parents bool
	// deletePhase is whether a present phase was followed by a delete
	// phase (its end is then refreshDelete / refreshDeletes TRUE).
	deletePhase bool
	since       csn.Vector
	cursor      csn.Vector // what has been sent so far, per server ID
	base        string
	log         *slog.Logger
}

// ServeSearch serves one sync search (RFC 4533 §3).
func (p *Provider) ServeSearch(ctx context.Context, req *server.SearchRequest, w server.SearchWriter) error {
	if !p.allowed(req) {
		return errAccess
	}
	var ctl *server.Control
	for i := range req.Controls {
		if req.Controls[i].OID == OIDSyncRequest {
			ctl = &req.Controls[i]
		}
	}
	if ctl == nil {
		return ldapstore.Errorf(ldapstore.ProtocolError, "no sync request control")
	}
	sr, err := DecodeSyncRequest(ctl.Value)
	if err != nil {
		return ldapstore.Errorf(ldapstore.ProtocolError, "sync request control: %v", err)
	}
	ck, err := ParseCookie(string(sr.Cookie))
	if err != nil {
		// An unreadable cookie gets a full refresh: the consumer converges
		// without manual steps (never e-syncRefreshRequired, RFC 4533 §3.3).
		p.log.Info("replication: unreadable cookie, full refresh", "cookie", string(sr.Cookie), "err", err)
		ck = Cookie{RID: -1, SID: -1, CSNs: csn.Vector{}}
	}
	base := req.BaseDN
	if base == "" {
		base = p.st.Suffix()
	}
	// A consumer that has seen newer changes of this member's own server
	// ID than this member holds means this member's store went back in
	// time (restored from an older copy): until its consumers have got its
	// own changes back from its peers, it serves nobody, above all no
	// present phase that would delete what it has lost on its peers.
	if seen, ok := ck.CSNs[uint16(p.st.ServerID())]; ok && p.st.NoteLostChange(seen) {
		p.log.Warn("replication: a consumer has seen a change of this member that its directory lacks (restored from an older copy?)", "csn", seen.String())
	}
	if lost, c := p.Behind(); lost {
		return ldapstore.Errorf(ldapstore.Busy, "this member's directory lacks its own change %s that its peers hold (restored from an older copy): it serves no sync search until replication has brought it back", c)
	}
	s := &session{
		p: p, req: req, w: w, mode: sr.Mode, rid: ck.RID, peer: ck.SID,
		since: ck.CSNs, cursor: ck.CSNs.Clone(), base: base,
		log: p.log.With("rid", ck.RID, "peer_sid", ck.SID),
	}
	if s.peer >= 0 {
		_, s.peerOwn = ck.CSNs[uint16(s.peer)]
	}
	for _, a := range req.Attributes {
		if strings.EqualFold(a, AttrParentUUID) {
			s.parents = true
		}
	}
	if sr.ReloadHint {
		s.since = csn.Vector{} // RFC 4533 §2.2: the client asks for a full reload
	}
	// Subscribe before reading, so no commit falls between refresh and
	// persist; commits of nothing but the consumer's own changes (the
	// stream it sends us) do not wake the session: they are never sent back.
	except := s.peer
	if except == p.st.ServerID() {
		except = -1
	}
	notify, stop := p.st.NotifyExcept(except)
	defer stop()
	if err := s.refresh(ctx); err != nil {
		return s.failed(ctx, err)
	}
	if sr.Mode == ModeRefreshOnly {
		return nil
	}
	return s.failed(ctx, s.persist(ctx, notify))
}

// failed maps a session's end to what the server sends.
func (s *session) failed(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil || errors.Is(err, server.ErrSearchDone) {
		return nil
	}
	var le *ldapstore.Error
	if errors.As(err, &le) {
		return le
	}
	s.log.Warn("replication: sync search failed", "err", err)
	return ldapstore.Errorf(ldapstore.Other, "sync search failed")
}

// cookie returns the cookie for the current cursor (RFC 4533 §2.1.3, in
// OpenLDAP's form: the consumer's rid, our sid, our CSN vector).
func (s *session) cookie() []byte {
	return []byte(Cookie{RID: s.rid, SID: s.p.st.ServerID(), CSNs: s.cursor}.String())
}

// inScope reports whether the entry named d is in the search's scope.
func (s *session) inScope(e *ldapstore.Entry) bool {
	d, err := dn.Parse(e.DN)
	if err != nil {
		return false
	}
	b, err := dn.Parse(s.base)
	if err != nil {
		return false
	}
	if !sameOrBelow(s.p.st, d, b) {
		return false
	}
	switch s.req.Scope {
	case ldapstore.ScopeBase:
		if len(d) != len(b) {
			return false
		}
	case ldapstore.ScopeOne:
		if len(d) != len(b)+1 {
			return false
		}
	}
	return s.req.Filter == nil || s.req.Filter.MatchesAccess(s.p.st.Schema(), e, s.req.Access)
}

func sameOrBelow(st *ldapstore.Store, d, base dn.DN) bool {
	if len(d) < len(base) {
		return false
	}
	x, err1 := st.Schema().NormalizeParsedDN(d[len(d)-len(base):])
	y, err2 := st.Schema().NormalizeParsedDN(base)
	return err1 == nil && err2 == nil && strings.Join(x, ",") == strings.Join(y, ",")
}

// wire strips what the store computes on read (hasSubordinates,
// subschemaSubentry): a replica computes its own.
func wire(e *ldapstore.Entry) *ldapstore.Entry {
	out := e.Attributes[:0:0]
	for _, a := range e.Attributes {
		switch strings.ToLower(a.Type) {
		case "hassubordinates", "subschemasubentry", "entrydn":
			continue
		}
		out = append(out, a)
	}
	return &ldapstore.Entry{DN: e.DN, Attributes: out}
}

func uuidBytes(s string) ([16]byte, error) {
	var u [16]byte
	h := strings.ReplaceAll(s, "-", "")
	if len(h) != 32 {
		return u, fmt.Errorf("replication: entryUUID %q", s)
	}
	for i := range 16 {
		hi, lo := unhex(h[2*i]), unhex(h[2*i+1])
		if hi < 0 || lo < 0 {
			return u, fmt.Errorf("replication: entryUUID %q", s)
		}
		u[i] = byte(hi<<4 | lo)
	}
	return u, nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// AttrParentUUID is the attribute a Postern consumer asks for by name to
// learn each entry's parent entryUUID (ldapstore.ReplChange.ParentUUID).
const AttrParentUUID = "posternParentUUID"

// withParent adds posternParentUUID to e when the consumer asked for it.
func (s *session) withParent(e *ldapstore.Entry, parent string) *ldapstore.Entry {
	if s.parents && parent != "" {
		e.Attributes = append(e.Attributes, ldapstore.Attribute{Type: AttrParentUUID, Vals: []string{parent}})
	}
	return e
}

// sendState sends e with a Sync State control (RFC 4533 §2.3, §3.3.1).
func (s *session) sendState(e *ldapstore.Entry, st State, cookie []byte) error {
	u, err := uuidBytes(e.First("entryUUID"))
	if err != nil {
		return err
	}
	v := SyncState{State: st, EntryUUID: u, Cookie: cookie}
	return s.w.SendEntry(e, server.Control{OID: OIDSyncState, Value: v.Encode()})
}

func (s *session) sendInfo(i SyncInfo) error {
	return s.w.SendIntermediate(OIDSyncInfo, i.Encode())
}
