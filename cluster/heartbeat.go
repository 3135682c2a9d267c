package cluster

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// heartbeatLoop refreshes this member's record every Heartbeat (so a
// deleted record of an active member comes back), follows the member
// records with peer links, and sends heartbeats to the peers.
func (a *Agent) heartbeatLoop() {
	t := time.NewTicker(a.cfg.Heartbeat)
	defer t.Stop()
	for {
		a.beat(a.ctx)
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
		case <-a.kick:
		}
	}
}

// selfRecord is this member's record as it should be now. The injection
// list is kept from the stored record.
func (a *Agent) selfRecord(ctx context.Context, st *state) MemberInfo {
	loc := a.cfg.Local()
	m := MemberInfo{
		DeviceID: a.cfg.DeviceID, UUID: a.cfg.UUID, ClusterNo: st.ClusterNo, Role: "backend",
		Hostname: loc.Hostname, Addr: st.Addr, Comment: loc.Comment, Location: loc.Location,
		Version: a.cfg.Version, NTPServer: loc.NTPServer,
		DeviceKey:   string(trimNL(ssh.MarshalAuthorizedKey(a.key().PublicKey()))),
		Fingerprint: ssh.FingerprintSHA256(a.key().PublicKey()),
		LastUpdate:  time.Now().UTC().Truncate(time.Second),
	}
	members, _ := readMembers(ctx, a.cfg.Store)
	for _, r := range members {
		if r.DeviceID == a.cfg.DeviceID {
			m.InjectTo, m.BackendOf = r.InjectTo, r.BackendOf
		}
	}
	return m
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func (a *Agent) beat(ctx context.Context) {
	st := a.state()
	if st == nil {
		a.syncPeers(nil)
		return
	}
	if ce, err := readCluster(ctx, a.cfg.Store); err == nil && slices.Contains(ce.Revoked, ssh.FingerprintSHA256(a.key().PublicKey())) {
		a.log.Warn("cluster: this device was removed from the cluster; it is standalone now")
		a.becomeStandalone(ctx)
		return
	}
	self := a.selfRecord(ctx, st)
	if err := writeMember(ctx, a.cfg.Store, &self, a.cfg.RootDN); err != nil && ctx.Err() == nil {
		a.log.Warn("cluster: refresh own member record", slog.Any("err", err))
	}
	members, err := readMembers(ctx, a.cfg.Store)
	if err != nil {
		return
	}
	a.syncPeers(members)
	a.mu.Lock()
	peers := make([]*peer, 0, len(a.peers))
	for _, p := range a.peers {
		peers = append(peers, p)
	}
	a.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.heartbeat(ctx, self)
		}()
	}
	wg.Wait()
}

// peerGrace is how long a peer whose record disappeared (forget) keeps its
// link while it answers: its own heartbeat brings the record back.
const peerGrace = 2 * time.Minute

// syncPeers starts a link for every other backend record and stops the
// links of members that are gone (removed, or forgotten and silent).
func (a *Agent) syncPeers(members []MemberInfo) {
	want := map[string]MemberInfo{}
	for _, m := range members {
		if m.DeviceID != a.cfg.DeviceID && m.Role != "frontend" && m.Addr != "" && m.DeviceKey != "" {
			want[m.DeviceID] = m
		}
	}
	var stop []*peer
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	for id, p := range a.peers {
		if m, ok := want[id]; ok {
			if m.Addr != p.record().Addr || m.DeviceKey != p.record().DeviceKey {
				stop = append(stop, p)
				delete(a.peers, id)
				continue
			}
			p.setRecord(m)
			continue
		}
		p.mu.Lock()
		live := members != nil && time.Since(p.lastOK) < peerGrace
		p.mu.Unlock()
		if !live {
			stop = append(stop, p)
			delete(a.peers, id)
		}
	}
	for id, m := range want {
		if _, ok := a.peers[id]; !ok {
			a.peers[id] = a.startPeer(m)
		}
	}
	a.mu.Unlock()
	for _, p := range stop {
		p.stop()
	}
}

func (a *Agent) peer(id string) *peer {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.peers[id]
}
