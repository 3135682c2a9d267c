// Command ldapload is the LDAP load client of Postern's benchmark (bench/ldap.sh).
//
// It drives any LDAP v3 server (a stock slapd or Postern) with the same bounded
// workloads, so that the two can be compared side by side, and it prepares the data
// set both are measured on. It does not start or stop servers and judges no targets:
// bench/ldap.sh does that.
//
//	ldapload run  -url ldap://127.0.0.1:3389 -w PW -workload search-uid -clients 8 -duration 5s
//	ldapload load -url ldap://127.0.0.1:3389 -w PW -n 10000 [-start 0] [-clients 8]
//	ldapload ldif -n 10000 [-start 0] [-o users.ldif] [-with-base=true]
//
// Every run prints one line of key=value fields (or JSON with -json):
//
//	workload=search-uid clients=8 duration=5.00s ops=41234 ops/s=8246.8 p50=0.912ms p99=2.345ms errors=0
//
// The data set is the same for every server: uid=userN,ou=people,<suffix>, N from 0,
// objectClass inetOrgPerson with cn, sn, uid, mail userN@example.com, userPassword
// and description. userPassword is sent pre-hashed ({SSHA}, deterministic salt) by
// default, so that loading measures the directory and not each server's choice of
// password hash; -password-scheme plain sends the clear text instead.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Main runs one ldapload subcommand and returns the process exit code: 0 on success,
// 1 when the run failed or saw errors, 2 on a usage error.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(ctx, args[1:], stdout, stderr)
	case "load":
		err = cmdLoad(ctx, args[1:], stdout, stderr)
	case "ldif":
		err = cmdLDIF(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "ldapload: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case err == errUsage:
		return 2
	default:
		fmt.Fprintf(stderr, "ldapload: %v\n", err)
		return 1
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  ldapload run  -url URL -w PASSWORD -workload search-uid|search-mail|modify [-clients N] [-duration D] [-max-ops N] [-users N]
  ldapload load -url URL -w PASSWORD -n N [-start S] [-clients N]
  ldapload ldif -n N [-start S] [-o FILE] [-with-base=true|false]
Run "ldapload COMMAND -h" for the flags of one command.
`)
}
