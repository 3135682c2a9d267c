package cluster

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/crypto/ssh"
)

// A member's SSH host key is its device key: the peers pin it as host key
// and accept it as client key. Replacing it (`postern cluster rekey`) needs
// the cluster's consent: the old key while the member still has it, or a
// current cluster identifier and its password when the old key is lost
// (deleted, a new disk). The peers then hold the new key in the member's
// record and revoke the old one; no rejoin, no write lost.

// RekeyRequest is `postern cluster rekey`. With ID and Password the
// cluster key authenticates the change (the old device key is lost); else
// the current device key does, and a new key is made.
type RekeyRequest struct {
	ID       []byte `json:"id,omitempty"`
	Password string `json:"password,omitempty"`
	Member   string `json:"member,omitempty"` // a member's cluster address; default the identifier's, or any peer
}

// RekeyResult says what changed.
type RekeyResult struct {
	Old, New string // fingerprints
	Told     string // the member that took the new key
}

// checkOwnKey compares, at start, this device's key with the one its own
// record names: a member whose key file was lost (and made anew) is cut
// off in both directions until `cluster rekey` with a new identifier.
func (a *Agent) checkOwnKey(ctx context.Context) {
	if a.state() == nil {
		return
	}
	m, err := a.member(ctx, a.cfg.DeviceID)
	fp := ssh.FingerprintSHA256(a.key().PublicKey())
	if err != nil || m.Fingerprint == "" || m.Fingerprint == fp {
		return
	}
	a.mu.Lock()
	a.lostKey = m.Fingerprint
	a.mu.Unlock()
	a.log.Warn("cluster: this device's key is not the one the cluster knows (the key file was lost and made anew): the members refuse it; run `postern cluster rekey --id clusterid.txt --password-file F` with a new identifier from a member",
		slog.String("cluster_knows", m.Fingerprint), slog.String("this_key", fp))
}

// keyKnown reports whether the cluster knows this device's current key,
// and the key it knows.
func (a *Agent) keyKnown(context.Context) (bool, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lostKey == "", a.lostKey
}

// Rekey replaces this member's device key everywhere.
func (a *Agent) Rekey(ctx context.Context, req RekeyRequest) (*RekeyResult, error) {
	a.joinMu.Lock()
	defer a.joinMu.Unlock()
	st := a.state()
	if st == nil {
		return nil, ErrNotMember
	}
	known, recorded := a.keyKnown(ctx)
	oldFP := ssh.FingerprintSHA256(a.key().PublicKey())
	res := &RekeyResult{Old: recorded}
	signer := a.key()
	if known {
		// a new key, installed once a member has taken it
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		if signer, err = ssh.NewSignerFromKey(priv); err != nil {
			return nil, err
		}
		res.Old = oldFP
		defer func() {
			if res.Told != "" {
				a.installKey(priv)
			}
		}()
	} else if req.ID == nil {
		return nil, fmt.Errorf("cluster: this device's key %s is not the one the cluster knows (%s): the old one is lost; run `postern cluster rekey --id clusterid.txt --password-file F` with a new identifier from a member", oldFP, recorded)
	}
	res.New = ssh.FingerprintSHA256(signer.PublicKey())
	self := a.selfRecord(ctx, st)
	self.DeviceKey = string(trimNL(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	self.Fingerprint = res.New
	msg := &Message{Type: msgRekey, Member: &self}
	if req.ID != nil {
		id, err := ParseIdentifier(req.ID)
		if err != nil {
			return nil, err
		}
		ck, err := id.Signer(req.Password)
		if err != nil {
			return nil, err
		}
		member := req.Member
		if member == "" {
			member = id.Member
		}
		d := net.Dialer{Timeout: handshakeTimeout}
		if ap, err := netip.ParseAddrPort(st.Addr); err == nil {
			d.LocalAddr = &net.TCPAddr{IP: ap.Addr().AsSlice()}
		}
		cl, err := dialSSH(ctx, d, member, id.HostKey, ck)
		if err != nil {
			return nil, fmt.Errorf("cluster: rekey through %s: %w", member, err)
		}
		defer cl.Close()
		ans, err := callClient(ctx, cl, msg)
		if err != nil {
			return nil, fmt.Errorf("cluster: rekey through %s: %w", member, err)
		}
		res.Told = member
		if ans.Peer != nil {
			res.Told = ans.Peer.DeviceID
		}
	} else {
		var errs []error
		a.mu.Lock()
		peers := make([]*peer, 0, len(a.peers))
		for _, p := range a.peers {
			peers = append(peers, p)
		}
		a.mu.Unlock()
		for _, p := range peers {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := p.call(cctx, msg)
			cancel()
			if err == nil {
				res.Told = p.id
				break
			}
			errs = append(errs, fmt.Errorf("%s: %w", p.id, err))
		}
		if res.Told == "" {
			return nil, fmt.Errorf("cluster: no member took the new key (the old one stays): %w", errors.Join(errs...))
		}
	}
	a.mu.Lock()
	a.lostKey = ""
	a.mu.Unlock()
	// our own record says the new key too (the member's write replicates
	// back; this one wins or ties)
	if err := writeMember(ctx, a.cfg.Store, &self, a.cfg.RootDN); err != nil {
		a.log.Warn("cluster: rekey: own record", slog.Any("err", err))
	}
	a.log.Warn("cluster: device key replaced", slog.String("old", res.Old), slog.String("new", res.New), slog.String("told", res.Told))
	return res, nil
}

// installKey makes priv this appliance's host and device key: the file
// first (0600, atomically), then the SSH server and every peer link.
func (a *Agent) installKey(priv ed25519.PrivateKey) {
	blk, err := ssh.MarshalPrivateKey(priv, "postern host key")
	if err != nil {
		a.log.Error("cluster: rekey: encode key", slog.Any("err", err))
		return
	}
	if err := writeFileAtomic(filepath.Join(a.cfg.DataDir, hostKeyFile), pem.EncodeToMemory(blk), 0o600); err != nil {
		a.log.Error("cluster: rekey: write key", slog.Any("err", err))
		return
	}
	signer, _ := ssh.NewSignerFromKey(priv)
	a.mu.Lock()
	a.hostKey = signer
	a.mu.Unlock()
	cfg := a.serverConfig()
	a.mu.Lock()
	a.sshCfg = cfg
	for c := range a.conns {
		c.Close()
	}
	a.mu.Unlock()
	a.syncPeers(nil) // every link redials with the new key
	a.wake()
}

// takeRekey is a member's side of a rekey: the record of the sending
// device (a member's own key) or of the named device (a cluster key: the
// admins' consent) gets the new key, and the old one is revoked.
func (a *Agent) takeRekey(ctx context.Context, c caller, m *MemberInfo) error {
	if m == nil || m.DeviceKey == "" {
		return fmt.Errorf("cluster: rekey without the new key")
	}
	if c.role == roleMember && m.DeviceID != c.device {
		return fmt.Errorf("cluster: a member may only rekey itself")
	}
	cur, err := a.member(ctx, m.DeviceID)
	if err != nil {
		return fmt.Errorf("cluster: rekey: %s is not a member", m.DeviceID)
	}
	pk, err := parseKey(m.DeviceKey)
	if err != nil {
		return fmt.Errorf("cluster: rekey: %v", err)
	}
	newFP := ssh.FingerprintSHA256(pk)
	ce, err := readCluster(ctx, a.cfg.Store)
	if err != nil {
		return err
	}
	if slices.Contains(ce.Revoked, newFP) {
		return fmt.Errorf("cluster: rekey: the new key is a revoked one")
	}
	oldFP := cur.Fingerprint
	cur.DeviceKey, cur.Fingerprint = m.DeviceKey, newFP
	if err := writeMember(ctx, a.cfg.Store, &cur, a.cfg.RootDN); err != nil {
		return err
	}
	if oldFP != "" && oldFP != newFP && !slices.Contains(ce.Revoked, oldFP) {
		ce.Revoked = append(ce.Revoked, oldFP)
		if err := writeCluster(ctx, a.cfg.Store, ce, a.cfg.RootDN); err != nil {
			return err
		}
	}
	a.log.Warn("cluster: a member's device key replaced", slog.String("member", m.DeviceID), slog.String("old", oldFP), slog.String("new", newFP), slog.String("by", c.role))
	a.wake()
	return nil
}
