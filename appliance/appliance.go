package appliance

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"postern/cluster"
	"postern/firmware"
	"postern/ldapstore"
	"postern/ldapstore/server"
	"postern/smtp"
	"postern/smtp/secure"
)

// Appliance is one running Postern appliance.
type Appliance struct {
	cfg      Config
	log      *slog.Logger
	identity Identity
	lock     *os.File

	mu     sync.Mutex // guards system
	system System

	tlsConfig  *tls.Config
	cert       atomic.Pointer[tls.Certificate] // the machine certificate in force (tls_admin.go)
	adminMu    sync.Mutex                      // guards adminHash after Start
	adminHash  string
	stopReq    chan struct{} // closed by `postern stop`
	stopOnce   sync.Once
	generated  string // the generated admin password, printed once by Start
	freshAdmin bool   // adminHash is new: Start stores it once every listener is up

	registry *prometheus.Registry
	store    *ldapstore.Store
	ldap     *server.Server
	smtp     *smtp.Gateway

	clusterMu sync.Mutex // guards cluster (made in Start, read by SMTP and control)
	cluster   *cluster.Agent

	// a frontend (frontend.go) has these instead of store, ldap and cluster
	fe       *cluster.Frontend
	feDir    *frontendDirectory
	feCancel context.CancelFunc
	proxy    *server.Proxy

	restartReq  chan struct{} // closed when the appliance must be made anew (attach, detach)
	restartOnce sync.Once

	logs    *logRing          // recent log lines for the web menu (logring.go)
	tokens  *tokenStore       // admin API tokens (tokens.go)
	stats   statsHistory      // metrics history for the web menu (stats.go)
	closers []func()          // run first by Close (the web menu, the stats sampler)
	kekMu   sync.Mutex        // guards the key-encryption key file (kek.go)
	secure  *secure.Processor // secure mail, between the queue and delivery

	listeners []net.Listener
	https     []*http.Server
	addrs     map[string]string // listener name → bound address
	started   time.Time
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New opens (or, on the first start, creates) the appliance in
// cfg.DataDir: identity, TLS certificate, admin password, store. It listens
// on nothing until Start.
func New(cfg Config) (a *Appliance, err error) {
	cfg.setDefaults()
	a = &Appliance{cfg: cfg, addrs: map[string]string{}, registry: prometheus.NewRegistry(), stopReq: make(chan struct{}), restartReq: make(chan struct{}), logs: newLogRing(logRingSize)}
	a.log = slog.New(newRingHandler(cfg.Logger.Handler(), a.logs))
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("appliance: data directory: %w", err)
	}
	if err := a.lockDataDir(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			a.lock.Close()
		}
	}()
	if a.identity, _, err = loadOrCreateIdentity(cfg.DataDir); err != nil {
		return nil, err
	}
	if a.system, err = loadSystem(cfg.DataDir); err != nil {
		return nil, err
	}
	if cfg.Hostname != "" || cfg.NTPServer != "" {
		if cfg.Hostname != "" {
			a.system.Hostname = cfg.Hostname
		}
		if cfg.NTPServer != "" {
			a.system.NTPServer = cfg.NTPServer
		}
		if err := saveSystem(cfg.DataDir, a.system); err != nil {
			return nil, err
		}
	}
	cert, err := loadOrCreateCert(cfg.DataDir, a.system.Hostname, listenIPs(cfg))
	if err != nil {
		return nil, err
	}
	a.cert.Store(&cert)
	a.tlsConfig = &tls.Config{GetCertificate: a.machineCert, MinVersion: tls.VersionTLS12}
	if a.tokens, err = loadTokens(cfg.DataDir); err != nil {
		return nil, err
	}
	if a.adminHash, a.generated, a.freshAdmin, err = loadOrCreateAdmin(cfg.DataDir, cfg.AdminPassword); err != nil {
		return nil, err
	}
	if cluster.IsFrontend(cfg.DataDir) {
		if err := a.newFrontendMode(); err != nil {
			return nil, err
		}
		return a, nil
	}
	opts := ldapstore.Options{Suffix: cfg.Suffix, ServerID: 1, Logger: a.log.With("component", "ldapstore")}
	if skew := cfg.ClockSkew; skew != 0 {
		opts.Now = func() time.Time { return time.Now().Add(skew) }
	}
	a.store, err = ldapstore.Open(filepath.Join(cfg.DataDir, storeFile), opts)
	if err != nil {
		return nil, fmt.Errorf("appliance: open store: %w", err)
	}
	if err := a.bootstrapTree(context.Background()); err != nil {
		a.store.Close()
		return nil, err
	}
	a.ldap, err = server.New(server.Config{
		Store:         a.store,
		RootDN:        cfg.AdminDN(),
		RootPassword:  a.adminHash,
		TLSConfig:     a.tlsConfig,
		Logger:        a.log.With("component", "ldap"),
		Registry:      a.registry,
		VendorVersion: firmware.Version,
		// only the root DN reads the cluster's keys and the sealed private
		// keys: not users, not a frontend's session (a frontend gets
		// private keys only through the secure.private member call, one
		// message at a time)
		RootOnly: []string{"posternClusterPublicKey", "posternRevokedKey", "posternJoinLock", "posternAllowedIP", "posternPrivateKey"},
	})
	if err != nil {
		a.store.Close()
		return nil, err
	}
	a.secure, err = secure.New(secure.Config{
		Keys:     &ldapKeys{a: a},
		Hostname: a.system.Hostname,
		Registry: a.registry,
		Logger:   a.log.With("component", "secure"),
	})
	if err != nil {
		a.store.Close()
		return nil, err
	}
	a.smtp, err = smtp.New(smtp.Config{
		Hostname:      a.system.Hostname,
		TLSConfig:     a.tlsConfig,
		DataDir:       filepath.Join(cfg.DataDir, "queue"),
		Directory:     &ldapDirectory{a: a, hasUsers: map[string]cachedBool{}},
		InjectAllowed: a.injectAllowed,
		Processor:     a.secure,
		Registry:      a.registry,
		Logger:        a.log.With("component", "smtp"),
	})
	if err != nil {
		a.store.Close()
		return nil, fmt.Errorf("appliance: open mail queue: %w", err)
	}
	a.registerMetrics()
	return a, nil
}

// StopRequested is closed when `postern stop` asks the appliance to stop
// (the serve command then closes it as on SIGTERM).
func (a *Appliance) StopRequested() <-chan struct{} { return a.stopReq }

// RestartRequested is closed when the appliance changed what it is
// (attached as a frontend, detached from the cluster): the serve command
// closes it and makes it anew in the same process, on the same data.
func (a *Appliance) RestartRequested() <-chan struct{} { return a.restartReq }

func (a *Appliance) requestRestart() {
	a.restartOnce.Do(func() { close(a.restartReq) })
}

// requestStop closes StopRequested once.
func (a *Appliance) requestStop() {
	a.stopOnce.Do(func() { close(a.stopReq) })
}

// lockFree reports whether no appliance holds dir's lock.
func lockFree(dir string) (bool, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR, 0)
	if err != nil {
		return os.IsNotExist(err), err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return false, nil
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return true, nil
}

// lockDataDir takes an exclusive lock on the data directory, so two
// appliances never share one store and queue.
func (a *Appliance) lockDataDir() error {
	f, err := os.OpenFile(filepath.Join(a.cfg.DataDir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("appliance: lock data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		return fmt.Errorf("appliance: data directory %s is in use by another postern (pid %s)", a.cfg.DataDir, string(trimSpace(b[:n])))
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	a.lock = f
	return nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == 0) {
		b = b[:len(b)-1]
	}
	return b
}

func listenIPs(cfg Config) []net.IP {
	var ips []net.IP
	for _, addr := range []string{cfg.LDAPAddr, cfg.LDAPSAddr, cfg.SMTPAddr, cfg.AdminAddr, cfg.ClusterAddr} {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
				ips = append(ips, ip)
			}
		}
	}
	return ips
}

func (a *Appliance) registerMetrics() {
	a.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "postern_ldap_entries", Help: "Live entries in the local directory.",
		}, func() float64 {
			if a.store == nil {
				return 0 // a frontend keeps no directory
			}
			n, _ := a.store.Count(context.Background())
			return float64(n)
		}),
	)
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "postern_info", Help: "Firmware version and identity of this appliance (always 1).",
		ConstLabels: prometheus.Labels{"version": firmware.Version, "device_id": a.identity.DeviceID, "uuid": a.identity.UUID},
	})
	info.Set(1)
	a.registry.MustRegister(info)
}

// Start opens every enabled listener and the control socket, prints what
// it listens on (and, on the first start, the generated admin password),
// and serves until Close.
func (a *Appliance) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	a.started = time.Now()
	if a.fe != nil {
		if err := a.startFrontend(ctx); err != nil {
			return err
		}
	} else {
		if err := a.serveOn("ldap", a.cfg.LDAPAddr, a.ldap.Serve); err != nil {
			return err
		}
		if err := a.serveOn("ldaps", a.cfg.LDAPSAddr, a.ldap.ServeTLS); err != nil {
			return err
		}
	}
	if err := a.serveOn("smtp", a.cfg.SMTPAddr, a.smtp.Serve); err != nil {
		return err
	}
	if enabled(a.cfg.MetricsAddr) {
		l, err := a.listen("metrics", a.cfg.MetricsAddr)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{Registry: a.registry}))
		a.serveHTTP("metrics", l, mux)
	}
	if a.fe == nil {
		if err := a.startCluster(); err != nil {
			return err
		}
	} else if err := a.serveFrontendInjection(); err != nil {
		return err
	}
	if err := a.startControl(); err != nil {
		return err
	}
	if err := a.startAdmin(); err != nil {
		return err
	}
	// every listener is up: now the first start's admin password is
	// stored and, when generated, shown (once)
	if a.freshAdmin {
		if err := storeAdminHash(a.cfg.DataDir, a.adminHash); err != nil {
			return err
		}
		a.freshAdmin = false
	}
	if a.generated != "" {
		fmt.Fprintf(a.cfg.Out, "admin password (shown once): %s\n", a.generated)
		a.generated = ""
	}
	for _, name := range []string{"ldap", "ldaps", "smtp", "cluster", "metrics"} {
		if addr, ok := a.addrs[name]; ok {
			fmt.Fprintf(a.cfg.Out, "%s listening on %s\n", name, addr)
		}
	}
	if u := a.adminURL(); u != "" {
		fmt.Fprintf(a.cfg.Out, "admin menu on %s\n", u)
	}
	fmt.Fprintf(a.cfg.Out, "device %s (%s), firmware %s, data in %s\nready\n",
		a.identity.DeviceID, a.identity.UUID, firmware.Version, a.cfg.DataDir)
	a.log.Info("appliance started", slog.String("device_id", a.identity.DeviceID))
	return nil
}

func (a *Appliance) listen(name, addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("appliance: %s listener: %w", name, err)
	}
	a.listeners = append(a.listeners, l)
	a.addrs[name] = l.Addr().String()
	return l, nil
}

// serveOn listens on addr, unless it is disabled, and runs serve on the
// listener (goServe).
func (a *Appliance) serveOn(name, addr string, serve func(net.Listener) error) error {
	if !enabled(addr) {
		return nil
	}
	l, err := a.listen(name, addr)
	if err != nil {
		return err
	}
	a.goServe(name, func() error { return serve(l) })
	return nil
}

func (a *Appliance) goServe(name string, serve func() error) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := serve(); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("listener stopped", slog.String("listener", name), slog.Any("err", err))
		}
	}()
}

func (a *Appliance) serveHTTP(name string, l net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
	a.https = append(a.https, srv)
	a.goServe(name, func() error { return srv.Serve(l) })
}

// Addr returns the bound address of a listener ("ldap", "ldaps", "smtp",
// "metrics", ...), or "" when it is not listening.
func (a *Appliance) Addr(name string) string { return a.addrs[name] }

// Identity returns this appliance's machine-local identity.
func (a *Appliance) Identity() Identity { return a.identity }

// Store returns the appliance's directory store.
func (a *Appliance) Store() *ldapstore.Store { return a.store }

// Close stops every listener and connection, waits for them, and closes
// the store. It is safe to call more than once.
func (a *Appliance) Close() error {
	var err error
	a.closeOnce.Do(func() {
		for _, c := range a.closers {
			c()
		}
		for _, s := range a.https {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			s.Shutdown(ctx)
			cancel()
		}
		for _, l := range a.listeners {
			l.Close()
		}
		if a.cluster != nil {
			a.cluster.Close() // before LDAP and SMTP: its tunnels are their connections
		}
		if a.feCancel != nil {
			a.feCancel()
		}
		if a.proxy != nil {
			a.proxy.Close()
		}
		if a.fe != nil {
			a.fe.Close()
		}
		if a.ldap != nil {
			a.ldap.Close()
		}
		if a.smtp != nil {
			a.smtp.Close()
		}
		if a.secure != nil {
			a.secure.Close()
		}
		a.wg.Wait()
		if a.store != nil {
			err = a.store.Close()
		}
		if a.lock != nil {
			os.Remove(filepath.Join(a.cfg.DataDir, controlSocket))
			a.lock.Close()
		}
	})
	return err
}
