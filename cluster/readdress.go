package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
)

// A member's cluster address is in its member record, which every peer
// dials. A member that now listens elsewhere (another IP or port) says so
// at start and announces the new address over its authenticated channel:
// its device key is unchanged, so the peers trust the announcement and
// update its record (heartbeat), and dial it at the new address. Device
// keys authenticate from any IP: "Protect cluster identifier" limits the
// cluster key (the identifier), not the members.

// checkOwnAddr compares this member's recorded cluster address with the
// listener's, at start: when the listener has a concrete IP and port
// that differ, the new address is taken (cluster.json, own record) and
// announced with the next heartbeat.
func (a *Agent) checkOwnAddr(ctx context.Context) {
	st := a.state()
	if st == nil {
		return
	}
	la, err := netip.ParseAddrPort(a.listenAddr())
	if err != nil || la.Addr().IsUnspecified() || la.String() == st.Addr {
		return
	}
	a.log.Warn("cluster: this member listens on another cluster address than the cluster knows; announcing the new one",
		slog.String("recorded", st.Addr), slog.String("listening", la.String()))
	if err := a.setAddr(ctx, la.String()); err != nil {
		a.log.Warn("cluster: take the new cluster address", slog.Any("err", err))
	}
}

// Readdress makes addr (IP:PORT) this member's cluster address: for a
// listener on 0.0.0.0 or a NAT, where it cannot be read from the socket
// (`postern cluster readdress --self IP:PORT`).
func (a *Agent) Readdress(ctx context.Context, addr string) error {
	st := a.state()
	if st == nil {
		return ErrNotMember
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || ap.Addr().IsUnspecified() || ap.Port() == 0 {
		return fmt.Errorf("cluster: --self %q: want this member's IP:PORT", addr)
	}
	if l, err := net.Listen("tcp", net.JoinHostPort(ap.Addr().String(), "0")); err != nil {
		return fmt.Errorf("cluster: --self %s is not an address of this machine", ap.Addr())
	} else {
		l.Close()
	}
	if la, err := netip.ParseAddrPort(a.listenAddr()); err == nil && la.Port() != ap.Port() {
		return fmt.Errorf("cluster: --self %s: this appliance's cluster SSH listens on port %d (restart `postern serve --cluster` first)", ap, la.Port())
	}
	if ap.String() == st.Addr {
		return nil
	}
	return a.setAddr(ctx, ap.String())
}

// setAddr stores a new cluster address of this member and announces it.
func (a *Agent) setAddr(ctx context.Context, addr string) error {
	st := a.state()
	st.Addr = addr
	if err := a.setState(st); err != nil {
		return err
	}
	self := a.selfRecord(ctx, st)
	if err := writeMember(ctx, a.cfg.Store, &self, a.cfg.RootDN); err != nil {
		return err
	}
	a.log.Info("cluster: cluster address changed", slog.String("addr", addr))
	a.wake()
	return nil
}

// takeAnnounced updates the record of device from its own heartbeat when
// its cluster address changed: the sender authenticated with that device's
// key, so the record it sends of itself is its word.
func (a *Agent) takeAnnounced(ctx context.Context, device string, m *MemberInfo) {
	if m == nil || m.DeviceID != device || m.Addr == "" {
		return
	}
	cur, err := a.member(ctx, device)
	if err != nil || cur.Addr == m.Addr {
		return
	}
	if _, err := netip.ParseAddrPort(m.Addr); err != nil {
		return
	}
	cur.Addr = m.Addr
	if err := writeMember(ctx, a.cfg.Store, &cur, a.cfg.RootDN); err != nil {
		a.log.Warn("cluster: take a member's new address", slog.String("member", device), slog.Any("err", err))
		return
	}
	a.log.Info("cluster: a member announced a new cluster address", slog.String("member", device), slog.String("addr", m.Addr))
	a.wake()
}
