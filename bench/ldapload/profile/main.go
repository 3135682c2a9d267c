// Command profile runs Postern's directory (ldapstore) and its LDAP server in one
// process with Go's profiler on a loopback HTTP port, so that a benchmark run of
// ldapload against it can be profiled without the rest of the appliance:
//
//	go run ./bench/ldapload/profile -ldap 127.0.0.1:3899 -pprof 127.0.0.1:6060 -w secret
//	ldapload load -url ldap://127.0.0.1:3899 -w secret -n 10000
//	go tool pprof -seconds 5 http://127.0.0.1:6060/debug/pprof/profile   # during a run
//	go tool pprof http://127.0.0.1:6060/debug/pprof/heap
//
// It wires the store and server the way the appliance does (root DN with an argon2
// password hash, default limits) but keeps no identity, TLS, metrics or other
// listeners. The store lives in -data (a temporary directory by default, removed on
// exit). It stops on SIGINT/SIGTERM or after -max, whichever comes first.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof on http.DefaultServeMux
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"postern/ldapstore"
	"postern/ldapstore/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "profile: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("profile", flag.ContinueOnError)
	ldapAddr := fs.String("ldap", "127.0.0.1:0", "LDAP listen `address` (loopback)")
	pprofAddr := fs.String("pprof", "127.0.0.1:0", "pprof HTTP listen `address` (loopback)")
	data := fs.String("data", "", "store directory (default: a temporary one, removed on exit)")
	suffix := fs.String("base", "dc=postern,dc=local", "directory suffix")
	rootDN := fs.String("D", "cn=admin,dc=postern,dc=local", "root DN")
	password := fs.String("w", "", "root password (required)")
	maxRun := fs.Duration("max", 10*time.Minute, "stop after this long")
	mutex := fs.Int("mutex-fraction", 0, "runtime.SetMutexProfileFraction (0: off)")
	block := fs.Int("block-rate", 0, "runtime.SetBlockProfileRate in ns (0: off)")
	mapped := fs.Int64("mapped-budget", 0, "ldapstore.Options.MappedBudget in `bytes` (0: the default, negative: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *password == "" {
		return errors.New("-w is required")
	}
	for _, a := range []string{*ldapAddr, *pprofAddr} {
		host, _, err := net.SplitHostPort(a)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("%q: listen on a loopback address", a)
		}
	}
	runtime.SetMutexProfileFraction(*mutex)
	runtime.SetBlockProfileRate(*block)

	dir := *data
	if dir == "" {
		tmp, err := os.MkdirTemp("", "postern-profile-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := ldapstore.Open(filepath.Join(dir, "directory.db"), ldapstore.Options{
		Suffix: *suffix, ServerID: 1, Logger: log, MappedBudget: *mapped,
	})
	if err != nil {
		return err
	}
	defer store.Close()
	hash, err := ldapstore.HashPassword(*password)
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{Store: store, RootDN: *rootDN, RootPassword: hash, Logger: log})
	if err != nil {
		return err
	}
	ll, err := net.Listen("tcp", *ldapAddr)
	if err != nil {
		return err
	}
	pl, err := net.Listen("tcp", *pprofAddr)
	if err != nil {
		ll.Close()
		return err
	}
	hs := &http.Server{Handler: http.DefaultServeMux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ll) }()
	go func() { errc <- hs.Serve(pl) }()
	fmt.Printf("ldap listening on %s\npprof listening on %s\nready\n", ll.Addr(), pl.Addr())

	timer := time.NewTimer(*maxRun)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	case err = <-errc:
	}
	hs.Close()
	if cerr := srv.Close(); err == nil || errors.Is(err, server.ErrServerClosed) {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, server.ErrServerClosed) {
		err = nil
	}
	return err
}
