package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"postern/ldapstore"
)

// LeaveResult says whom a leave told: the member that deleted this
// device's record (Told ""): no member could be reached; this device is
// standalone all the same, and its record stays in the cluster until an
// admin runs `postern cluster forget` there).
type LeaveResult struct {
	Told     string `json:"told,omitempty"`
	DeviceID string `json:"device_id"`
	Error    string `json:"error,omitempty"` // why no member was told
}

// Leave makes this device standalone (Remove from cluster): a member is
// told to delete its record, the links stop, and the local tree keeps its
// data as last synchronised except the cluster entries.
func (a *Agent) Leave(ctx context.Context) (LeaveResult, error) {
	a.joinMu.Lock()
	defer a.joinMu.Unlock()
	res := LeaveResult{DeviceID: a.cfg.DeviceID}
	if a.state() == nil {
		return res, ErrNotMember
	}
	a.mu.Lock()
	peers := make([]*peer, 0, len(a.peers))
	for _, p := range a.peers {
		peers = append(peers, p)
	}
	a.mu.Unlock()
	var errs []string
	for _, p := range peers {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := p.call(cctx, &Message{Type: msgLeave})
		cancel()
		if err == nil {
			res.Told = p.id
			break
		}
		errs = append(errs, p.id+": "+err.Error())
	}
	if res.Told == "" && len(peers) > 0 {
		res.Error = strings.Join(errs, "; ")
		a.log.Warn("cluster: no member could be told about the leave; remove this device's record there with `postern cluster forget`", slog.String("device", a.cfg.DeviceID))
	}
	return res, a.becomeStandalone(ctx)
}

// becomeStandalone ends membership locally: no tunnels, no links, no
// cluster entries in the local tree, CSNs of server ID 1 again. The
// tunnels close before the local deletes, so the deletes never replicate.
func (a *Agent) becomeStandalone(ctx context.Context) error {
	if err := a.setState(nil); err != nil {
		return err
	}
	a.mu.Lock()
	for c := range a.conns {
		c.Close()
	}
	a.mu.Unlock()
	a.syncPeers(nil)
	base := "ou=cluster," + a.cfg.Store.Suffix()
	var dns []string
	a.cfg.Store.Search(ctx, &ldapstore.SearchRequest{BaseDN: base, Scope: ldapstore.ScopeSub}, func(e *ldapstore.Entry) error {
		if e.DN != base {
			dns = append(dns, e.DN)
		}
		return nil
	})
	// Children before their parents (the cluster entry has its sets below it).
	slices.SortFunc(dns, func(x, y string) int { return strings.Count(y, ",") - strings.Count(x, ",") })
	for _, dn := range dns {
		if err := a.cfg.Store.Delete(ctx, dn, a.cfg.RootDN); err != nil && ldapstore.CodeOf(err) != ldapstore.NoSuchObject {
			a.log.Warn("cluster: delete cluster entry", slog.String("dn", dn), slog.Any("err", err))
		}
	}
	return a.cfg.Store.SetServerID(1)
}

// Remove removes another member everywhere and revokes its access: its
// record goes, its device key is revoked and every cluster key is dropped
// (its clusterid.txt, like every other outstanding one, stops working; a
// new `prepare` makes a new one).
func (a *Agent) Remove(ctx context.Context, deviceID string) error {
	if a.state() == nil {
		return ErrNotMember
	}
	if strings.EqualFold(deviceID, a.cfg.DeviceID) {
		return fmt.Errorf("cluster: %s is this device: use `postern cluster leave`", deviceID)
	}
	m, err := a.member(ctx, deviceID)
	if err != nil {
		return err
	}
	if p := a.peer(m.DeviceID); p != nil {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		p.call(cctx, &Message{Type: msgRemoved})
		cancel()
	}
	ce, err := readCluster(ctx, a.cfg.Store)
	if err != nil {
		return err
	}
	if m.Fingerprint != "" && !slices.Contains(ce.Revoked, m.Fingerprint) {
		ce.Revoked = append(ce.Revoked, m.Fingerprint)
	}
	ce.Keys = nil
	if ap, err := netip.ParseAddrPort(m.Addr); err == nil {
		ce.AllowedIPs = slices.DeleteFunc(ce.AllowedIPs, func(s string) bool { return s == ap.Addr().String() })
	}
	if err := writeCluster(ctx, a.cfg.Store, ce, a.cfg.RootDN); err != nil {
		return err
	}
	if err := a.cfg.Store.Delete(ctx, memberDN(a.cfg.Store.Suffix(), m.DeviceID), a.cfg.RootDN); err != nil && ldapstore.CodeOf(err) != ldapstore.NoSuchObject {
		return err
	}
	a.mu.Lock()
	for c, dev := range a.conns {
		if dev == m.DeviceID {
			c.Close()
		}
	}
	p := a.peers[m.DeviceID]
	delete(a.peers, m.DeviceID)
	a.mu.Unlock()
	if p != nil {
		p.stop()
	}
	a.log.Info("cluster: member removed, its key revoked, cluster keys rotated", slog.String("member", m.DeviceID))
	return nil
}

// Forget deletes the record of a member switched off for good. An active
// member's heartbeat brings its record back.
func (a *Agent) Forget(ctx context.Context, deviceID string) error {
	if a.state() == nil {
		return ErrNotMember
	}
	if strings.EqualFold(deviceID, a.cfg.DeviceID) {
		return fmt.Errorf("cluster: %s is this device", deviceID)
	}
	m, err := a.member(ctx, deviceID)
	if err != nil {
		return err
	}
	return a.cfg.Store.Delete(ctx, memberDN(a.cfg.Store.Suffix(), m.DeviceID), a.cfg.RootDN)
}

func (a *Agent) member(ctx context.Context, deviceID string) (MemberInfo, error) {
	members, err := readMembers(ctx, a.cfg.Store)
	if err != nil {
		return MemberInfo{}, err
	}
	for _, m := range members {
		if strings.EqualFold(m.DeviceID, deviceID) {
			return m, nil
		}
	}
	return MemberInfo{}, fmt.Errorf("cluster: no member %s", deviceID)
}

// ProtectRequest is `postern cluster protect`.
type ProtectRequest struct {
	Off bool     `json:"off,omitempty"` // allow every IP (not recommended)
	IPs []string `json:"ips,omitempty"` // replace the allowed list (besides the members' own IPs)
	Add []string `json:"add,omitempty"` // add to the allowed list
}

// Protection is the state of Protect cluster identifier.
type Protection struct {
	On         bool     `json:"on"`
	AllowedIPs []string `json:"allowed_ips"` // besides the members' cluster IPs
	MemberIPs  []string `json:"member_ips"`
}

// Protect changes Protect cluster identifier (on unless req.Off).
func (a *Agent) Protect(ctx context.Context, req ProtectRequest) (Protection, error) {
	if a.state() == nil {
		return Protection{}, ErrNotMember
	}
	ce, err := readCluster(ctx, a.cfg.Store)
	if err != nil {
		return Protection{}, err
	}
	norm := func(list []string) ([]string, error) {
		var out []string
		for _, s := range list {
			ip, err := netip.ParseAddr(strings.TrimSpace(s))
			if err != nil {
				return nil, fmt.Errorf("cluster: %q is not an IP address", s)
			}
			out = append(out, ip.String())
		}
		return out, nil
	}
	ips, err := norm(req.IPs)
	if err != nil {
		return Protection{}, err
	}
	add, err := norm(req.Add)
	if err != nil {
		return Protection{}, err
	}
	ce.Protect = !req.Off
	if req.IPs != nil {
		ce.AllowedIPs = ips
	}
	for _, ip := range add {
		if !slices.Contains(ce.AllowedIPs, ip) {
			ce.AllowedIPs = append(ce.AllowedIPs, ip)
		}
	}
	if err := writeCluster(ctx, a.cfg.Store, ce, a.cfg.RootDN); err != nil {
		return Protection{}, err
	}
	return a.Protection(ctx)
}

// Protection returns the state of Protect cluster identifier.
func (a *Agent) Protection(ctx context.Context) (Protection, error) {
	ce, err := readCluster(ctx, a.cfg.Store)
	if err != nil {
		return Protection{}, err
	}
	p := Protection{On: ce.Protect, AllowedIPs: ce.AllowedIPs}
	members, _ := readMembers(ctx, a.cfg.Store)
	for _, m := range members {
		if ap, err := netip.ParseAddrPort(m.Addr); err == nil {
			p.MemberIPs = append(p.MemberIPs, ap.Addr().String())
		}
	}
	return p, nil
}

// InjectRequest is `postern cluster inject`: the members this device may
// inject mail on (Allow mail injection).
type InjectRequest struct {
	Backends  []string `json:"backends"`
	Frontends []string `json:"frontends"`
}

// SetInject stores where this device may inject mail, in its own record.
func (a *Agent) SetInject(ctx context.Context, req InjectRequest) ([]string, error) {
	st := a.state()
	if st == nil {
		return nil, ErrNotMember
	}
	members, err := readMembers(ctx, a.cfg.Store)
	if err != nil {
		return nil, err
	}
	role := map[string]string{}
	canon := map[string]string{}
	for _, m := range members {
		role[strings.ToUpper(m.DeviceID)] = m.Role
		canon[strings.ToUpper(m.DeviceID)] = m.DeviceID
	}
	var to []string
	for _, list := range []struct {
		ids  []string
		role string
	}{{req.Backends, "backend"}, {req.Frontends, "frontend"}} {
		for _, id := range list.ids {
			id = strings.TrimSpace(id)
			if id == "" {
				continue
			}
			r, ok := role[strings.ToUpper(id)]
			if !ok {
				return nil, fmt.Errorf("cluster: no member %s", id)
			}
			if r != list.role {
				return nil, fmt.Errorf("cluster: %s is a %s, not a %s", id, r, list.role)
			}
			if !slices.Contains(to, canon[strings.ToUpper(id)]) {
				to = append(to, canon[strings.ToUpper(id)])
			}
		}
	}
	self := a.selfRecord(ctx, st)
	self.InjectTo = to
	if err := writeMember(ctx, a.cfg.Store, &self, a.cfg.RootDN); err != nil {
		return nil, err
	}
	return to, nil
}

// removedByCluster turns this device standalone when a member says it was
// removed (its key is revoked) while it was switched off: it keeps its
// data, says so in its status and log, and stops acting as a member.
func (a *Agent) removedByCluster(by, why string) {
	a.joinMu.Lock()
	defer a.joinMu.Unlock()
	if a.state() == nil {
		return
	}
	a.log.Warn("cluster: this device was removed from the cluster while it was away; it is standalone now and keeps its data", slog.String("told_by", by), slog.String("why", why))
	a.mu.Lock()
	a.removedNote = fmt.Sprintf("removed from the cluster while away (told by %s at %s); standalone now, data kept", by, time.Now().UTC().Format(time.RFC3339))
	a.mu.Unlock()
	if err := a.becomeStandalone(a.ctx); err != nil {
		a.log.Error("cluster: become standalone", slog.Any("err", err))
	}
}
