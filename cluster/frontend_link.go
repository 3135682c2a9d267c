package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// backendLink is a frontend's SSH connection to one backend, redialled
// with capped backoff (2 s at most: a backend back from a restart is
// answering again within seconds) and kept alive.
type backendLink struct {
	f      *Frontend
	info   backendInfo
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	client    *ssh.Client
	hello     *PeerInfo
	helloAt   time.Time
	upSince   time.Time // when the current connection answered its first hello
	lastErr   string
	errAt     time.Time
	changed   chan struct{}
	entries   int // posternEntryCount, when measured
	measured  time.Time
	lookupErr string
}

func (l *backendLink) stop() {
	l.cancel()
	<-l.done
}

func (l *backendLink) run(ctx context.Context) {
	backoff := redialMin
	for ctx.Err() == nil {
		pk, err := parseKey(l.info.HostKey)
		var c *ssh.Client
		if err == nil {
			c, err = dialSSH(ctx, l.f.dialer(), l.info.Addr, pk, l.f.key)
		}
		if err == nil {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			var ans *Message
			ans, err = callClient(cctx, c, &Message{Type: msgHello})
			cancel()
			if err == nil && (ans.Peer == nil || ans.Peer.Removed != "") {
				err = errors.New("this frontend is not a member of the backend's cluster any more")
				if ans.Peer != nil {
					err = errors.New(ans.Peer.Removed)
				}
			}
			if err == nil && ans.Peer.Version != l.f.cfg.Version {
				err = fmt.Errorf("paused: firmware %s here, %s there", l.f.cfg.Version, ans.Peer.Version)
			}
			if err == nil {
				l.setHello(ans.Peer)
			} else {
				c.Close()
			}
		}
		if err != nil {
			l.setErr(err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, redialMax)
			continue
		}
		backoff = redialMin
		l.mu.Lock()
		l.client, l.upSince = c, time.Now()
		close(l.changed)
		l.changed = make(chan struct{})
		l.mu.Unlock()
		l.f.rechoose()
		stopKA := keepAlive(ctx, c)
		err = c.Wait()
		stopKA()
		l.mu.Lock()
		l.client = nil
		l.mu.Unlock()
		l.f.rechoose()
		if ctx.Err() == nil {
			l.setErr(fmt.Errorf("connection lost: %v", err))
		}
	}
}

func (l *backendLink) setErr(err error) {
	l.mu.Lock()
	l.lastErr, l.errAt = err.Error(), time.Now()
	l.mu.Unlock()
	l.f.rechoose()
}

func (l *backendLink) setHello(h *PeerInfo) {
	l.mu.Lock()
	l.hello, l.helloAt, l.lastErr = h, time.Now(), ""
	l.mu.Unlock()
	l.f.rechoose()
}

// healthy reports whether the backend answers: connected, with a hello.
func (l *backendLink) healthy() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.client != nil && l.hello != nil && l.lastErr == ""
}

// healthyFor reports whether the backend has answered for at least d.
func (l *backendLink) healthyFor(d time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.client != nil && l.hello != nil && l.lastErr == "" && time.Since(l.upSince) >= d
}

func (l *backendLink) conn(ctx context.Context) (*ssh.Client, *PeerInfo, error) {
	for {
		l.mu.Lock()
		c, h, ch, lastErr := l.client, l.hello, l.changed, l.lastErr
		l.mu.Unlock()
		if c != nil && h != nil {
			return c, h, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			if lastErr == "" {
				lastErr = "not connected"
			}
			return nil, nil, errors.New(lastErr)
		}
	}
}

func (l *backendLink) call(ctx context.Context, m *Message) (*Message, error) {
	c, _, err := l.conn(ctx)
	if err != nil {
		return nil, err
	}
	return callClient(ctx, c, m)
}

// dial opens a tunnel to one of the backend's listeners (addr picks it
// from the hello).
func (l *backendLink) dial(ctx context.Context, addr func(*PeerInfo) string) (net.Conn, error) {
	c, h, err := l.conn(ctx)
	if err != nil {
		return nil, err
	}
	a := addr(h)
	if a == "" {
		return nil, fmt.Errorf("cluster: backend %s offers no such listener", l.info.DeviceID)
	}
	return c.DialContext(ctx, "tcp", a)
}
