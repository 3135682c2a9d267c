package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"postern/appliance"
	"postern/ldapstore"
	"postern/ldapstore/server"
	"postern/replication"
)

// member is one in-process Postern member: store, LDAP server, provider.
type member struct {
	st   *ldapstore.Store
	srv  *server.Server
	addr string
	done chan error
}

func startMember(dir string, sid int, addr string) (*member, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := ldapstore.Open(filepath.Join(dir, "ldap.db"), ldapstore.Options{ServerID: sid, Logger: log})
	if err != nil {
		return nil, err
	}
	hash, err := ldapstore.HashPassword(rootPW)
	if err != nil {
		return nil, err
	}
	srv, err := server.New(server.Config{Store: st, RootDN: rootDN, RootPassword: hash, Logger: log})
	if err != nil {
		st.Close()
		return nil, err
	}
	replication.NewProvider(st, replication.ProviderOptions{Logger: log}).Register(srv)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		st.Close()
		return nil, err
	}
	m := &member{st: st, srv: srv, addr: l.Addr().String(), done: make(chan error, 1)}
	go func() { m.done <- srv.Serve(l) }()
	return m, nil
}

func (m *member) close() {
	m.srv.Close()
	<-m.done
	m.st.Close()
}

// link is a running consumer.
type link struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startLink(to *member, rid int, from string) *link {
	c := replication.NewConsumer(replication.ConsumerConfig{
		RID: rid, Provider: from, Store: to.st,
		Dial: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", from)
		},
		BindDN: rootDN, Password: rootPW,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	ctx, cancel := context.WithCancel(context.Background())
	lk := &link{cancel: cancel}
	lk.wg.Add(1)
	go func() {
		defer lk.wg.Done()
		c.Run(ctx)
	}()
	return lk
}

func (l *link) stop() {
	l.cancel()
	l.wg.Wait()
}

// runMember is the -member mode: one Postern member in this process, like
// one slapd: its store, LDAP server and provider, and a consumer of its
// peer, until SIGINT or SIGTERM. The process runs with the garbage
// collector settings of `postern serve`.
func runMember(dir string, sid int, listen, peer string) error {
	appliance.TuneGC(appliance.MinHeapGoal)
	prof := newPhaseProfile(os.Getenv("REPLBENCH_CPUPROFILE"), sid)
	defer prof.stop()
	m, err := startMember(dir, sid, listen)
	if err != nil {
		return err
	}
	lk := startLink(m, sid, peer)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGUSR1)
	for s := range sig {
		if s != syscall.SIGUSR1 {
			break
		}
		prof.next() // the driver says a measure starts or ends
	}
	lk.stop()
	m.close()
	return nil
}

// newPosternPair is two Postern members, each in its own process (this
// binary in -member mode), replicating both ways (multi-master), as the two
// slapd nodes do.
func newPosternPair(dir string) *procPair {
	return &procPair{sys: "postern", launch: func(node string, sid int, addr, peer string) (*exec.Cmd, error) {
		cmd := exec.Command(os.Args[0], "-member", filepath.Join(dir, node), "-sid", fmt.Sprint(sid), "-listen", addr, "-peer", peer)
		cmd.Stderr = os.Stderr
		return startProc(cmd, addr, "postern member "+node)
	}}
}

// phaseProfile writes CPU profiles of a member, one file per phase of the
// driver (load, full refresh, latency, ...): SIGUSR1 ends a file and
// starts the next, <prefix>.<sid>.<pid>.<n>.pprof. An empty prefix
// profiles nothing.
type phaseProfile struct {
	prefix string
	sid, n int
	f      *os.File
}

func newPhaseProfile(prefix string, sid int) *phaseProfile {
	p := &phaseProfile{prefix: prefix, sid: sid}
	p.next()
	return p
}

func (p *phaseProfile) next() {
	if p.prefix == "" {
		return
	}
	p.stop()
	p.n++
	f, err := os.Create(fmt.Sprintf("%s.%d.%d.%d.pprof", p.prefix, p.sid, os.Getpid(), p.n))
	if err != nil {
		fmt.Fprintln(os.Stderr, "replbench: profile:", err)
		return
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		fmt.Fprintln(os.Stderr, "replbench: profile:", err)
		return
	}
	p.f = f
}

func (p *phaseProfile) stop() {
	if p.f != nil {
		pprof.StopCPUProfile()
		p.f.Close()
		p.f = nil
	}
}
