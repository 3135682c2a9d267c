package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"postern/ldapstore"
	"postern/ldapstore/csn"
)

// serveControl answers one control request. A joiner (cluster key) may
// only say hello, take and release the join lock and register; members may
// do the rest.
// caller is who opened a control channel: a joiner (cluster key, with the
// key's line and why it admits nothing, if so) or a member (device key).
type caller struct {
	role, device, key, refusal string
	ip                         netip.Addr
}

func (a *Agent) serveControl(ch ssh.Channel, c caller) {
	role, device, ip := c.role, c.device, c.ip
	ctx, cancel := context.WithTimeout(a.ctx, 10*time.Minute)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ch.Close() })
	defer stop()
	m, err := ReadMessage(ch)
	if err != nil {
		a.log.Warn("cluster: bad control request", slog.String("ip", ip.String()), slog.Any("err", err))
		WriteMessage(ch, &Message{Type: msgError, Error: "malformed request"})
		return
	}
	fail := func(err error) { WriteMessage(ch, &Message{Type: msgError, Error: err.Error()}) }
	if role == roleRemoved && m.Type != msgHello {
		fail(fmt.Errorf("cluster: this device was removed from the cluster"))
		return
	}
	if role == roleFrontend && !slices.Contains(frontendMsgs, m.Type) {
		fail(fmt.Errorf("cluster: %s is not open to frontends", m.Type))
		return
	}
	if role == roleJoiner && !slices.Contains([]string{msgHello, msgLock, msgUnlock, msgJoin, msgRekey, msgCompare, msgAttach}, m.Type) {
		fail(fmt.Errorf("cluster: %s needs a member key", m.Type))
		return
	}
	if role == roleJoiner && c.refusal != "" && m.Type != msgHello && m.Type != msgUnlock {
		fail(fmt.Errorf("cluster: %s", c.refusal))
		return
	}
	switch m.Type {
	case msgHello:
		h := a.hello(ctx)
		if role == roleRemoved {
			h.Removed = fmt.Sprintf("this device's key was revoked: it was removed from cluster %s (told by %s)", h.ClusterUUID, a.cfg.DeviceID)
		}
		if role == roleFrontend {
			h.Members = a.briefs(ctx) // backend add, injection: the backends' addresses, keys and ACL
		}
		if role == roleJoiner {
			// what a joiner's pre-join check needs: why its identifier
			// admits nothing, and who is a member (names and addresses
			// must not be taken twice)
			h.Refusal = c.refusal
			h.Members = a.briefs(ctx)
		}
		WriteMessage(ch, &Message{Type: msgHello, Peer: h})
	case msgHeartbeat:
		if m.Member == nil || m.Member.DeviceID != device {
			fail(fmt.Errorf("cluster: heartbeat must carry the sender's own record"))
			return
		}
		if role == roleFrontend {
			if err := a.takeFrontendRecord(ctx, device, m.Member, m.Record); err != nil {
				fail(err)
				return
			}
		} else {
			a.takeAnnounced(ctx, device, m.Member)
		}
		h := a.hello(ctx)
		if role == roleFrontend {
			// the backends and whom they may inject on, kept fresh
			h.Members = a.briefs(ctx)
		}
		WriteMessage(ch, &Message{Type: msgHello, Peer: h})
	case msgLock:
		who := m.Device
		if role == roleMember && !m.Forwarded {
			who = device
		}
		no, err := a.acquire(ctx, who, m.Forwarded)
		if err != nil {
			fail(err)
			return
		}
		WriteMessage(ch, &Message{Type: msgOK, ClusterNo: no})
	case msgUnlock:
		if m.Failed && role == roleJoiner {
			// a join that failed after registering takes its record back
			if err := a.unregister(ctx, m.Device, m.ClusterNo, ip); err != nil {
				a.log.Warn("cluster: roll back a failed join's registration", slog.String("device", m.Device), slog.Any("err", err))
			}
		}
		no := m.ClusterNo
		if m.Failed {
			no = 0 // its number is handed out again
		}
		if err := a.release(ctx, m.Device, no, m.Forwarded); err != nil {
			fail(err)
			return
		}
		WriteMessage(ch, &Message{Type: msgOK})
	case msgJoin:
		no, err := a.register(ctx, m.Member, ip)
		if err != nil {
			fail(err)
			return
		}
		if c.key != "" {
			a.useKey(ctx, c.key)
		}
		WriteMessage(ch, &Message{Type: msgOK, ClusterNo: no, Peer: a.hello(ctx)})
	case msgDump:
		if err := a.dump(ctx, ch, device); err != nil {
			fail(err)
		}
	case msgLeave:
		if err := a.cfg.Store.Delete(ctx, memberDN(a.cfg.Store.Suffix(), device), a.cfg.RootDN); err != nil && ldapstore.CodeOf(err) != ldapstore.NoSuchObject {
			fail(err)
			return
		}
		a.log.Info("cluster: member left", slog.String("member", device))
		WriteMessage(ch, &Message{Type: msgOK})
	case msgCheck:
		if m.Check == nil {
			fail(fmt.Errorf("cluster: check without a context CSN"))
			return
		}
		ci, _, err := a.checkInfo(ctx, parseVector(m.Check.Context))
		if err != nil {
			fail(err)
			return
		}
		WriteMessage(ch, &Message{Type: msgCheck, Check: ci})
	case msgAttach:
		if err := a.registerFrontend(ctx, m.Member, ip, c.key); err != nil {
			fail(err)
			return
		}
		WriteMessage(ch, &Message{Type: msgOK, Peer: a.hello(ctx)})
	case msgDetach:
		if err := a.detachFrontend(ctx, device); err != nil {
			fail(err)
			return
		}
		WriteMessage(ch, &Message{Type: msgOK})
	case msgCall:
		if role == roleFrontend && !slices.Contains(a.cfg.FrontendOps, m.Op) {
			fail(fmt.Errorf("cluster: %s is not open to frontends", m.Op))
			return
		}
		if a.cfg.Call == nil {
			fail(fmt.Errorf("cluster: member calls are not available here"))
			return
		}
		res, err := a.localCall(ctx, m.Op, m.Arg)
		if err != nil {
			fail(err)
			return
		}
		WriteMessage(ch, &Message{Type: msgOK, Result: res})
	case msgRekey:
		if err := a.takeRekey(ctx, c, m.Member); err != nil {
			fail(err)
			return
		}
		WriteMessage(ch, &Message{Type: msgOK, Peer: a.hello(ctx)})
	case msgCompare:
		if m.Compare == nil {
			fail(fmt.Errorf("cluster: compare without a request"))
			return
		}
		if err := a.serveCompare(ctx, ch, *m.Compare); err != nil {
			fail(err)
		}
	case msgSecrets:
		a.serveSecrets(ctx, ch, c)
	case msgRemoved:
		WriteMessage(ch, &Message{Type: msgOK})
		a.log.Warn("cluster: removed from the cluster by a member; standalone now", slog.String("by", device))
		go a.becomeStandalone(a.ctx)
	default:
		fail(fmt.Errorf("cluster: unexpected %s", m.Type))
	}
}

// hello describes this member.
func (a *Agent) hello(ctx context.Context) *PeerInfo {
	loc := a.cfg.Local()
	h := &PeerInfo{DeviceID: a.cfg.DeviceID, Version: a.cfg.Version, NTPServer: loc.NTPServer,
		LDAP: a.cfg.LDAPAddr, SMTP: a.cfg.SMTPAddr, Time: time.Now().UTC().Format(time.RFC3339Nano)}
	if st := a.state(); st != nil {
		h.ClusterUUID, h.ClusterNo = st.ClusterUUID, st.ClusterNo
	}
	// the last background measurement: a hello never waits for NTP
	if n := a.ntpState(); !n.at.IsZero() {
		h.NTPMeasured = n.at.UTC().Format(time.RFC3339)
		if n.err != nil {
			h.NTPError = n.err.Error()
		} else {
			h.NTPOffsetMS = float64(n.offset) / float64(time.Millisecond)
		}
	}
	h.Entries, _ = a.cfg.Store.Count(ctx)
	for _, c := range a.cfg.Store.ContextCSN() {
		h.ContextCSN = append(h.ContextCSN, c.String())
	}
	slices.Sort(h.ContextCSN)
	return h
}

// joinLock serialises joins cluster-wide. It lives on the coordinator:
// the lowest-numbered backend its member can reach. A crashed joiner's
// lock expires after Config.LockTTL.
type joinLock struct {
	device  string
	since   time.Time
	expires time.Time
	no      int
}

// ErrBusy is the start of the answer to a join while another one runs.
var ErrBusy = fmt.Errorf("cluster: busy")

// coordinator returns the peer that decides join locks, or nil when this
// member does: the lowest Cluster No. among this member and its connected
// peers.
func (a *Agent) coordinator() *peer {
	st := a.state()
	if st == nil {
		return nil
	}
	best, bestNo := (*peer)(nil), st.ClusterNo
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range a.peers {
		p.mu.Lock()
		up := p.client != nil
		p.mu.Unlock()
		if up && p.record().ClusterNo > 0 && p.record().ClusterNo < bestNo {
			best, bestNo = p, p.record().ClusterNo
		}
	}
	return best
}

func (a *Agent) acquire(ctx context.Context, device string, forwarded bool) (int, error) {
	if !deviceIDRe.MatchString(device) {
		return 0, fmt.Errorf("cluster: lock: bad device ID %q", device)
	}
	if !forwarded {
		if c := a.coordinator(); c != nil {
			ans, err := c.call(ctx, &Message{Type: msgLock, Device: device, Forwarded: true})
			if err != nil {
				return 0, err
			}
			return ans.ClusterNo, nil
		}
	}
	members, err := readMembers(ctx, a.cfg.Store)
	if err != nil {
		return 0, err
	}
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if l := a.lock; l != nil && l.device != device && now.Before(l.expires) {
		return 0, fmt.Errorf("%w: %s is joining since %s", ErrBusy, l.device, l.since.UTC().Format(time.RFC3339))
	}
	if l := a.lock; l != nil && l.device == device && now.Before(l.expires) {
		l.expires = now.Add(a.cfg.LockTTL)
		return l.no, nil
	}
	no := a.allocated
	for _, m := range members {
		if m.DeviceID == device && m.ClusterNo > 0 {
			// a member joining again keeps its number
			a.lock = &joinLock{device: device, since: now, expires: now.Add(a.cfg.LockTTL), no: m.ClusterNo}
			return m.ClusterNo, nil
		}
		no = max(no, m.ClusterNo)
	}
	if st := a.st; st != nil {
		no = max(no, st.ClusterNo)
	}
	no++
	a.allocated = no
	a.lock = &joinLock{device: device, since: now, expires: now.Add(a.cfg.LockTTL), no: no}
	a.log.Info("cluster: join lock taken", slog.String("device", device), slog.Int("cluster_no", no))
	return no, nil
}

// release ends device's join lock. registered is the Cluster No. the
// joiner registered with, 0 when it gave up before: its number is then
// handed out again.
func (a *Agent) release(ctx context.Context, device string, registered int, forwarded bool) error {
	if !forwarded {
		if c := a.coordinator(); c != nil {
			_, err := c.call(ctx, &Message{Type: msgUnlock, Device: device, ClusterNo: registered, Forwarded: true})
			return err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lock != nil && a.lock.device == device {
		if registered == 0 && a.allocated == a.lock.no {
			a.allocated--
		}
		a.lock = nil
	}
	return nil
}

// register writes a joiner's member record (its device key authorises its
// tunnels from now on), under the join lock it holds.
func (a *Agent) register(ctx context.Context, m *MemberInfo, ip netip.Addr) (int, error) {
	if m == nil || m.DeviceKey == "" || m.Addr == "" {
		return 0, fmt.Errorf("cluster: join needs the joiner's record")
	}
	ap, _ := netip.ParseAddrPort(m.Addr)
	if ap.Addr().Unmap() != ip {
		return 0, fmt.Errorf("cluster: the joiner connects from %s but gives %s as its cluster address", ip, m.Addr)
	}
	if m.Version != a.cfg.Version {
		return 0, fmt.Errorf("cluster: firmware versions differ: %s here, %s on the joiner", a.cfg.Version, m.Version)
	}
	if other, what := takenBy(a.briefs(ctx), m.DeviceID, m.Hostname, m.Addr); other != "" {
		return 0, fmt.Errorf("cluster: %s is already member %s's: give this appliance another one", what, other)
	}
	no, err := a.acquire(ctx, m.DeviceID, false)
	if err != nil {
		return 0, err
	}
	rec := *m
	rec.ClusterNo, rec.Role, rec.LastUpdate = no, "backend", time.Now().UTC().Truncate(time.Second)
	pk, err := parseKey(rec.DeviceKey)
	if err != nil {
		return 0, fmt.Errorf("cluster: the joiner's device key: %v", err)
	}
	rec.Fingerprint = ssh.FingerprintSHA256(pk)
	if err := a.liftRevocation(ctx, rec.Fingerprint, rec.DeviceID); err != nil {
		return 0, err
	}
	rec.InjectTo, rec.BackendOf = nil, nil
	if err := writeMember(ctx, a.cfg.Store, &rec, a.cfg.RootDN); err != nil {
		return 0, err
	}
	a.log.Info("cluster: member registered", slog.String("member", rec.DeviceID), slog.Int("cluster_no", no), slog.String("addr", rec.Addr))
	a.wake()
	return no, nil
}

// dumpBatch is how many entries one dump message carries at most, and
// dumpBytes about how many bytes of values (a batch of large entries, such
// as users with certificates, ends early so that a message stays well
// within maxMsg).
const (
	dumpBatch = 500
	dumpBytes = maxMsg / 4
)

// dump streams the replicated tree, parents first, operational attributes
// included (entryUUID and entryCSN keep their values on the joiner).
//
// It holds one batch at a time, whatever the size of the tree: the store's
// subtree search walks the DN index, whose keys run from the suffix down
// (a parent's key is a prefix of its subordinates'), so entries come
// parents first, in chunks each read in a short read transaction of its
// own (a long one would hold up the writer's remap of a growing file).
// Changes made during the copy may be read or not: every one of them is
// newer than the context CSN taken before the read, which the joiner keeps
// as its own, so replication brings them again; a child renamed away from
// under its parent meanwhile arrives before its parent, and the joiner's
// store places it below a glue entry until the parent comes.
//
// Once the last batch is sent, this member's link to the joiner (device)
// starts from the copy too (Config.CopiedCookie): the joiner holds this
// member's tree as of seen and no change of its own yet, so there is
// nothing to list entry by entry in a present phase.
func (a *Agent) dump(ctx context.Context, ch ssh.Channel, device string) error {
	// the context CSN before the read: every change up to it is in what
	// follows (or superseded by it); the joiner takes it as its own
	seen := a.cfg.Store.ContextCSN()
	total, _ := a.cfg.Store.Count(ctx)
	sent := 0
	msg := &Message{Type: msgEntries}
	size := 0
	send := func(done bool) error {
		sent += len(msg.Entries)
		msg.Total, msg.Done = max(total, sent), done
		if done {
			msg.Total = sent
			msg.Context = seen.Strings()
		}
		if err := WriteMessage(ch, msg); err != nil {
			return err
		}
		if sent/releaseEvery != (sent-len(msg.Entries))/releaseEvery {
			// the read has walked the store file: let its pages go from
			// this process's resident memory (Store.ReleaseMapped)
			if err := a.cfg.Store.ReleaseMapped(); err != nil {
				a.log.Warn("cluster: dump: release the store's mapped pages", slog.Any("err", err))
			}
		}
		msg, size = &Message{Type: msgEntries, Entries: msg.Entries[:0]}, 0
		return nil
	}
	err := a.cfg.Store.Search(ctx, &ldapstore.SearchRequest{BaseDN: a.cfg.Store.Suffix(), Scope: ldapstore.ScopeSub}, func(e *ldapstore.Entry) error {
		if ldapstore.IsGlue(e) {
			return nil
		}
		if len(msg.Entries) >= dumpBatch || size >= dumpBytes {
			if err := send(false); err != nil {
				return err
			}
		}
		we := WireEntry{DN: e.DN, Attrs: make([]WireAttr, 0, len(e.Attributes))}
		size += len(e.DN)
		for _, at := range e.Attributes {
			switch strings.ToLower(at.Type) {
			case "hassubordinates", "subschemasubentry", "entrydn":
				continue
			}
			we.Attrs = append(we.Attrs, WireAttr{Name: at.Type, Values: at.Vals})
			for _, v := range at.Vals {
				size += len(at.Type) + len(v)
			}
		}
		msg.Entries = append(msg.Entries, we)
		return nil
	})
	if err != nil {
		return err
	}
	if err := send(true); err != nil {
		return err
	}
	a.seedJoinerCookie(ctx, device, seen)
	return nil
}

// seedJoinerCookie stores the cookie of this member's link to a joiner it
// has just sent its tree to, as of seen (dump).
func (a *Agent) seedJoinerCookie(ctx context.Context, device string, seen csn.Vector) {
	if a.cfg.CopiedCookie == nil {
		return
	}
	members, err := readMembers(ctx, a.cfg.Store)
	if err != nil {
		return
	}
	for _, m := range members {
		if m.DeviceID != device || m.ClusterNo <= 0 {
			continue
		}
		key, cookie := a.cfg.CopiedCookie(device, m.ClusterNo, seen)
		if _, err := a.cfg.Store.ApplySync(ctx, nil, key, cookie, nil); err != nil {
			a.log.Warn("cluster: store the cookie of the link to a joiner", slog.String("member", device), slog.Any("err", err))
		}
		return
	}
}
