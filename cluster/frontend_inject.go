package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// A frontend has no cluster listener of its own for replication: it asks.
// It does serve one thing on its cluster address: the SMTP injection
// tunnels of the backends its admin allowed ("Allow mail injection",
// Allowed frontend systems, e.g. backends sending outbound mail through
// the DMZ). Only the device keys of the cluster's backends, as its
// backends' hellos list them, authenticate; only direct-tcpip to the SMTP
// listener opens (RFC 4254 §7.2); the SMTP gateway's InjectAllowed then
// asks InjectAllowed below.

// Serve accepts the backends' SSH connections on l until Close: their
// tunnels to smtpAddr, this frontend's SMTP listener, are handed to
// injected (the SMTP gateway's ServeInjected). It returns nil after Close,
// else the accept error that ended it.
func (f *Frontend) Serve(l net.Listener, smtpAddr string, injected func(c net.Conn, member string)) error {
	f.mu.Lock()
	if f.ctx.Err() != nil {
		f.mu.Unlock()
		return nil
	}
	f.lis, f.smtpAddr, f.injected = l, smtpAddr, injected
	if f.conns == nil {
		f.conns = map[*ssh.ServerConn]struct{}{}
	}
	f.mu.Unlock()
	cfg := &ssh.ServerConfig{PublicKeyCallback: f.authenticate, ServerVersion: "SSH-2.0-Postern"}
	cfg.AddHostKey(f.key)
	for {
		c, err := l.Accept()
		if err != nil {
			if f.ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && (ne.Timeout() || ne.Temporary()) {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return fmt.Errorf("cluster: accept: %w", err)
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.serveConn(c, cfg)
		}()
	}
}

// backendBriefs is the cluster's backends as the backends' hellos list
// them, the newest hello first (a backend's record as a backend that
// answered last sees it).
func (f *Frontend) backendBriefs() []MemberBrief {
	f.mu.Lock()
	links := make([]*backendLink, 0, len(f.backends))
	for _, l := range f.backends {
		links = append(links, l)
	}
	f.mu.Unlock()
	type hello struct {
		h  *PeerInfo
		at time.Time
	}
	var hs []hello
	for _, l := range links {
		l.mu.Lock()
		if l.hello != nil {
			hs = append(hs, hello{l.hello, l.helloAt})
		}
		l.mu.Unlock()
	}
	slices.SortFunc(hs, func(a, b hello) int { return b.at.Compare(a.at) })
	var out []MemberBrief
	seen := map[string]bool{}
	for _, h := range hs {
		for _, m := range h.h.Members {
			if m.Role != roleFrontend && !seen[m.DeviceID] {
				seen[m.DeviceID] = true
				out = append(out, m)
			}
		}
	}
	return out
}

func (f *Frontend) authenticate(cm ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	for _, m := range f.backendBriefs() {
		if pk, err := parseKey(m.DeviceKey); err == nil && keysEqual(pk, key) {
			return &ssh.Permissions{Extensions: map[string]string{"device": m.DeviceID}}, nil
		}
	}
	fp := ssh.FingerprintSHA256(key)
	f.log.Warn("cluster: key refused", slog.String("ip", addrIP(cm.RemoteAddr()).String()), slog.String("key", fp), slog.String("reason", "not a backend's device key"))
	return nil, fmt.Errorf("cluster: key %s refused: not a backend's device key", fp)
}

// InjectAllowed reports whether the backend member may inject mail on
// this frontend: its record lists this frontend (Allow mail injection).
func (f *Frontend) InjectAllowed(member string) bool {
	for _, m := range f.backendBriefs() {
		if m.DeviceID == member {
			return slices.ContainsFunc(m.InjectTo, func(t string) bool { return strings.EqualFold(t, f.cfg.DeviceID) })
		}
	}
	return false
}

func (f *Frontend) serveConn(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	f.mu.Lock()
	if f.ctx.Err() != nil {
		f.mu.Unlock()
		sc.Close()
		return
	}
	f.conns[sc] = struct{}{}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.conns, sc)
		f.mu.Unlock()
	}()
	go ssh.DiscardRequests(reqs)
	device := sc.Permissions.Extensions["device"]
	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		if nc.ChannelType() != "direct-tcpip" {
			nc.Reject(ssh.UnknownChannelType, "a frontend offers only its SMTP listener to its backends")
			continue
		}
		dest, ok := directTCPIPDest(nc)
		if !ok {
			continue
		}
		if dest != f.smtpAddr || f.smtpAddr == "" {
			f.log.Warn("cluster: tunnel refused", slog.String("member", device), slog.String("destination", dest))
			nc.Reject(ssh.Prohibited, "destination not allowed: "+dest)
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go ssh.DiscardRequests(creqs)
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.injected(channelConn(ch, f.smtpAddr, sc.RemoteAddr()), device)
		}()
	}
}
