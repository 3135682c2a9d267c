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

// The backend's side of frontend members (seed "Add this device as frontend
// server (no local database)"): a frontend attaches with a cluster
// identifier (msgAttach), is known by its member record (role frontend, its
// backends in BackendOf, no Cluster No.), authenticates with its device
// key, and may open two tunnels: LDAP, served as a read-only session of
// limited sight (Config.ServeLDAPRestricted: never userPassword, never the
// cluster's keys), and SMTP, for mail injection under the ACL. Its
// heartbeat carries its record, which the backend it names writes (the
// frontend has no directory to write it in); detach deletes the record and
// revokes the key.

// roleFrontend is a connection authenticated with a frontend's device key.
const roleFrontend = "frontend"

// frontendMsgs are the control requests a frontend may make.
var frontendMsgs = []string{msgHello, msgHeartbeat, msgDetach, msgCall}

// registerFrontend writes a new frontend's record, attached to this
// backend: its device key authorises its tunnels from now on.
func (a *Agent) registerFrontend(ctx context.Context, m *MemberInfo, ip netip.Addr, key string) error {
	if m == nil || m.DeviceKey == "" || m.Addr == "" {
		return fmt.Errorf("cluster: attach needs the frontend's record")
	}
	ap, _ := netip.ParseAddrPort(m.Addr)
	if ap.Addr().Unmap() != ip {
		return fmt.Errorf("cluster: the frontend connects from %s but gives %s as its cluster address", ip, m.Addr)
	}
	if m.Version != a.cfg.Version {
		return fmt.Errorf("cluster: firmware versions differ: %s here, %s on the frontend", a.cfg.Version, m.Version)
	}
	if other, what := takenBy(a.briefs(ctx), m.DeviceID, m.Hostname, m.Addr); other != "" {
		return fmt.Errorf("cluster: %s is already member %s's: give this appliance another one", what, other)
	}
	pk, err := parseKey(m.DeviceKey)
	if err != nil {
		return fmt.Errorf("cluster: the frontend's device key: %v", err)
	}
	rec := *m
	rec.Role, rec.ClusterNo, rec.LastUpdate = roleFrontend, 0, time.Now().UTC().Truncate(time.Second)
	rec.Fingerprint = ssh.FingerprintSHA256(pk)
	rec.BackendOf = []string{a.cfg.DeviceID}
	rec.InjectTo = nil
	if err := a.liftRevocation(ctx, rec.Fingerprint, rec.DeviceID); err != nil {
		return err
	}
	if err := writeMember(ctx, a.cfg.Store, &rec, a.cfg.RootDN); err != nil {
		return err
	}
	if key != "" {
		a.useKey(ctx, key)
	}
	a.log.Info("cluster: frontend attached", slog.String("frontend", rec.DeviceID), slog.String("addr", rec.Addr))
	return nil
}

// takeFrontendRecord writes a frontend's record from its heartbeat when it
// names this backend as the one to write it (record true) and the record
// changed or is gone: a frontend whose record was deleted reappears with its
// next heartbeat, like a backend. Its device key and role cannot change
// this way.
func (a *Agent) takeFrontendRecord(ctx context.Context, device string, m *MemberInfo, record bool) error {
	if m == nil || m.DeviceID != device || m.Role != roleFrontend {
		return fmt.Errorf("cluster: a frontend's heartbeat must carry its own frontend record")
	}
	cur, err := a.member(ctx, device)
	if err == nil && cur.DeviceKey != m.DeviceKey {
		return fmt.Errorf("cluster: a heartbeat cannot change a device key (use rekey)")
	}
	if !record {
		return nil
	}
	rec := *m
	rec.ClusterNo = 0
	if err == nil {
		rec.Fingerprint = cur.Fingerprint
		// nothing but the time changed: no write (no replication churn)
		a2, b2 := cur, rec
		a2.LastUpdate, b2.LastUpdate = time.Time{}, time.Time{}
		if fmt.Sprint(a2) == fmt.Sprint(b2) && time.Since(cur.LastUpdate) < 10*a.cfg.Heartbeat {
			return nil
		}
	} else {
		pk, perr := parseKey(rec.DeviceKey)
		if perr != nil {
			return perr
		}
		rec.Fingerprint = ssh.FingerprintSHA256(pk)
		a.log.Info("cluster: a frontend's record comes back with its heartbeat", slog.String("frontend", device))
	}
	rec.LastUpdate = time.Now().UTC().Truncate(time.Second)
	return writeMember(ctx, a.cfg.Store, &rec, a.cfg.RootDN)
}

// detachFrontend deletes a frontend's record and revokes its key.
func (a *Agent) detachFrontend(ctx context.Context, device string) error {
	m, err := a.member(ctx, device)
	if err != nil {
		return nil // already gone
	}
	ce, err := readCluster(ctx, a.cfg.Store)
	if err != nil {
		return err
	}
	if m.Fingerprint != "" && !slices.Contains(ce.Revoked, m.Fingerprint) {
		ce.Revoked = append(ce.Revoked, m.Fingerprint)
		if err := writeCluster(ctx, a.cfg.Store, ce, a.cfg.RootDN); err != nil {
			return err
		}
	}
	if err := a.cfg.Store.Delete(ctx, memberDN(a.cfg.Store.Suffix(), device), a.cfg.RootDN); err != nil && ldapstore.CodeOf(err) != ldapstore.NoSuchObject {
		return err
	}
	a.log.Info("cluster: frontend detached; its key is revoked", slog.String("frontend", device))
	return nil
}

// frontendOf returns the Cluster Nos. of the backends a frontend record
// names, for its "F(1,2)".
func frontendNumbers(m MemberInfo, members []MemberInfo) string {
	var nos []string
	for _, id := range m.BackendOf {
		for _, b := range members {
			if strings.EqualFold(b.DeviceID, id) && b.ClusterNo > 0 {
				nos = append(nos, fmt.Sprint(b.ClusterNo))
			}
		}
	}
	return "F(" + strings.Join(nos, ",") + ")"
}
