package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// maxReconnects bounds how often one client redials after its connection broke.
const maxReconnects = 3

// op is one operation of a workload on user n. It returns an error when the server
// failed the operation or answered something the workload does not expect.
type op func(c *ldap.Conn, t *target, n int, rng *rand.Rand) error

var workloads = map[string]op{
	"search-uid":  searchBy("uid", func(n int) string { return "user" + strconv.Itoa(n) }),
	"search-mail": searchBy("mail", func(n int) string { return "user" + strconv.Itoa(n) + "@example.com" }),
	"modify":      modifyDescription,
}

// searchBy is an equality search for one user by attr, subtree scope from the suffix,
// requesting all user attributes; exactly one entry must come back.
func searchBy(attr string, value func(n int) string) op {
	return func(c *ldap.Conn, t *target, n int, _ *rand.Rand) error {
		req := ldap.NewSearchRequest(t.Suffix, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
			0, 0, false, "("+attr+"="+ldap.EscapeFilter(value(n))+")", nil, nil)
		res, err := c.Search(req)
		if err != nil {
			return err
		}
		if len(res.Entries) != 1 {
			return fmt.Errorf("search %s=%s: %d entries, want 1", attr, value(n), len(res.Entries))
		}
		return nil
	}
}

// modifyDescription replaces the description of user n with a random value.
func modifyDescription(c *ldap.Conn, t *target, n int, rng *rand.Rand) error {
	req := ldap.NewModifyRequest(t.userDN(n), nil)
	req.Replace("description", []string{fmt.Sprintf("bench %016x", rng.Uint64())})
	return c.Modify(req)
}

type runConfig struct {
	target
	Workload string
	Clients  int
	Duration time.Duration
	Warmup   time.Duration
	MaxOps   int
	Users    int
	Seed     uint64
	JSON     bool
	// ServerPID, when not 0, is the server's process on this machine: its CPU time
	// over the measured run is reported per operation.
	ServerPID int
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg runConfig
	fs := flag.NewFlagSet("ldapload run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.target.register(fs)
	fs.StringVar(&cfg.Workload, "workload", "search-uid", "search-uid, search-mail or modify")
	fs.IntVar(&cfg.Clients, "clients", 1, "concurrent clients, each with its own connection")
	fs.DurationVar(&cfg.Duration, "duration", 5*time.Second, "measured time (the run also stops at -max-ops)")
	fs.DurationVar(&cfg.Warmup, "warmup", 0, "unmeasured time before the measured run, on the same connections")
	fs.IntVar(&cfg.MaxOps, "max-ops", 2_000_000, "bound on the operations of the measured run")
	fs.IntVar(&cfg.Users, "users", 10_000, "operate on users 0..N-1, picked at random")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed (client i uses seed+i)")
	fs.BoolVar(&cfg.JSON, "json", false, "print the result as JSON")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "`pid` of the server on this machine: report its CPU time per operation")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ldapload run: unexpected arguments %q\n", fs.Args())
		return errUsage
	}
	res, err := run(ctx, cfg)
	if err != nil {
		return err
	}
	if err := res.print(stdout, cfg.JSON); err != nil {
		return err
	}
	if res.Errors > 0 {
		return fmt.Errorf("%s: %d errors, first: %v", cfg.Workload, res.Errors, res.firstErr)
	}
	return nil
}

func run(ctx context.Context, cfg runConfig) (result, error) {
	o, ok := workloads[cfg.Workload]
	switch {
	case !ok:
		return result{}, fmt.Errorf("unknown workload %q (search-uid, search-mail, modify)", cfg.Workload)
	case cfg.Clients < 1 || cfg.Clients > 1024:
		return result{}, fmt.Errorf("-clients %d: want 1..1024", cfg.Clients)
	case cfg.Users < 1:
		return result{}, fmt.Errorf("-users %d: want at least 1", cfg.Users)
	case cfg.Duration <= 0 || cfg.MaxOps < 1:
		return result{}, errors.New("-duration and -max-ops must be positive: every run is bounded")
	}
	if err := cfg.target.check(); err != nil {
		return result{}, err
	}
	conns, err := cfg.target.dialAll(cfg.Clients)
	if err != nil {
		return result{}, err
	}
	defer func() { closeAll(conns) }()

	rngs := make([]*rand.Rand, cfg.Clients)
	for i := range rngs {
		rngs[i] = rand.New(rand.NewPCG(cfg.Seed+uint64(i), 0x706f737465726e))
	}
	if cfg.Warmup > 0 {
		drive(ctx, &cfg, o, conns, rngs, cfg.Warmup, cfg.MaxOps)
		if err := ctx.Err(); err != nil {
			return result{}, err
		}
	}
	var cpu0 time.Duration
	if cfg.ServerPID != 0 {
		if cpu0, err = processCPU(cfg.ServerPID); err != nil {
			return result{}, err
		}
	}
	recs, elapsed := drive(ctx, &cfg, o, conns, rngs, cfg.Duration, cfg.MaxOps)
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	res := merge(cfg.Workload, cfg.Clients, elapsed, recs)
	if cfg.ServerPID != 0 {
		cpu1, err := processCPU(cfg.ServerPID)
		if err != nil {
			return result{}, err
		}
		if res.Ops > 0 {
			res.CPUus = float64(cpu1-cpu0) / float64(time.Microsecond) / float64(res.Ops)
		}
	}
	return res, nil
}

// drive runs o on every connection until d has passed, maxOps operations were
// started or ctx is done, and returns each client's recorder and the elapsed time.
// A client whose connection breaks redials at most maxReconnects times, replacing
// its entry in conns.
func drive(ctx context.Context, cfg *runConfig, o op, conns []*ldap.Conn, rngs []*rand.Rand, d time.Duration, maxOps int) ([]*recorder, time.Duration) {
	recs := make([]*recorder, len(conns))
	perClient := min(maxOps/len(conns)+1, 1<<20)
	for i := range recs {
		recs[i] = newRecorder(perClient)
	}
	var started atomic.Int64
	var wg sync.WaitGroup
	begin := time.Now()
	deadline := begin.Add(d)
	for i := range conns {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rec, rng := recs[i], rngs[i]
			reconnects := 0
			for ctx.Err() == nil && time.Now().Before(deadline) && started.Add(1) <= int64(maxOps) {
				n := rng.IntN(cfg.Users)
				t0 := time.Now()
				err := o(conns[i], &cfg.target, n, rng)
				if err == nil {
					rec.ok(time.Since(t0))
					continue
				}
				rec.fail(err)
				if !conns[i].IsClosing() {
					continue
				}
				if reconnects >= maxReconnects {
					return
				}
				reconnects++
				c, derr := cfg.target.dial()
				if derr != nil {
					rec.fail(derr)
					return
				}
				conns[i].Close()
				conns[i] = c
			}
		}(i)
	}
	wg.Wait()
	return recs, time.Since(begin)
}
