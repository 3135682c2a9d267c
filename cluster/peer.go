package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// peer is this member's connection to one other backend: an SSH client
// (redialled with capped backoff, kept alive), heartbeats over the control
// channel and the replication link through its tunnel.
type peer struct {
	a      *Agent
	id     string
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	rec      MemberInfo
	client   *ssh.Client
	hello    *PeerInfo // last heartbeat answer
	helloAt  time.Time
	lastErr  string
	errAt    time.Time // when lastErr was seen
	lastOK   time.Time
	check    PeerCheck // the last consistency check (check.go)
	link     Link
	changed  chan struct{} // closed and replaced when client changes
	linkDone chan struct{}
}

// A peer that is down is redialled every 2 s at most: a member back from
// a restart is OK again within 2 s (a TCP connect every 2 s costs nothing).
const (
	redialMin = 250 * time.Millisecond
	redialMax = 2 * time.Second
)

func (a *Agent) startPeer(rec MemberInfo) *peer {
	ctx, cancel := context.WithCancel(a.ctx)
	p := &peer{a: a, id: rec.DeviceID, rec: rec, cancel: cancel, done: make(chan struct{}), changed: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.run(ctx)
	}()
	if a.cfg.NewLink != nil {
		p.link = a.cfg.NewLink(LinkConfig{Peer: rec.DeviceID, RID: rec.ClusterNo, Dial: p.dialLDAP, Paused: p.paused})
		p.linkDone = make(chan struct{})
		go func() {
			defer close(p.linkDone)
			p.link.Run(ctx)
		}()
	}
	return p
}

func (p *peer) stop() {
	p.cancel()
	<-p.done
	if p.linkDone != nil {
		<-p.linkDone
	}
}

func (p *peer) record() MemberInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rec
}

func (p *peer) setRecord(r MemberInfo) {
	p.mu.Lock()
	p.rec = r
	p.mu.Unlock()
}

// run keeps an SSH connection to the peer, redialling with capped
// exponential backoff.
func (p *peer) run(ctx context.Context) {
	backoff := redialMin
	for ctx.Err() == nil {
		c, err := p.a.dialMember(ctx, p.record().Addr, p.record().DeviceKey, p.a.key())
		if err != nil {
			p.setErr(err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, redialMax)
			continue
		}
		backoff = redialMin
		p.mu.Lock()
		p.client = c
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
		p.a.wake()
		stopKA := keepAlive(ctx, c)
		err = c.Wait()
		stopKA()
		p.mu.Lock()
		p.client = nil
		p.mu.Unlock()
		if ctx.Err() == nil {
			p.setErr(fmt.Errorf("connection lost: %v", err))
		}
	}
}

func (p *peer) setErr(err error) {
	p.mu.Lock()
	p.lastErr, p.errAt = describeDialErr(err), time.Now()
	p.mu.Unlock()
}

// conn returns the live SSH client, waiting up to ctx for one.
func (p *peer) conn(ctx context.Context) (*ssh.Client, error) {
	for {
		p.mu.Lock()
		c, ch, lastErr := p.client, p.changed, p.lastErr
		p.mu.Unlock()
		if c != nil {
			return c, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			if lastErr == "" {
				lastErr = "not connected"
			}
			return nil, errors.New(lastErr)
		}
	}
}

// knownDown reports the error of a peer that is not connected and has
// failed since (nil while it is connected or still being dialled for the
// first time): a call to every member answers for it at once.
func (p *peer) knownDown() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil || p.lastErr == "" {
		return nil
	}
	return fmt.Errorf("%s (since %s)", p.lastErr, p.errAt.UTC().Format("2006-01-02 15:04:05Z"))
}

// call sends one control request and returns its answer.
func (p *peer) call(ctx context.Context, m *Message) (*Message, error) {
	c, err := p.conn(ctx)
	if err != nil {
		return nil, err
	}
	return callClient(ctx, c, m)
}

// dialLDAP opens a tunnel to the peer's LDAP listener (the replication
// consumer's transport).
func (p *peer) dialLDAP(ctx context.Context) (net.Conn, error) {
	c, err := p.conn(ctx)
	if err != nil {
		return nil, err
	}
	// a fresh hello on every connect: a peer upgraded since its last
	// heartbeat is paused before its first session, not after it
	hello, err := callClient(ctx, c, &Message{Type: msgHello})
	if err != nil {
		return nil, err
	}
	if hello.Peer == nil {
		return nil, errors.New("cluster: peer sent no hello")
	}
	h := hello.Peer
	if h.Removed != "" {
		go p.a.removedByCluster(p.id, h.Removed)
		return nil, errors.New(h.Removed)
	}
	p.setHello(h)
	if paused, why := p.paused(); paused {
		return nil, errors.New(why)
	}
	return c.DialContext(ctx, "tcp", h.LDAP)
}

func (p *peer) info() *PeerInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hello
}

func (p *peer) setHello(h *PeerInfo) {
	p.mu.Lock()
	p.hello, p.helloAt, p.lastOK, p.lastErr = h, time.Now(), time.Now(), ""
	p.mu.Unlock()
}

// paused is the firmware parity rule of the replication link.
func (p *peer) paused() (bool, string) {
	v := p.record().Version
	if h := p.info(); h != nil {
		v = h.Version
	}
	if v != "" && v != p.a.cfg.Version {
		return true, fmt.Sprintf("paused: firmware %s here, %s there", p.a.cfg.Version, v)
	}
	return false, ""
}

// callClient runs one request on a new control channel.
func callClient(ctx context.Context, c *ssh.Client, m *Message) (*Message, error) {
	ch, reqs, err := c.OpenChannel(ControlChannel, nil)
	if err != nil {
		return nil, fmt.Errorf("cluster: control channel: %w", err)
	}
	go ssh.DiscardRequests(reqs)
	defer ch.Close()
	stop := context.AfterFunc(ctx, func() { ch.Close() })
	defer stop()
	if err := WriteMessage(ch, m); err != nil {
		return nil, err
	}
	ans, err := ReadMessage(ch)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("cluster: no answer: %w", ctx.Err())
		}
		return nil, fmt.Errorf("cluster: control answer: %w", err)
	}
	if ans.Type == msgError {
		return ans, &RemoteError{Msg: ans.Error}
	}
	return ans, nil
}

// RemoteError is an error a member answered with.
type RemoteError struct{ Msg string }

func (e *RemoteError) Error() string { return e.Msg }

// dialMember connects to a member's cluster SSH server from this member's
// cluster IP, pinning its host key (authorized_keys form) and presenting
// signer. The banner of a refusing server is kept in the error.
func (a *Agent) dialMember(ctx context.Context, addr, hostKey string, signer ssh.Signer) (*ssh.Client, error) {
	pk, err := parseKey(hostKey)
	if err != nil {
		return nil, fmt.Errorf("cluster: no usable host key for %s", addr)
	}
	return a.dial(ctx, addr, pk, signer)
}

func (a *Agent) dial(ctx context.Context, addr string, hostKey ssh.PublicKey, signer ssh.Signer) (*ssh.Client, error) {
	d := net.Dialer{Timeout: handshakeTimeout}
	if st := a.state(); st != nil {
		if ap, err := netip.ParseAddrPort(st.Addr); err == nil {
			d.LocalAddr = &net.TCPAddr{IP: ap.Addr().AsSlice()}
		}
	}
	return dialSSH(ctx, d, addr, hostKey, signer)
}

// dialSSH is the client side of every cluster connection.
func dialSSH(ctx context.Context, d net.Dialer, addr string, hostKey ssh.PublicKey, signer ssh.Signer) (*ssh.Client, error) {
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &DialError{Addr: addr, Kind: "unreachable", Err: err}
	}
	var banner strings.Builder
	cfg := &ssh.ClientConfig{
		User: "postern",
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			if !keysEqual(k, hostKey) {
				return &DialError{Addr: addr, Kind: "host key mismatch", Err: fmt.Errorf("it presents %s, expected %s", ssh.FingerprintSHA256(k), ssh.FingerprintSHA256(hostKey))}
			}
			return nil
		},
		BannerCallback:    func(m string) error { banner.WriteString(m); return nil },
		HostKeyAlgorithms: []string{hostKey.Type()},
		Timeout:           handshakeTimeout,
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	nc.SetDeadline(time.Now().Add(handshakeTimeout))
	sc, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	if err != nil {
		nc.Close()
		var de *DialError
		if errors.As(err, &de) {
			return nil, de
		}
		if b := strings.TrimSpace(banner.String()); b != "" {
			return nil, &DialError{Addr: addr, Kind: "refused", Err: errors.New(b)}
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			return nil, &DialError{Addr: addr, Kind: "refused", Err: errors.New("key not accepted (not a current cluster key or member key)")}
		}
		return nil, &DialError{Addr: addr, Kind: "unreachable", Err: err}
	}
	nc.SetDeadline(time.Time{})
	return ssh.NewClient(sc, chans, reqs), nil
}

// DialError is a failure to open a cluster connection.
type DialError struct {
	Addr string
	Kind string // "unreachable", "host key mismatch", "refused"
	Err  error
}

func (e *DialError) Error() string { return fmt.Sprintf("%s: %s: %v", e.Kind, e.Addr, e.Err) }
func (e *DialError) Unwrap() error { return e.Err }

func describeDialErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// heartbeat sends this member's record to the peer and keeps its answer.
func (p *peer) heartbeat(ctx context.Context, self MemberInfo) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ans, err := p.call(ctx, &Message{Type: msgHeartbeat, Member: &self})
	if err != nil {
		p.setErr(err)
		p.a.log.Debug("cluster: heartbeat failed", slog.String("peer", p.id), slog.Any("err", err))
		return
	}
	if ans.Peer != nil && ans.Peer.Removed != "" {
		go p.a.removedByCluster(p.id, ans.Peer.Removed)
		return
	}
	if ans.Peer != nil {
		p.setHello(ans.Peer)
	}
}
