package cluster

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/ssh"

	"postern/firmware"
	"postern/ldapstore"
	"postern/ldapstore/csn"
)

// Config configures an Agent. Zero values get the documented defaults.
type Config struct {
	DataDir  string           // machine-local files: host key, cluster.json (required)
	Store    *ldapstore.Store // the replicated tree (required)
	DeviceID string           // this appliance's Device ID (required)
	UUID     string           // this appliance's UUID (required)
	RootDN   string           // LDAP identity of tunnelled replication connections (required)

	// ServeLDAP serves one tunnelled LDAP connection pre-authenticated as
	// boundDN ((*server.Server).ServeConn). nil refuses LDAP tunnels.
	ServeLDAP func(c net.Conn, boundDN string) error
	// ServeLDAPRestricted serves one tunnelled LDAP connection of a
	// frontend, bound as its member record's DN in a read-only session of
	// limited sight ((*server.Server).ServeConnRestricted). nil: this
	// backend serves no frontends.
	ServeLDAPRestricted func(c net.Conn, boundDN string) error
	// ServeInjected serves the SMTP connections a member injects through
	// its tunnel ((*smtp.Gateway).ServeInjected). nil refuses them.
	ServeInjected func(c net.Conn, member string)
	// LDAPAddr and SMTPAddr are this appliance's bound LDAP and SMTP
	// listeners: the only direct-tcpip destinations the SSH server opens.
	LDAPAddr, SMTPAddr string

	// Local returns the machine-local settings shown in member records
	// (read at every heartbeat, so `postern system set` shows up).
	Local func() Local
	// NewLink makes the replication consumer of one peer (package
	// replication through appliance). nil: no replication (status only).
	NewLink func(LinkConfig) Link
	// CopiedCookie is the replication cookie, and its key, of the link to
	// peer (Cluster No. rid) in a store that has just copied the peer's
	// tree as of its context CSN seen: stored with a join's copy, so that
	// the link starts from there (replication.CopiedCookie). nil: the
	// link's first session refreshes in full.
	CopiedCookie func(peer string, rid int, seen csn.Vector) (key, cookie string)
	// Call runs an appliance operation a member asks for (CallAll): op
	// names it ("queue.list", "queue.flush"), the answer is sent as JSON.
	// nil: members cannot call.
	Call func(ctx context.Context, op string, arg json.RawMessage) (any, error)
	// FrontendOps are the Call operations frontends may ask for (the key
	// operations of secure mail, say); every other one is members' only.
	FrontendOps []string

	Version   string        // firmware version; default firmware.Version
	Heartbeat time.Duration // member record refresh and peer check; default 15 s
	MaxOffset time.Duration // largest NTP clock offset accepted; default 1 s
	// LockTTL is how long a join lock lives without renewal (a crashed
	// joiner's lock expires); default 5 min.
	LockTTL time.Duration
	// CheckInterval is how often each peer's directory is compared with
	// this one (context CSNs and digests, check.go); default 2×Heartbeat.
	CheckInterval time.Duration
	// ClockSkew is how far this process's clock is set ahead of the
	// machine's (tests only: an injectable clock, as the store's
	// Options.Now); NTP offsets are measured against the skewed clock.
	ClockSkew time.Duration

	// Secrets moves the backends' machine-local secrets (secrets.go); nil:
	// none.
	Secrets *Secrets

	Registry *prometheus.Registry // nil: no metrics
	Logger   *slog.Logger         // default discards
}

// Local is the machine-local part of a member record.
type Local struct {
	Hostname, Comment, Location, NTPServer string
}

// LinkConfig is what a replication link to one peer needs.
type LinkConfig struct {
	Peer   string // the peer's Device ID
	RID    int    // replica ID, 1..999: the peer's Cluster No.
	Dial   func(ctx context.Context) (net.Conn, error)
	Paused func() (bool, string) // firmware parity: while true, no sync
}

// Link is one running replication consumer.
type Link interface {
	Run(ctx context.Context) error
	Status() LinkStatus
}

// LinkStatus is a replication link's state as the cluster tables show it.
type LinkStatus struct {
	OK            bool
	Text          string // "OK (N entries in remote database, N entries in local database)" or the error
	RemoteEntries int
	LocalEntries  int
	Lag           time.Duration
	Since         time.Time // when the link entered its current state
}

// Errors of the agent.
var (
	ErrNotMember     = errors.New("cluster: this device is not a cluster member")
	ErrAlreadyMember = errors.New("cluster: this device is already a cluster member")
	ErrClosed        = errors.New("cluster: agent closed")
)

// state is cluster.json: the machine-local cluster membership.
type state struct {
	ClusterUUID string    `json:"cluster_uuid"`
	ClusterNo   int       `json:"cluster_no"`
	Addr        string    `json:"addr"` // this member's cluster address
	Joined      time.Time `json:"joined"`
}

const (
	stateFile   = "cluster.json"
	hostKeyFile = "ssh_host_ed25519_key"
)

// Agent is the cluster agent of one appliance.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	hostKey ssh.Signer
	sshCfg  *ssh.ServerConfig
	met     *metrics

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // wakes the heartbeat loop

	joinMu sync.Mutex // one join/leave/prepare at a time on this device

	mu        sync.Mutex
	closed    bool
	st        *state
	peers     map[string]*peer           // by Device ID
	conns     map[*ssh.ServerConn]string // inbound, → Device ID ("" for joiners)
	lis       net.Listener
	lock      *joinLock // held when this member coordinates joins
	allocated int       // highest Cluster No. handed out here
	ntp       ntpCache
	// lastCompare is the last `cluster compare` (compare.go)
	lastCompare *CompareReport
	// removedNote says why this device turned standalone when a member
	// told it it had been removed (ops.go)
	removedNote string
	// lostKey is the device key the cluster knows when this device's key
	// file was lost and made anew (rekey.go); "" when they agree
	lostKey string
}

// New loads (or makes) the host key and the membership state. Start
// serves.
func New(cfg Config) (*Agent, error) {
	if cfg.DataDir == "" || cfg.Store == nil || cfg.DeviceID == "" || cfg.UUID == "" {
		return nil, errors.New("cluster: Config needs DataDir, Store, DeviceID and UUID")
	}
	if cfg.Version == "" {
		cfg.Version = firmware.Version
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.MaxOffset <= 0 {
		cfg.MaxOffset = time.Second
	}
	if cfg.LockTTL <= 0 {
		cfg.LockTTL = 5 * time.Minute
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = 2 * cfg.Heartbeat
	}
	if cfg.Local == nil {
		cfg.Local = func() Local { return Local{} }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, peers: map[string]*peer{}, conns: map[*ssh.ServerConn]string{},
		kick: make(chan struct{}, 1)}
	var err error
	if a.hostKey, err = loadOrCreateHostKey(filepath.Join(cfg.DataDir, hostKeyFile)); err != nil {
		return nil, err
	}
	if a.st, err = loadState(cfg.DataDir); err != nil {
		return nil, err
	}
	if a.st != nil && cfg.Store.ServerID() != a.st.ClusterNo {
		if err := cfg.Store.SetServerID(a.st.ClusterNo); err != nil {
			return nil, err
		}
	}
	a.sshCfg = a.serverConfig()
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.met = newMetrics(a, cfg.Registry)
	return a, nil
}

// Serve accepts cluster SSH connections on l and runs the heartbeat loop
// until Close.
func (a *Agent) Serve(l net.Listener) error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return ErrClosed
	}
	a.lis = l
	a.wg.Add(3)
	a.mu.Unlock()
	// the clock first: a member whose clock is off must not stamp even its
	// first heartbeat record with it
	a.refreshNTP(a.cfg.Local().NTPServer)
	a.checkOwnKey(a.ctx)
	a.checkOwnAddr(a.ctx)
	go func() {
		defer a.wg.Done()
		a.heartbeatLoop()
	}()
	go func() {
		defer a.wg.Done()
		a.ntpLoop()
	}()
	go func() {
		defer a.wg.Done()
		a.checkLoop()
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			if a.ctx.Err() != nil {
				return nil
			}
			// A timeout, ECONNABORTED or no descriptor left (EMFILE,
			// ENFILE) is temporary: wait it out as net/http does instead of
			// ending the listener (issue 9, item 9).
			var ne net.Error
			if errors.As(err, &ne) && (ne.Timeout() || ne.Temporary()) {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return fmt.Errorf("cluster: accept: %w", err)
		}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.serveConn(c)
		}()
	}
}

// Close stops serving, closes every tunnel and link, and waits for them.
func (a *Agent) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	a.cancel()
	if a.lis != nil {
		a.lis.Close()
	}
	for c := range a.conns {
		c.Close()
	}
	peers := a.peers
	a.peers = map[string]*peer{}
	a.mu.Unlock()
	for _, p := range peers {
		p.stop()
	}
	a.wg.Wait()
	a.met.unregister()
	return nil
}

// HostKey returns this appliance's SSH host (device) public key.
func (a *Agent) HostKey() ssh.PublicKey { return a.key().PublicKey() }

// Member reports whether this appliance is a member of a cluster.
func (a *Agent) Member() bool { return a.state() != nil }

// key returns this appliance's SSH host (device) key.
func (a *Agent) key() ssh.Signer {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hostKey
}

// serverCfg returns the SSH server configuration (it changes with the key).
func (a *Agent) serverCfg() *ssh.ServerConfig {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sshCfg
}

func (a *Agent) state() *state {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st == nil {
		return nil
	}
	s := *a.st
	return &s
}

func (a *Agent) setState(s *state) error {
	p := filepath.Join(a.cfg.DataDir, stateFile)
	if s == nil {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cluster: %w", err)
		}
	} else {
		b, _ := json.MarshalIndent(s, "", "  ")
		if err := writeFileAtomic(p, b, 0o600); err != nil {
			return err
		}
	}
	a.mu.Lock()
	a.st = s
	a.mu.Unlock()
	return nil
}

func loadState(dir string) (*state, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: read %s: %w", stateFile, err)
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil || s.ClusterNo < 1 {
		return nil, fmt.Errorf("cluster: %s is damaged: %v", stateFile, err)
	}
	return &s, nil
}

// loadOrCreateHostKey reads the machine-local ed25519 host key, making it
// on the first start. It is this member's device key too.
func loadOrCreateHostKey(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		s, err := ssh.ParsePrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("cluster: host key %s is damaged: %w", path, err)
		}
		return s, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cluster: read host key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	blk, err := ssh.MarshalPrivateKey(priv, "postern host key")
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		return nil, err
	}
	return ssh.NewSignerFromKey(priv)
}

// writeFileAtomic writes via a temporary file, fsync and rename.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("cluster: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err = tmp.Write(data); err == nil {
		if err = tmp.Chmod(mode); err == nil {
			err = tmp.Sync()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("cluster: write %s: %w", path, err)
	}
	return nil
}

// wake makes the heartbeat loop run now.
func (a *Agent) wake() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}
