package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/ssh"

	"postern/firmware"
)

// Frontend is the cluster agent of a frontend member: an appliance without
// a local database (seed: "Add this device as frontend server"). It keeps
// an SSH connection to each of its backends (its "Remote LDAP servers", in
// the order the admin gave), sends them heartbeats carrying its record,
// and hands out tunnels to the backend in use: the first of the list that
// answers; when it stops answering the next one is used within seconds,
// and the first again once it has answered for FailbackAfter (no
// flapping). It keeps no directory data: frontend.json holds its backends'
// addresses and host keys, which are machine-local.
type Frontend struct {
	cfg FrontendConfig
	log *slog.Logger
	key ssh.Signer
	met *frontendMetrics

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	st       frontendState
	backends map[string]*backendLink // by Device ID
	inUse    string                  // Device ID of the backend in use
	changed  chan struct{}           // closed and replaced when inUse changes
	kick     chan struct{}           // a link's state changed: choose again now
	lis      net.Listener            // the injection listener (Serve)
	conns    map[*ssh.ServerConn]struct{}
	smtpAddr string // where injection tunnels go (Serve)
	injected func(c net.Conn, member string)
}

// FrontendConfig configures a Frontend.
type FrontendConfig struct {
	DataDir  string // frontend.json and the host key (required)
	DeviceID string
	UUID     string
	// LDAPAddr and SMTPAddr are this appliance's listeners (its hello).
	LDAPAddr, SMTPAddr string
	Local              func() Local
	Version            string        // firmware version; default firmware.Version
	Heartbeat          time.Duration // default 15 s
	// FailbackAfter is how long the first backend must answer again before
	// lookups go back to it; default 10 s.
	FailbackAfter time.Duration
	Registry      *prometheus.Registry
	Logger        *slog.Logger
}

// frontendState is frontend.json.
type frontendState struct {
	ClusterUUID string        `json:"cluster_uuid"`
	Addr        string        `json:"addr"` // this frontend's cluster address
	Backends    []backendInfo `json:"backends"`
	InjectTo    []string      `json:"inject_to,omitempty"`
	Attached    time.Time     `json:"attached"`
}

// backendInfo is one of a frontend's backends.
type backendInfo struct {
	DeviceID  string `json:"device_id"`
	ClusterNo int    `json:"cluster_no"`
	Addr      string `json:"addr"`
	HostKey   string `json:"host_key"` // authorized_keys form, pinned
}

// FrontendStateFile is the frontend's machine-local membership file; an
// appliance whose data directory holds it runs as a frontend.
const FrontendStateFile = "frontend.json"

// IsFrontend reports whether the appliance of dataDir is a frontend.
func IsFrontend(dataDir string) bool {
	_, err := os.Stat(filepath.Join(dataDir, FrontendStateFile))
	return err == nil
}

func loadFrontendState(dir string) (frontendState, error) {
	var st frontendState
	b, err := os.ReadFile(filepath.Join(dir, FrontendStateFile))
	if err != nil {
		return st, fmt.Errorf("cluster: read %s: %w", FrontendStateFile, err)
	}
	if err := json.Unmarshal(b, &st); err != nil || len(st.Backends) == 0 {
		return st, fmt.Errorf("cluster: %s is damaged: %v", FrontendStateFile, err)
	}
	return st, nil
}

func saveFrontendState(dir string, st frontendState) error {
	b, _ := json.MarshalIndent(st, "", "  ")
	return writeFileAtomic(filepath.Join(dir, FrontendStateFile), b, 0o600)
}

// NewFrontend loads the host key and frontend.json.
func NewFrontend(cfg FrontendConfig) (*Frontend, error) {
	if cfg.Version == "" {
		cfg.Version = firmwareVersion()
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.FailbackAfter <= 0 {
		cfg.FailbackAfter = 10 * time.Second
	}
	if cfg.Local == nil {
		cfg.Local = func() Local { return Local{} }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Frontend{cfg: cfg, log: cfg.Logger, backends: map[string]*backendLink{}, changed: make(chan struct{}), kick: make(chan struct{}, 1)}
	var err error
	if f.key, err = loadOrCreateHostKey(filepath.Join(cfg.DataDir, hostKeyFile)); err != nil {
		return nil, err
	}
	if f.st, err = loadFrontendState(cfg.DataDir); err != nil {
		return nil, err
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.met = newFrontendMetrics(f, cfg.Registry)
	return f, nil
}

// Start connects to the backends and starts the heartbeats.
func (f *Frontend) Start() {
	f.mu.Lock()
	for _, b := range f.st.Backends {
		f.startBackend(b)
	}
	f.mu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		f.loop()
	}()
}

// Close stops every connection and waits for them.
func (f *Frontend) Close() error {
	f.cancel()
	f.mu.Lock()
	if f.lis != nil {
		f.lis.Close()
	}
	for c := range f.conns {
		c.Close()
	}
	links := make([]*backendLink, 0, len(f.backends))
	for _, l := range f.backends {
		links = append(links, l)
	}
	f.mu.Unlock()
	for _, l := range links {
		l.stop()
	}
	f.wg.Wait()
	f.met.unregister()
	return nil
}

// HostKey returns this frontend's device key.
func (f *Frontend) HostKey() ssh.PublicKey { return f.key.PublicKey() }

// startBackend starts the link to one backend (f.mu held).
func (f *Frontend) startBackend(b backendInfo) {
	ctx, cancel := context.WithCancel(f.ctx)
	l := &backendLink{f: f, info: b, cancel: cancel, done: make(chan struct{}), changed: make(chan struct{})}
	f.backends[b.DeviceID] = l
	go func() {
		defer close(l.done)
		l.run(ctx)
	}()
}

// record is this frontend's member record as it sends it.
func (f *Frontend) record() MemberInfo {
	loc := f.cfg.Local()
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]string, 0, len(f.st.Backends))
	for _, b := range f.st.Backends {
		ids = append(ids, b.DeviceID)
	}
	return MemberInfo{
		DeviceID: f.cfg.DeviceID, UUID: f.cfg.UUID, Role: roleFrontend, Hostname: loc.Hostname, Addr: f.st.Addr,
		Comment: loc.Comment, Location: loc.Location, Version: f.cfg.Version, NTPServer: loc.NTPServer,
		DeviceKey:   string(trimNL(ssh.MarshalAuthorizedKey(f.key.PublicKey()))),
		Fingerprint: ssh.FingerprintSHA256(f.key.PublicKey()),
		LastUpdate:  time.Now().UTC().Truncate(time.Second),
		BackendOf:   ids, InjectTo: slices.Clone(f.st.InjectTo),
	}
}

// loop sends heartbeats and picks the backend in use.
func (f *Frontend) loop() {
	t := time.NewTicker(min(f.cfg.Heartbeat, time.Second))
	defer t.Stop()
	var lastBeat time.Time
	for {
		f.choose()
		if time.Since(lastBeat) >= f.cfg.Heartbeat {
			lastBeat = time.Now()
			f.beat()
		}
		select {
		case <-f.ctx.Done():
			return
		case <-t.C:
		case <-f.kick:
		}
	}
}

// rechoose asks the loop to pick the backend in use again now (a link
// came up or went down).
func (f *Frontend) rechoose() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// current returns the link of the backend in use, waiting for one until
// ctx ends (ErrNoBackend then).
func (f *Frontend) current(ctx context.Context) (*backendLink, string, error) {
	for {
		id, ch := f.InUse()
		f.mu.Lock()
		l := f.backends[id]
		f.mu.Unlock()
		if l != nil {
			return l, id, nil
		}
		select {
		case <-ctx.Done():
			return nil, "", ErrNoBackend
		case <-ch:
		}
	}
}

// beat sends this frontend's record to every backend; the one in use
// writes it.
func (f *Frontend) beat() {
	rec := f.record()
	f.mu.Lock()
	links := make([]*backendLink, 0, len(f.backends))
	for _, l := range f.backends {
		links = append(links, l)
	}
	inUse := f.inUse
	f.mu.Unlock()
	var wg sync.WaitGroup
	for _, l := range links {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(f.ctx, 5*time.Second)
			defer cancel()
			r := rec
			ans, err := l.call(ctx, &Message{Type: msgHeartbeat, Member: &r, Record: l.info.DeviceID == inUse})
			if err != nil {
				l.setErr(err)
				return
			}
			if ans.Peer != nil {
				if ans.Peer.Removed != "" {
					l.setErr(errors.New(ans.Peer.Removed))
					return
				}
				l.setHello(ans.Peer)
			}
		}()
	}
	wg.Wait()
	f.learnBackends()
}

// learnBackends takes a backend's new cluster address or device key from
// what the backends that answer say of it (a member that moved announces
// its address to the others, `cluster readdress`; `cluster rekey`
// replaces its key): the frontend's list follows instead of dialling the
// old address for good. The backends that say so are the ones whose keys
// this frontend pinned, the same trust as `backend add`.
func (f *Frontend) learnBackends() {
	briefs := f.backendBriefs()
	st := f.state()
	var moved []backendInfo
	for i, b := range st.Backends {
		for _, m := range briefs {
			if m.DeviceID != b.DeviceID || m.Addr == "" || m.DeviceKey == "" {
				continue
			}
			if m.Addr != b.Addr || m.DeviceKey != b.HostKey {
				f.log.Warn("cluster: a backend's cluster address or key changed; following it", slog.String("backend", b.DeviceID),
					slog.String("was", b.Addr), slog.String("now", m.Addr))
				st.Backends[i].Addr, st.Backends[i].HostKey = m.Addr, m.DeviceKey
				moved = append(moved, st.Backends[i])
			}
		}
	}
	if len(moved) == 0 {
		return
	}
	if err := f.setState(st); err != nil {
		f.log.Error("cluster: save the backends' new addresses", slog.Any("err", err))
		return
	}
	for _, b := range moved {
		f.mu.Lock()
		old := f.backends[b.DeviceID]
		delete(f.backends, b.DeviceID)
		f.mu.Unlock()
		if old != nil {
			old.stop()
		}
		f.mu.Lock()
		if f.ctx.Err() == nil {
			f.startBackend(b)
		}
		f.mu.Unlock()
	}
	f.rechoose()
}

// choose picks the backend in use: the current one while it answers,
// else the first in the list that does; an earlier one of the list takes
// over again only once it has answered for FailbackAfter (no flapping).
func (f *Frontend) choose() {
	f.mu.Lock()
	defer f.mu.Unlock()
	cur := f.inUse
	curOK := f.backends[cur] != nil && f.backends[cur].healthy()
	pick := ""
	for _, b := range f.st.Backends {
		l := f.backends[b.DeviceID]
		if l == nil || !l.healthy() {
			continue
		}
		if b.DeviceID == cur || !curOK || l.healthyFor(f.cfg.FailbackAfter) {
			pick = b.DeviceID
			break
		}
	}
	if pick == "" && curOK {
		pick = cur
	}
	if pick != cur {
		f.log.Warn("cluster: frontend switches backend", slog.String("from", cur), slog.String("to", pick))
		f.inUse = pick
		f.met.switches.Inc()
		close(f.changed)
		f.changed = make(chan struct{})
	}
}

// InUse returns the Device ID of the backend in use ("" when none answers)
// and a channel closed when that changes.
func (f *Frontend) InUse() (string, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inUse, f.changed
}

// callWait bounds how long Call waits for a backend to be in use.
const callWait = 5 * time.Second

// ErrNoBackend is returned while no backend of a frontend answers.
var ErrNoBackend = errors.New("cluster: no backend of this frontend answers")

// DialLDAP opens a tunnel to the LDAP listener of the backend in use: a
// read-only session of limited sight, bound as this frontend.
func (f *Frontend) DialLDAP(ctx context.Context) (net.Conn, string, error) {
	l, id, err := f.current(ctx)
	if err != nil {
		return nil, "", err
	}
	c, err := l.dial(ctx, func(h *PeerInfo) string { return h.LDAP })
	return c, id, err
}

// DialSMTP opens a tunnel to backend's SMTP listener (mail injection; the
// backend's ACL decides).
func (f *Frontend) DialSMTP(ctx context.Context, backend string) (net.Conn, error) {
	f.mu.Lock()
	l := f.backends[backend]
	f.mu.Unlock()
	if l == nil {
		return nil, fmt.Errorf("cluster: %s is not a backend of this frontend", backend)
	}
	return l.dial(ctx, func(h *PeerInfo) string { return h.SMTP })
}

// Call runs a member operation on the backend in use (the key operations
// of secure mail: the private key of a message's address, in memory).
func (f *Frontend) Call(ctx context.Context, op string, arg json.RawMessage) (json.RawMessage, error) {
	// a backend that takes over comes within seconds; past that the
	// caller is told ErrNoBackend (the gateway then answers 4xx) instead
	// of waiting as long as its own context allows
	wctx, cancel := context.WithTimeout(ctx, callWait)
	l, _, err := f.current(wctx)
	cancel()
	if err != nil {
		return nil, err
	}
	ans, err := l.call(ctx, &Message{Type: msgCall, Op: op, Arg: arg})
	if err != nil {
		return nil, err
	}
	return ans.Result, nil
}

// firmwareVersion is the build's firmware version.
func firmwareVersion() string { return firmware.Version }

func (f *Frontend) state() frontendState {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.st
	s.Backends = slices.Clone(f.st.Backends)
	return s
}

func (f *Frontend) setState(st frontendState) error {
	if err := saveFrontendState(f.cfg.DataDir, st); err != nil {
		return err
	}
	f.mu.Lock()
	f.st = st
	f.mu.Unlock()
	return nil
}

// localAddr is this frontend's cluster IP, the source of its connections.
func (f *Frontend) dialer() net.Dialer {
	d := net.Dialer{Timeout: handshakeTimeout}
	if ap, err := netip.ParseAddrPort(f.state().Addr); err == nil {
		d.LocalAddr = &net.TCPAddr{IP: ap.Addr().AsSlice()}
	}
	return d
}
