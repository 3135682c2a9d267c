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
)

// The rules a join is held to on the member's side: identifiers that
// expire or admit one join, names and addresses that are not taken twice,
// a registration that a failed join takes back, and the revocation of a
// removed device that a new, consented join lifts.

// DefaultValid is how long a cluster identifier admits joins unless
// `prepare --valid` says otherwise (cPanel's link token: 24 h).
const DefaultValid = 24 * time.Hour

// briefs lists the members' Device IDs, hostnames and cluster addresses.
func (a *Agent) briefs(ctx context.Context) []MemberBrief {
	members, err := readMembers(ctx, a.cfg.Store)
	if err != nil {
		return nil
	}
	out := make([]MemberBrief, 0, len(members))
	for _, m := range members {
		out = append(out, MemberBrief{DeviceID: m.DeviceID, Hostname: m.Hostname, Addr: m.Addr, ClusterNo: m.ClusterNo, Role: m.Role, DeviceKey: m.DeviceKey, InjectTo: m.InjectTo})
	}
	return out
}

// takenBy returns which member other than device already has hostname or
// the cluster address addr, and what of it ("" when none).
func takenBy(members []MemberBrief, device, hostname, addr string) (string, string) {
	for _, m := range members {
		if m.DeviceID == device {
			continue
		}
		if hostname != "" && strings.EqualFold(m.Hostname, hostname) {
			return m.DeviceID, "hostname " + hostname
		}
		if addr != "" && m.Addr == addr {
			return m.DeviceID, "cluster address " + addr
		}
	}
	return "", ""
}

// useKey marks a once-only cluster key as used: it admits no further join.
func (a *Agent) useKey(ctx context.Context, line string) {
	pk, meta, err := parseKeyLine(line)
	if err != nil || !meta.Once {
		return
	}
	ce, err := readCluster(ctx, a.cfg.Store)
	if err != nil {
		return
	}
	i := slices.Index(ce.Keys, line)
	if i < 0 {
		return
	}
	meta.Used = time.Now().UTC().Truncate(time.Second)
	ce.Keys[i] = keyLine(pk, meta)
	if err := writeCluster(ctx, a.cfg.Store, ce, a.cfg.RootDN); err != nil {
		a.log.Warn("cluster: mark a once-only identifier used", slog.Any("err", err))
		return
	}
	a.log.Info("cluster: once-only cluster identifier used up", slog.String("key", ssh.FingerprintSHA256(pk)))
}

// unregister takes back the record a failed join registered: only the
// record of device with that Cluster No., registered from ip.
func (a *Agent) unregister(ctx context.Context, device string, no int, ip netip.Addr) error {
	m, err := a.member(ctx, device)
	if err != nil {
		return nil // nothing registered
	}
	ap, _ := netip.ParseAddrPort(m.Addr)
	if m.ClusterNo != no || ap.Addr().Unmap() != ip {
		return fmt.Errorf("cluster: %s is registered as No. %d from %s, not No. %d from %s", device, m.ClusterNo, m.Addr, no, ip)
	}
	if err := a.cfg.Store.Delete(ctx, memberDN(a.cfg.Store.Suffix(), device), a.cfg.RootDN); err != nil && ldapstore.CodeOf(err) != ldapstore.NoSuchObject {
		return err
	}
	a.log.Info("cluster: failed join rolled back; registration removed", slog.String("device", device), slog.Int("cluster_no", no))
	return nil
}

// liftRevocation lifts the revocation of a device key that a removal left:
// a new join with a current cluster identifier is the admins' consent.
func (a *Agent) liftRevocation(ctx context.Context, fingerprint, device string) error {
	ce, err := readCluster(ctx, a.cfg.Store)
	if err != nil {
		return err
	}
	if !slices.Contains(ce.Revoked, fingerprint) {
		return nil
	}
	ce.Revoked = slices.DeleteFunc(ce.Revoked, func(s string) bool { return s == fingerprint })
	if err := writeCluster(ctx, a.cfg.Store, ce, a.cfg.RootDN); err != nil {
		return err
	}
	a.log.Warn("cluster: the device key of a removed member is accepted again: it joined with a current cluster identifier", slog.String("device", device), slog.String("key", fingerprint))
	return nil
}
