// Command smtpgw runs only Postern's SMTP gateway, for bench/smtp.sh: one
// managed domain delivered to a fixed next hop, policy from a static
// in-memory directory. It prints "ready" once it accepts connections and
// stops cleanly on SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"postern/smtp"
)

// staticDir is a Directory with one managed domain, no users, no relaying.
type staticDir struct{ d smtp.Domain }

func (s staticDir) Domain(_ context.Context, name string) (smtp.Domain, bool, error) {
	return s.d, strings.EqualFold(name, s.d.Name), nil
}
func (staticDir) HasUsers(context.Context, string) (bool, error)   { return false, nil }
func (staticDir) UserExists(context.Context, string) (bool, error) { return false, nil }
func (staticDir) Relay(context.Context) (smtp.RelayPolicy, error)  { return smtp.RelayPolicy{}, nil }

func main() {
	listen := flag.String("listen", "127.0.0.1:2525", "SMTP listen address")
	data := flag.String("data", "", "queue directory (required)")
	domain := flag.String("domain", "bench.test", "managed domain")
	deliverTo := flag.String("deliver-to", "127.0.0.1:2526", "next hop for the domain")
	verbose := flag.Bool("v", false, "log to stderr")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the gateway's life to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "smtpgw:", err)
			os.Exit(1)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "smtpgw:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if *data == "" {
		fmt.Fprintln(os.Stderr, "smtpgw: -data is required")
		os.Exit(2)
	}
	log := slog.New(slog.DiscardHandler)
	if *verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	g, err := smtp.New(smtp.Config{
		Hostname:  "postern.bench.test",
		DataDir:   *data,
		Directory: staticDir{smtp.Domain{Name: *domain, DeliverTo: *deliverTo, TLS: smtp.TLSNone}},
		Logger:    log,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "smtpgw:", err)
		os.Exit(1)
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "smtpgw:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(l) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sig:
	case err := <-errc:
		fmt.Fprintln(os.Stderr, "smtpgw:", err)
	}
	g.Close()
}
