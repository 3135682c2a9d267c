package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// The SSH server offers nothing but the control channel and direct-tcpip
// to this appliance's own LDAP and SMTP listeners. Session channels are
// refused as unknown, so shell, exec, pty, env and the sftp subsystem never
// start; global requests (tcpip-forward, ...) are answered "no".

const (
	handshakeTimeout = 10 * time.Second
	roleJoiner       = "joiner"  // authenticated with a cluster key
	roleMember       = "member"  // authenticated with a member's device key
	roleRemoved      = "removed" // a revoked device key: told so, nothing else
)

func (a *Agent) serverConfig() *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: a.authenticate,
		BannerCallback: func(cm ssh.ConnMetadata) string {
			ip := addrIP(cm.RemoteAddr())
			ok, err := a.ipAllowed(context.Background(), ip, "")
			switch {
			case ok:
				return ""
			case errors.Is(err, ErrNotMember):
				return fmt.Sprintf("postern: %s is not a cluster member (it may be joining right now)\n", a.cfg.DeviceID)
			}
			return a.protectHint(ip) + "\n"
		},
		ServerVersion: "SSH-2.0-Postern",
	}
	cfg.AddHostKey(a.key())
	return cfg
}

func addrIP(addr net.Addr) netip.Addr {
	if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// protectHint is what a client from a disallowed IP is told (SSH banner).
func (a *Agent) protectHint(ip netip.Addr) string {
	self := a.cfg.DeviceID
	if st := a.state(); st != nil {
		self += " (" + st.Addr + ")"
	}
	return fmt.Sprintf("postern: %s may not use the cluster identifier of this cluster (Protect cluster identifier); on %s run: postern cluster protect --add %s", ip, self, ip)
}

// ipAllowed applies "Protect cluster identifier": with protection on (the
// default) only the members' cluster IPs and the allowed list may present
// a key; deviceID, when set, must come from its own recorded IP or the
// allowed list.
func (a *Agent) ipAllowed(ctx context.Context, ip netip.Addr, deviceID string) (bool, error) {
	if a.state() == nil {
		return false, ErrNotMember
	}
	ce, err := readCluster(ctx, a.cfg.Store)
	if err != nil {
		return false, err
	}
	if !ce.Protect {
		return true, nil
	}
	for _, s := range ce.AllowedIPs {
		if p, err := netip.ParseAddr(s); err == nil && p.Unmap() == ip {
			return true, nil
		}
	}
	members, err := readMembers(ctx, a.cfg.Store)
	if err != nil {
		return false, err
	}
	for _, m := range members {
		if deviceID != "" && m.DeviceID != deviceID {
			continue
		}
		if ap, err := netip.ParseAddrPort(m.Addr); err == nil && ap.Addr().Unmap() == ip {
			return true, nil
		}
	}
	if deviceID != "" {
		if p := a.peer(deviceID); p != nil {
			if ap, err := netip.ParseAddrPort(p.record().Addr); err == nil && ap.Addr().Unmap() == ip {
				return true, nil
			}
		}
	}
	return false, nil
}

// authenticate accepts a cluster key (role joiner) or a member's device
// key (role member) from an allowed IP; everything else is refused and
// logged. Secrets never reach the log: only fingerprints.
func (a *Agent) authenticate(cm ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	ctx, cancel := context.WithTimeout(a.ctx, 5*time.Second)
	defer cancel()
	ip := addrIP(cm.RemoteAddr())
	fp := ssh.FingerprintSHA256(key)
	refuse := func(reason string) (*ssh.Permissions, error) {
		a.log.Warn("cluster: key refused", slog.String("ip", ip.String()), slog.String("key", fp), slog.String("reason", reason))
		return nil, fmt.Errorf("cluster: key %s from %s refused: %s", fp, ip, reason)
	}
	if a.state() == nil {
		return refuse("this device is not a cluster member")
	}
	ce, err := readCluster(ctx, a.cfg.Store)
	if err != nil {
		return refuse("no cluster entry: " + err.Error())
	}
	if slices.Contains(ce.Revoked, fp) {
		// a removed member that was switched off meanwhile comes back
		// with its revoked key: it may ask one thing, hello, whose answer
		// tells it that it was removed, so that it turns standalone
		// instead of acting as a member nobody hears (issue 12)
		a.log.Info("cluster: a removed member's key connects; telling it", slog.String("ip", ip.String()), slog.String("key", fp))
		return &ssh.Permissions{Extensions: map[string]string{"role": roleRemoved}}, nil
	}
	role, device, keyUsed, refusal := "", "", "", ""
	for _, k := range ce.Keys {
		if pk, meta, err := parseKeyLine(k); err == nil && keysEqual(pk, key) {
			// an expired or used-up identifier still authenticates, so
			// that its holder is told why it admits nothing (serveControl)
			role, keyUsed, refusal = roleJoiner, k, meta.refusal(time.Now())
		}
	}
	if role == "" {
		members, _ := readMembers(ctx, a.cfg.Store)
		for _, m := range members {
			if pk, err := parseKey(m.DeviceKey); err == nil && keysEqual(pk, key) {
				role, device = roleMember, m.DeviceID
				if m.Role == roleFrontend {
					role = roleFrontend
				}
			}
		}
	}
	if role == "" {
		// A linked peer whose record was just forgotten (`cluster forget`
		// of an active member) keeps its access, so its heartbeat can
		// bring the record back.
		a.mu.Lock()
		for id, p := range a.peers {
			if pk, err := parseKey(p.record().DeviceKey); err == nil && keysEqual(pk, key) {
				role, device = roleMember, id
			}
		}
		a.mu.Unlock()
	}
	if role == "" {
		return refuse("not a cluster key nor a member's device key")
	}
	// Protect cluster identifier limits the cluster key; a member's device
	// key authenticates it from wherever it is now (a new address is
	// announced by its heartbeat, readdress.go)
	if role == roleJoiner {
		if ok, err := a.ipAllowed(ctx, ip, ""); err != nil || !ok {
			return refuse("IP not allowed (Protect cluster identifier)")
		}
	}
	return &ssh.Permissions{Extensions: map[string]string{"role": role, "device": device, "key": keyUsed, "refusal": refusal}}, nil
}

func keysEqual(a, b ssh.PublicKey) bool {
	return a.Type() == b.Type() && string(a.Marshal()) == string(b.Marshal())
}

// serveConn runs one inbound SSH connection.
func (a *Agent) serveConn(c net.Conn) {
	defer func() {
		if r := recover(); r != nil {
			a.log.Error("cluster: panic in SSH connection", slog.Any("panic", r))
		}
		c.Close()
	}()
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	sc, chans, reqs, err := ssh.NewServerConn(c, a.serverCfg())
	if err != nil {
		a.log.Debug("cluster: handshake failed", slog.String("peer", c.RemoteAddr().String()), slog.Any("err", err))
		return
	}
	c.SetDeadline(time.Time{})
	role, device := sc.Permissions.Extensions["role"], sc.Permissions.Extensions["device"]
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		sc.Close()
		return
	}
	a.conns[sc] = device
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.conns, sc)
		a.mu.Unlock()
	}()
	// Keepalive: a peer that stops answering is dropped.
	defer keepAlive(context.Background(), sc)()
	go ssh.DiscardRequests(reqs) // tcpip-forward and every other global request: no
	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		switch nc.ChannelType() {
		case ControlChannel:
			ch, creqs, err := nc.Accept()
			if err != nil {
				continue
			}
			go ssh.DiscardRequests(creqs)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer ch.Close()
				a.serveControl(ch, caller{role: role, device: device, key: sc.Permissions.Extensions["key"],
					refusal: sc.Permissions.Extensions["refusal"], ip: addrIP(sc.RemoteAddr())})
			}()
		case "direct-tcpip":
			if role != roleMember && role != roleFrontend {
				nc.Reject(ssh.Prohibited, "the cluster key opens no tunnels")
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				a.serveTunnel(nc, role, device, sc.RemoteAddr())
			}()
		default:
			// "session" lands here: no shell, exec, pty or sftp.
			nc.Reject(ssh.UnknownChannelType, "only the cluster tunnels are offered")
		}
	}
}

const keepaliveEvery = 10 * time.Second

// keepalive sends an OpenSSH keepalive and waits a bounded time for any
// answer.
// keepAlive sends c a keepalive every keepaliveEvery and closes it when
// one goes unanswered or ctx ends; the returned stop ends the keepalives.
func keepAlive(ctx context.Context, c ssh.Conn) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(keepaliveEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				c.Close()
				return
			case <-t.C:
				if !keepalive(c) {
					c.Close()
					return
				}
			}
		}
	}()
	return func() { close(done) }
}

func keepalive(c ssh.Conn) bool {
	res := make(chan error, 1)
	go func() {
		_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
		res <- err
	}()
	select {
	case err := <-res:
		return err == nil
	case <-time.After(3 * keepaliveEvery):
		return false
	}
}

// directTCPIPDest reads the destination host:port of a direct-tcpip
// channel request (RFC 4254 §7.2); a malformed one is rejected and ok is
// false.
func directTCPIPDest(nc ssh.NewChannel) (dest string, ok bool) {
	var req struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &req); err != nil {
		nc.Reject(ssh.ConnectionFailed, "malformed direct-tcpip request")
		return "", false
	}
	return net.JoinHostPort(req.Host, strconv.FormatUint(uint64(req.Port), 10)), true
}

// serveTunnel opens a direct-tcpip channel to this appliance's LDAP or
// SMTP listener, and refuses every other destination (RFC 4254 §7.2).
func (a *Agent) serveTunnel(nc ssh.NewChannel, role, device string, remote net.Addr) {
	dest, ok := directTCPIPDest(nc)
	if !ok {
		return
	}
	var serve func(net.Conn)
	switch {
	case dest == a.cfg.LDAPAddr && role == roleFrontend:
		// a frontend reads what mail needs, as itself: never userPassword,
		// never the cluster's keys, never a write
		if a.cfg.ServeLDAPRestricted == nil {
			nc.Reject(ssh.Prohibited, "this backend serves no frontends")
			return
		}
		serve = func(c net.Conn) { a.cfg.ServeLDAPRestricted(c, memberDN(a.cfg.Store.Suffix(), device)) }
	case dest == a.cfg.LDAPAddr && a.cfg.ServeLDAP != nil:
		// Pre-authenticated: the SSH layer has authenticated the member,
		// so the tunnel is bound as the LDAP root (what a replication
		// consumer needs: every attribute, every entry) and no password
		// is shared between members.
		serve = func(c net.Conn) { a.cfg.ServeLDAP(c, a.cfg.RootDN) }
	case dest == a.cfg.SMTPAddr && a.cfg.ServeInjected != nil:
		serve = func(c net.Conn) { a.cfg.ServeInjected(c, device) }
	default:
		a.log.Warn("cluster: tunnel refused", slog.String("member", device), slog.String("destination", dest))
		nc.Reject(ssh.Prohibited, "destination not allowed: "+dest)
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	serve(channelConn(ch, a.cfg.LDAPAddr, remote))
}

// channelConn bridges an SSH channel to a net.Conn with working deadlines
// (the LDAP and SMTP servers rely on them) through net.Pipe.
func channelConn(ch ssh.Channel, local string, remote net.Addr) net.Conn {
	inner, outer := net.Pipe()
	go func() {
		io.Copy(ch, inner)
		ch.CloseWrite()
		ch.Close()
	}()
	go func() {
		io.Copy(inner, ch)
		inner.Close()
	}()
	la, _ := net.ResolveTCPAddr("tcp", local)
	return &addrConn{Conn: outer, local: la, remote: remote}
}

type addrConn struct {
	net.Conn
	local  net.Addr
	remote net.Addr
}

func (c *addrConn) LocalAddr() net.Addr {
	if c.local == nil {
		return c.Conn.LocalAddr()
	}
	return c.local
}
func (c *addrConn) RemoteAddr() net.Addr { return c.remote }

// InjectAllowed reports whether member may inject mail on this appliance:
// its record must list this device (Allow mail injection).
func (a *Agent) InjectAllowed(member string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	members, err := readMembers(ctx, a.cfg.Store)
	if err != nil {
		return false
	}
	for _, m := range members {
		if m.DeviceID == member {
			for _, t := range m.InjectTo {
				if strings.EqualFold(t, a.cfg.DeviceID) {
					return true
				}
			}
		}
	}
	return false
}
