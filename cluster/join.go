package cluster

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/ssh"

	"postern/ldapstore"
	"postern/ldapstore/csn"
)

// PrepareRequest is `postern cluster prepare`.
type PrepareRequest struct {
	Password string   `json:"password"`
	Self     string   `json:"self,omitempty"`  // this member's cluster address; default the cluster listener's
	Allow    []string `json:"allow,omitempty"` // IPs that may use the identifier (Protect cluster identifier)
	// Valid is how long the identifier admits joins (default DefaultValid);
	// Once makes it admit one join or attach only.
	Valid time.Duration `json:"valid,omitempty"`
	Once  bool          `json:"once,omitempty"`
}

// Prepare writes a cluster identifier. The first prepare makes this
// appliance a cluster of one: backend Cluster No. 1. Every prepare adds a
// new cluster key (one per identifier handed out; removing a member drops
// them all).
func (a *Agent) Prepare(ctx context.Context, req PrepareRequest) ([]byte, error) {
	a.joinMu.Lock()
	defer a.joinMu.Unlock()
	var allow []string
	for _, s := range req.Allow {
		ip, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("cluster: --allow %q is not an IP address", s)
		}
		allow = append(allow, ip.String())
	}
	signer, key, err := newClusterKey(req.Password)
	if err != nil {
		return nil, err
	}
	if req.Valid < 0 {
		return nil, fmt.Errorf("cluster: --valid %s: want a positive duration", req.Valid)
	}
	if req.Valid == 0 {
		req.Valid = DefaultValid
	}
	created := time.Now().UTC().Truncate(time.Second)
	meta := keyMeta{Expires: created.Add(req.Valid), Once: req.Once}
	pub := keyLine(signer.PublicKey(), meta)
	st := a.state()
	if st == nil {
		self := req.Self
		if self == "" {
			self = a.listenAddr()
		}
		ap, err := netip.ParseAddrPort(self)
		if err != nil || ap.Addr().IsUnspecified() || ap.Port() == 0 {
			return nil, fmt.Errorf("cluster: this member's cluster address %q must be IP:PORT (give --self)", self)
		}
		if err := a.cfg.Store.SetServerID(1); err != nil {
			return nil, err
		}
		ce := &clusterEntry{UUID: uuid.NewString(), Keys: []string{pub}, Protect: true, AllowedIPs: allow}
		if err := writeCluster(ctx, a.cfg.Store, ce, a.cfg.RootDN); err != nil {
			return nil, err
		}
		st = &state{ClusterUUID: ce.UUID, ClusterNo: 1, Addr: ap.String(), Joined: time.Now().UTC()}
		self1 := a.selfRecord(ctx, st)
		if err := writeMember(ctx, a.cfg.Store, &self1, a.cfg.RootDN); err != nil {
			return nil, err
		}
		if err := a.setState(st); err != nil {
			return nil, err
		}
		a.log.Info("cluster: cluster made; this device is Cluster No. 1", slog.String("cluster", ce.UUID))
	} else {
		ce, err := readCluster(ctx, a.cfg.Store)
		if err != nil {
			return nil, err
		}
		// keys that expired or were used up a week ago are of no use any
		// more, not even to say why they admit nothing
		ce.Keys = slices.DeleteFunc(ce.Keys, func(k string) bool {
			_, m, err := parseKeyLine(k)
			return err == nil && (!m.Expires.IsZero() && created.Sub(m.Expires) > 7*24*time.Hour ||
				!m.Used.IsZero() && created.Sub(m.Used) > 7*24*time.Hour)
		})
		ce.Keys = append(ce.Keys, pub)
		for _, ip := range allow {
			if !containsFold(ce.AllowedIPs, ip) {
				ce.AllowedIPs = append(ce.AllowedIPs, ip)
			}
		}
		if err := writeCluster(ctx, a.cfg.Store, ce, a.cfg.RootDN); err != nil {
			return nil, err
		}
	}
	a.wake()
	id := &Identifier{ClusterUUID: st.ClusterUUID, Member: st.Addr, HostKey: a.key().PublicKey(), Created: created,
		Expires: meta.Expires, Once: meta.Once, Key: key}
	return id.Marshal(), nil
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

func (a *Agent) listenAddr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lis == nil {
		return ""
	}
	return a.lis.Addr().String()
}

// JoinRequest is `postern cluster join` and `postern cluster check`.
type JoinRequest struct {
	ID       []byte `json:"id"`       // clusterid.txt
	Password string `json:"password"` // cluster password
	Member   string `json:"member"`   // a member's cluster address; default the identifier's
	Self     string `json:"self"`     // this device's cluster address
}

// Problem is one failed pre-join check and what to do about it.
type Problem struct {
	What string `json:"what"`
	Fix  string `json:"fix"`
}

// CheckReport is the result of the pre-join checks.
type CheckReport struct {
	OK       []string  `json:"ok"`
	Problems []Problem `json:"problems"`
}

// CheckError is a join (or a frontend's attach) refused by its checks:
// every problem at once.
type CheckError struct {
	Problems []Problem
	Op       string // "join" (default) or "attach"
}

func (e *CheckError) Error() string {
	var b strings.Builder
	op := e.Op
	if op == "" {
		op = "join"
	}
	fmt.Fprintf(&b, "cluster: %s refused (%d problem(s)):", op, len(e.Problems))
	for _, p := range e.Problems {
		fmt.Fprintf(&b, "\n  - %s\n    fix: %s", p.What, p.Fix)
	}
	return b.String()
}

// checked is what a successful check leaves for the join.
type checked struct {
	id     *Identifier
	client *ssh.Client // authenticated with the cluster key
	member string
	self   netip.AddrPort
}

// Check runs the pre-join checks without joining.
func (a *Agent) Check(ctx context.Context, req JoinRequest) CheckReport {
	rep, c := a.check(ctx, req)
	if c != nil && c.client != nil {
		c.client.Close()
	}
	return rep
}

func (a *Agent) check(ctx context.Context, req JoinRequest) (CheckReport, *checked) {
	var rep CheckReport
	ok := func(format string, args ...any) { rep.OK = append(rep.OK, fmt.Sprintf(format, args...)) }
	bad := func(what, fix string) { rep.Problems = append(rep.Problems, Problem{What: what, Fix: fix}) }
	c := &checked{}

	if st := a.state(); st != nil {
		bad(fmt.Sprintf("this device is already Cluster No. %d of cluster %s", st.ClusterNo, st.ClusterUUID), "run `postern cluster leave` first")
	}
	id, err := ParseIdentifier(req.ID)
	if err != nil {
		bad(err.Error(), "use the clusterid.txt written by `postern cluster prepare` on a member, unchanged")
		return rep, nil
	}
	c.id = id
	switch {
	case !id.Expires.IsZero() && time.Now().After(id.Expires):
		bad(fmt.Sprintf("this cluster identifier expired at %s", id.Expires.UTC().Format(time.RFC3339)),
			"make a new one on a member with `postern cluster prepare` (--valid sets how long it is valid)")
	case !id.Expires.IsZero():
		ok("cluster identifier of cluster %s, made on %s, valid until %s%s", id.ClusterUUID, id.Member, id.Expires.UTC().Format(time.RFC3339), map[bool]string{true: " for one join", false: ""}[id.Once])
	default:
		ok("cluster identifier of cluster %s, made on %s", id.ClusterUUID, id.Member)
	}
	signer, err := id.Signer(req.Password)
	switch {
	case errors.Is(err, ErrWrongPassword):
		bad("wrong cluster password", "enter the password given to `postern cluster prepare` on "+id.Member)
	case err != nil:
		bad(err.Error(), "make a new clusterid.txt with `postern cluster prepare`")
	default:
		ok("cluster password")
	}
	self, err := netip.ParseAddrPort(req.Self)
	if err != nil || self.Port() == 0 {
		bad(fmt.Sprintf("--self %q is not IP:PORT", req.Self), "give this device's cluster IP and SSH port, e.g. --self 192.0.2.11:22")
	} else if l, err := net.Listen("tcp", net.JoinHostPort(self.Addr().String(), "0")); err != nil {
		bad(fmt.Sprintf("--self %s is not an address of this machine", self.Addr()), "give an IP address configured on this machine (its physical address, not an alias)")
	} else {
		l.Close()
		if la, err := netip.ParseAddrPort(a.listenAddr()); err == nil && (la.Port() != self.Port() || !la.Addr().IsUnspecified() && la.Addr() != self.Addr()) {
			bad(fmt.Sprintf("--self %s: this appliance's cluster SSH listens on %s", self, la), fmt.Sprintf("give --self %s, or restart `postern serve` with --cluster %s", la, self))
		} else {
			c.self = self
			ok("--self %s is this machine's cluster address", self)
		}
	}
	loc := a.cfg.Local()
	if loc.NTPServer == "" {
		bad("NTP is not enabled on this device", "postern system set --ntp-server SERVER (the same server as on the member)")
	} else if off, err := a.measureNTP(loc.NTPServer); err != nil {
		bad("this device cannot reach its NTP server: "+err.Error(), "check the NTP server with `postern system set --ntp-server`")
	} else if absDur(off) > a.cfg.MaxOffset {
		bad(fmt.Sprintf("clock offset of this device against NTP server %s is %s (at most %s allowed)", loc.NTPServer, off.Round(time.Millisecond), a.cfg.MaxOffset),
			"synchronise this machine's clock with "+loc.NTPServer)
	} else {
		ok("NTP server %s, clock offset %s", loc.NTPServer, off.Round(time.Millisecond))
	}

	member := req.Member
	if member == "" {
		member = id.Member
	}
	c.member = member
	keyOK := signer != nil
	if signer == nil {
		// still check reachability and the host key with a throwaway key
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		signer, _ = ssh.NewSignerFromKey(priv)
	}
	d := net.Dialer{Timeout: handshakeTimeout}
	if c.self.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: c.self.Addr().AsSlice()}
	}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	cl, err := dialSSH(dctx, d, member, id.HostKey, signer)
	var de *DialError
	switch {
	case err == nil:
		ok("member %s reached, host key %s verified", member, ssh.FingerprintSHA256(id.HostKey))
	case errors.As(err, &de) && de.Kind == "host key mismatch":
		bad(fmt.Sprintf("host key mismatch at %s: %v", member, de.Err),
			fmt.Sprintf("this clusterid.txt was made on %s: give --member %s, or make a clusterid.txt on %s with `postern cluster prepare`", id.Member, id.Member, member))
		return rep, c
	case errors.As(err, &de) && de.Kind == "refused" && keyOK && !c.self.IsValid():
		// dialled from the machine's default address: what the member
		// says of that address (Protect cluster identifier) is no advice
		bad(fmt.Sprintf("member %s refused this device's connection, made from the machine's default address because --self is not usable", member),
			"fix --self first (see above), then check again")
		return rep, c
	case errors.As(err, &de) && de.Kind == "refused":
		if keyOK {
			bad(fmt.Sprintf("member %s refused the cluster key: %v", member, de.Err),
				"if the message names a command, run it on the member; otherwise the cluster key was rotated (a member was removed): make a new clusterid.txt with `postern cluster prepare`")
		} else {
			ok("member %s reached, host key %s verified", member, ssh.FingerprintSHA256(id.HostKey))
		}
		return rep, c
	default:
		bad(fmt.Sprintf("member %s unreachable: %v", member, err),
			fmt.Sprintf("check --member (IP:PORT of a member's cluster SSH) and that `postern serve --cluster %s` runs there", member))
		return rep, c
	}
	if !keyOK {
		cl.Close()
		return rep, c
	}
	c.client = cl
	ans, err := callClient(dctx, cl, &Message{Type: msgHello})
	if err != nil || ans.Peer == nil {
		bad(fmt.Sprintf("member %s does not answer: %v", member, err), "check that the member runs the same Postern firmware")
		return rep, c
	}
	h := ans.Peer
	if h.Refusal != "" {
		bad(h.Refusal, "make a new clusterid.txt on a member with `postern cluster prepare`")
	}
	if other, what := takenBy(h.Members, a.cfg.DeviceID, loc.Hostname, c.self.String()); other != "" {
		fix := "give this appliance another hostname: postern system set --hostname NAME"
		if strings.HasPrefix(what, "cluster address") {
			fix = "give this appliance its own cluster address (--self and `postern serve --cluster`)"
		}
		bad(fmt.Sprintf("%s is already member %s's", what, other), fix)
	}
	for _, m := range h.Members {
		if m.DeviceID == a.cfg.DeviceID {
			ok("this device is still listed as a member (%s): the join takes its record over", m.Addr)
		}
	}
	if h.ClusterUUID != id.ClusterUUID {
		bad(fmt.Sprintf("member %s belongs to cluster %q, the identifier to %s", member, h.ClusterUUID, id.ClusterUUID), "make a new clusterid.txt on the member")
	}
	if h.Version != a.cfg.Version {
		bad(fmt.Sprintf("firmware versions differ: %s on this device, %s on the member", a.cfg.Version, h.Version), "install the same firmware version on both (see `postern version`)")
	} else {
		ok("firmware %s on both", h.Version)
	}
	switch {
	case h.NTPServer == "":
		bad("NTP is not enabled on the member", "on the member: postern system set --ntp-server SERVER (the same as here)")
	case h.NTPServer != loc.NTPServer:
		bad(fmt.Sprintf("NTP servers differ: %q on this device, %q on the member", loc.NTPServer, h.NTPServer), "postern system set --ntp-server "+h.NTPServer+" (on this device)")
	case h.NTPError != "":
		bad("the member cannot reach its NTP server: "+h.NTPError, "check the member's NTP server")
	case absDur(time.Duration(h.NTPOffsetMS*float64(time.Millisecond))) > a.cfg.MaxOffset:
		bad(fmt.Sprintf("clock offset of the member against NTP server %s is %.0f ms (at most %s allowed)", h.NTPServer, h.NTPOffsetMS, a.cfg.MaxOffset), "synchronise the member's clock")
	default:
		ok("NTP server %s on both", h.NTPServer)
	}
	return rep, c
}

// Join adds this device to the cluster: checks, the cluster-wide join
// lock, registration of its device key, the copy of the base's tree (this
// device's replicated tree is replaced; machine-local data is untouched),
// then replication with every backend. progress receives every line the
// CLI prints.
func (a *Agent) Join(ctx context.Context, req JoinRequest, progress func(string)) error {
	a.joinMu.Lock()
	defer a.joinMu.Unlock()
	progress("checking")
	rep, c := a.check(ctx, req)
	for _, s := range rep.OK {
		progress("ok: " + s)
	}
	if len(rep.Problems) > 0 {
		if c != nil && c.client != nil {
			c.client.Close()
		}
		return &CheckError{Problems: rep.Problems}
	}
	defer c.client.Close()
	ans, err := callClient(ctx, c.client, &Message{Type: msgLock, Device: a.cfg.DeviceID})
	if err != nil {
		return fmt.Errorf("cluster: join lock: %w", err)
	}
	progress(fmt.Sprintf("join lock taken: this device becomes Cluster No. %d", ans.ClusterNo))
	registered, joined := 0, false
	defer func() {
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// a join that fails after registering takes its registration
		// back: no ghost member, no Cluster No. burnt
		failed := registered > 0 && !joined
		if failed {
			progress(fmt.Sprintf("join failed: removing the registration as Cluster No. %d", registered))
		}
		callClient(uctx, c.client, &Message{Type: msgUnlock, Device: a.cfg.DeviceID, ClusterNo: registered, Failed: failed})
	}()
	loc := a.cfg.Local()
	me := MemberInfo{DeviceID: a.cfg.DeviceID, UUID: a.cfg.UUID, Role: "backend", Hostname: loc.Hostname, Addr: c.self.String(),
		Comment: loc.Comment, Location: loc.Location, Version: a.cfg.Version, NTPServer: loc.NTPServer,
		DeviceKey: string(trimNL(ssh.MarshalAuthorizedKey(a.key().PublicKey())))}
	ans, err = callClient(ctx, c.client, &Message{Type: msgJoin, Member: &me})
	if err != nil {
		return fmt.Errorf("cluster: register: %w", err)
	}
	no := ans.ClusterNo
	registered = no
	progress(fmt.Sprintf("registered at %s (%s) as Cluster No. %d", c.member, ans.Peer.DeviceID, no))

	d := net.Dialer{Timeout: handshakeTimeout, LocalAddr: &net.TCPAddr{IP: c.self.Addr().AsSlice()}}
	mc, err := dialSSH(ctx, d, c.member, c.id.HostKey, a.key())
	if err != nil {
		return fmt.Errorf("cluster: connect with this device's key: %w", err)
	}
	defer mc.Close()
	saved, err := a.saveLocalChanges(ctx, c.client)
	if err != nil {
		return fmt.Errorf("cluster: save this device's own changes before the copy: %w", err)
	}
	saved.report(progress)
	if err := a.copyTree(ctx, mc, no, ans.Peer, progress); err != nil {
		return err
	}
	if err := a.joinSecrets(ctx, mc, progress); err != nil {
		return err
	}
	if err := a.setState(&state{ClusterUUID: c.id.ClusterUUID, ClusterNo: no, Addr: c.self.String(), Joined: time.Now().UTC()}); err != nil {
		return err
	}
	a.wake()
	members, _ := readMembers(ctx, a.cfg.Store)
	var others []string
	for _, m := range members {
		if m.DeviceID != a.cfg.DeviceID {
			others = append(others, fmt.Sprintf("%s (No. %d, %s)", m.DeviceID, m.ClusterNo, m.Addr))
		}
	}
	joined = true
	progress("replicating with " + strings.Join(others, ", "))
	a.waitLinked(ctx, len(others), 30*time.Second, progress)
	progress(fmt.Sprintf("joined cluster %s as Cluster No. %d", c.id.ClusterUUID, no))
	a.log.Info("cluster: joined", slog.String("cluster", c.id.ClusterUUID), slog.Int("cluster_no", no))
	return nil
}

// releaseEvery is how many copied entries a join's copy lets go by between
// two releases of the store's mapped pages (Store.ReleaseMapped).
const releaseEvery = 50000

// copyTree replaces this device's replicated tree by the member's, keeping
// every entry's entryUUID and entryCSN, with a progress line per batch.
// The local tree is reset only once the first batch has arrived, so a
// member that fails before sending anything leaves it untouched. The last
// batch stores, with the copy, the cookie of the replication link to the
// member that served it (Config.CopiedCookie).
func (a *Agent) copyTree(ctx context.Context, c *ssh.Client, no int, from *PeerInfo, progress func(string)) error {
	ch, reqs, err := c.OpenChannel(ControlChannel, nil)
	if err != nil {
		return fmt.Errorf("cluster: copy: %w", err)
	}
	go ssh.DiscardRequests(reqs)
	defer ch.Close()
	if err := WriteMessage(ch, &Message{Type: msgDump}); err != nil {
		return err
	}
	copied, reset := 0, false
	for {
		m, err := ReadMessage(ch)
		if err != nil {
			return fmt.Errorf("cluster: copy after %d entries: %w", copied, err)
		}
		if m.Type == msgError {
			return fmt.Errorf("cluster: copy: %s", m.Error)
		}
		if m.Type != msgEntries {
			return fmt.Errorf("cluster: copy: unexpected %s", m.Type)
		}
		if !reset {
			if err := a.cfg.Store.Reset(ctx, no); err != nil {
				return fmt.Errorf("cluster: reset the local tree: %w", err)
			}
			reset = true
		}
		changes := make([]ldapstore.ReplChange, 0, len(m.Entries))
		for _, we := range m.Entries {
			e := &ldapstore.Entry{DN: we.DN}
			for _, at := range we.Attrs {
				e.Attributes = append(e.Attributes, ldapstore.Attribute{Type: at.Name, Vals: at.Values})
			}
			changes = append(changes, ldapstore.ReplChange{Entry: e})
		}
		var seen csn.Vector
		key, cookie := "", ""
		if m.Done {
			seen = parseVector(m.Context)
			delete(seen, uint16(no))
			if a.cfg.CopiedCookie != nil && from != nil && from.ClusterNo > 0 {
				key, cookie = a.cfg.CopiedCookie(from.DeviceID, from.ClusterNo, seen)
			}
		}
		res, err := a.cfg.Store.ApplySync(ctx, changes, key, cookie, seen)
		if err != nil {
			return fmt.Errorf("cluster: copy: %w", err)
		}
		if res.Rejected > 0 {
			return fmt.Errorf("cluster: copy: %d entries refused, first: %v", res.Rejected, res.Errors[0])
		}
		copied += len(m.Entries)
		if copied/releaseEvery != (copied-len(m.Entries))/releaseEvery {
			// the inserts have walked the store file: its pages mapped
			// in would otherwise grow the resident memory to its size
			if err := a.cfg.Store.ReleaseMapped(); err != nil {
				a.log.Warn("cluster: copy: release the store's mapped pages", slog.Any("err", err))
			}
		}
		progress(fmt.Sprintf("copied %d/%d entries", copied, m.Total))
		if m.Done {
			return nil
		}
	}
}

// waitLinked waits, up to limit, until this member replicates with want
// peers (each link in its persist stage) and every one of them has
// connected back, so that the join returns with the cluster in sync both
// ways and `cluster status` says OK everywhere.
func (a *Agent) waitLinked(ctx context.Context, want int, limit time.Duration, progress func(string)) {
	deadline := time.Now().Add(limit)
	last := -1
	for {
		linked, back := 0, 0
		a.mu.Lock()
		inbound := map[string]bool{}
		for _, dev := range a.conns {
			inbound[dev] = true
		}
		peers := make([]*peer, 0, len(a.peers))
		for _, p := range a.peers {
			peers = append(peers, p)
		}
		a.mu.Unlock()
		for _, p := range peers {
			if p.link != nil && p.link.Status().OK {
				linked++
			}
			if inbound[p.id] {
				back++
			}
		}
		done := min(linked, back)
		if done != last {
			progress(fmt.Sprintf("in sync with %d/%d members (replicating from %d, connected back by %d)", done, want, linked, back))
			last = done
		}
		if done >= want {
			return
		}
		if time.Now().After(deadline) {
			progress(fmt.Sprintf("not yet in sync with every member after %s: see postern cluster status", limit))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}
