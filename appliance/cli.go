package appliance

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"postern/firmware"
)

// Main runs the postern command line: args[0] is the program name,
// args[1] the subcommand. It returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) < 2 {
		usage(stderr)
		return 2
	}
	cmd, rest := args[1], args[2:]
	if groupHelp(cmd, rest, stdout) {
		return 0
	}
	if sub := subcommands[cmd]; len(rest) > 0 && sub != nil && !strings.HasPrefix(rest[0], "-") && !slices.Contains(sub, rest[0]) {
		fmt.Fprintf(stderr, "postern %s: %s\n", cmd, unknown("subcommand of postern "+cmd, rest[0], sub).Error())
		return 2
	}
	var err error
	switch cmd {
	case "serve":
		err = cmdServe(ctx, rest, stdout, stderr)
	case "version", "--version", "-V":
		fmt.Fprintf(stdout, "postern %s\n", firmware.String())
	case "status":
		err = cmdStatus(ctx, rest, stdout)
	case "system":
		err = cmdSystem(ctx, rest, stdout)
	case "ldif":
		err = cmdLDIF(ctx, rest, stdin, stdout, stderr)
	case "domain":
		err = cmdDomain(ctx, rest, stdout)
	case "relay":
		err = cmdRelay(ctx, rest, stdout)
	case "queue":
		err = cmdQueue(ctx, rest, stdout)
	case "cluster":
		err = cmdCluster(ctx, rest, stdout)
	case "keys":
		err = cmdKeys(ctx, rest, stdout)
	case "ca":
		err = cmdCA(ctx, rest, stdout)
	case "policy":
		err = cmdPolicy(ctx, rest, stdout)
	case "admin":
		err = cmdAdmin(ctx, rest, stdout)
	case "wait":
		err = cmdWait(ctx, rest, stdout)
	case "stop":
		err = cmdStop(ctx, rest, stdout)
	case "ntpd":
		err = cmdNTPD(ctx, rest, stdout)
	case "help", "-h", "--help":
		usage(stdout)
	default:
		fmt.Fprintf(stderr, "postern: %s\n", unknown("command", cmd, commands).Error())
		fmt.Fprintln(stderr, "run `postern help` for the list of commands")
		return 2
	}
	if err != nil {
		var hr helpRequest
		if errors.As(err, &hr) {
			printHelp(stdout, hr.fs)
			return 0
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "postern %s: %s\n", cmd, cleanMessage(cmd, ue.msg))
			return 2
		}
		fmt.Fprintf(stderr, "postern %s: %s\n", cmd, cleanMessage(cmd, err.Error()))
		return 1
	}
	return 0
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: postern COMMAND [options]

  serve [--data DIR] [--ldap ADDR] [--ldaps ADDR] [--smtp ADDR] [--admin ADDR]
        [--cluster ADDR] [--metrics ADDR] [--hostname NAME] [--ntp-server HOST[:PORT]]
        [--heartbeat DURATION]
  version
  status [--json]
  system show [--json] | system set [--hostname H] [--comment C] [--location L] [--ntp-server S]
  ldif export [--private-keys] | ldif import FILE   (FILE "-" reads standard input)
  ldif restore FILE [--yes]        (the directory becomes FILE's; prints the plan, --yes applies it)
  domain add NAME --deliver-to HOST:PORT [--tls none|may|encrypt] | domain list | domain remove NAME
  relay show | relay networks CIDR...|none | relay smarthost HOST:PORT|none
  queue list [--cluster] | queue show ID | queue flush [--cluster] | queue delete ID
  cluster prepare --password-file F [--out clusterid.txt] [--self IP:PORT] [--allow IP,...]
  cluster join --id clusterid.txt --password-file F --member IP:PORT --self IP:PORT
  cluster check --id clusterid.txt --password-file F --member IP:PORT --self IP:PORT
  cluster status [--json]
  cluster prepare ... [--valid DURATION] [--once]
  cluster leave | cluster remove DEVICE-ID | cluster forget DEVICE-ID
  cluster protect --ips IP,... | --add IP,... | --off | (no option: show)
  cluster inject --backends ID,... --frontends ID,... | (no option: show)
  cluster compare [--attrs] [--json]
  cluster readdress --self IP:PORT     (this member's new cluster address, announced to the members)
  cluster rekey [--id clusterid.txt --password-file F]   (a new device key, or the lost old one replaced)
  cluster password                     (retires every cluster identifier handed out before)
  cluster frontend attach --id clusterid.txt --password-file F --backend IP:PORT --self IP:PORT
  cluster frontend detach              (standalone again, with a fresh, empty directory)
  cluster backend add IP:PORT | cluster backend remove IP:PORT   (a frontend's remote LDAP servers)
  keys generate ADDRESS|DOMAIN --smime|--pgp|--dkim [--algo rsa3072|ecdsa|ed25519] [--self-signed] [--selector S]
  keys import FILE [--owner ADDRESS|DOMAIN] [--password-file F] [--ca]   (PEM, DER, PKCS #12, armoured OpenPGP)
  keys export ADDRESS|DOMAIN [--smime|--pgp|--dkim] [--private --password-file F] [--out FILE]
  keys list [ADDRESS|DOMAIN] [--json] | keys delete ADDRESS|DOMAIN [--fingerprint F]
  ca init [--name CN] [--algo ecdsa|rsa3072]   (the internal CA that issues S/MIME certificates)
  policy set [--domain D | --user ADDRESS] [--encrypt never|if-key|always] [--sign never|always]
             [--method smime|pgp] [--trigger PREFIX|none] [--no-key reject|bounce]
  policy show [--domain D | --user ADDRESS] [--json]
  admin password [--password-file F]   (resets the admin password; without a file one is generated and printed)
  admin token create [--name N] | admin token list | admin token revoke ID   (bearer tokens for the web menu's /api/)
  wait [--timeout 30s] [--cluster-ok]  (until the appliance answers, or every member row says OK)
  stop                                 (stops the appliance and waits until it has)
  ntpd [--listen 127.0.0.1:10123]      (an SNTP server on this machine's clock: for labs without network)

Every command but serve and version talks to the running appliance through
the control socket in its data directory: --data DIR (default $POSTERN_DATA,
else ./var).
`)
}

// flags returns a FlagSet with the options every client command shares.
func clientFlags(name string) (*flag.FlagSet, *string, *bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors and help are printed once, by Main
	data := fs.String("data", defaultData(), "data directory of the appliance ($POSTERN_DATA)")
	asJSON := fs.Bool("json", false, "print JSON")
	return fs, data, asJSON
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.DataDir, "data", defaultData(), "data directory ($POSTERN_DATA)")
	fs.StringVar(&cfg.LDAPAddr, "ldap", DefaultLDAP, `LDAP listen address ("off" disables)`)
	fs.StringVar(&cfg.LDAPSAddr, "ldaps", DefaultLDAPS, "LDAPS listen address")
	fs.StringVar(&cfg.SMTPAddr, "smtp", DefaultSMTP, "SMTP listen address")
	fs.StringVar(&cfg.AdminAddr, "admin", DefaultAdmin, "admin HTTPS listen address")
	fs.StringVar(&cfg.ClusterAddr, "cluster", DefaultCluster, "cluster SSH listen address")
	fs.StringVar(&cfg.MetricsAddr, "metrics", DefaultMetrics, "Prometheus metrics listen address")
	fs.StringVar(&cfg.Hostname, "hostname", "", "set this machine's hostname (machine-local)")
	fs.StringVar(&cfg.NTPServer, "ntp-server", "", "set this machine's NTP server (machine-local)")
	fs.DurationVar(&cfg.ClusterHeartbeat, "heartbeat", 0, "cluster heartbeat interval (default 15s)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return flagError(fs, err)
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		return usagef("bad --log-level %q", *logLevel)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	cfg.AdminPassword = os.Getenv("POSTERN_ADMIN_PASSWORD")
	if v := os.Getenv("POSTERN_TEST_CLOCK_SKEW"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return usagef("POSTERN_TEST_CLOCK_SKEW: %v", err)
		}
		cfg.ClockSkew = d
	}
	cfg.Out = stdout
	// the admin menu (listener, sessions, jobs) outlives a restart in a new role
	cfg.menu = &webMenu{}
	defer cfg.menu.close()
	TuneGC(MinHeapGoal)
	a, err := New(cfg)
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
		case <-a.StopRequested():
		case <-a.RestartRequested():
			// attached as a frontend, or detached: the same data, made anew
			fmt.Fprintln(stdout, "restarting in the new role")
			if err := a.Close(); err != nil {
				return err
			}
			cfg.AdminPassword = ""
			if a, err = New(cfg); err != nil {
				return err
			}
			if err := a.Start(ctx); err != nil {
				return err
			}
			continue
		}
		break
	}
	fmt.Fprintln(stdout, "stopping")
	return a.Close()
}

func cmdStatus(ctx context.Context, args []string, stdout io.Writer) error {
	fs, data, asJSON := clientFlags("status")
	if err := parseAll(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	var st StatusReport
	if err := newClient(*data).call(ctx, "GET", "/v1/status", nil, &st); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, st)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Device ID\t%s\nUUID\t%s\nHostname\t%s\nFirmware\t%s (build %s)\nUptime\t%s\nData\t%s\nEntries\t%d\n",
		st.DeviceID, st.UUID, st.Hostname, st.Version, st.Build, st.Uptime, st.DataDir, st.Entries)
	fmt.Fprintf(tw, "Context CSN\t%s\n", strings.Join(st.ContextCSN, " "))
	names := make([]string, 0, len(st.Listeners))
	for n := range st.Listeners {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(tw, "Listener %s\t%s\n", n, st.Listeners[n])
	}
	return tw.Flush()
}

func cmdSystem(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("want show or set")
	}
	fs, data, asJSON := clientFlags("system " + args[0])
	var u SystemUpdate
	set := func(dst **string) func(string) error {
		return func(v string) error { *dst = &v; return nil }
	}
	switch args[0] {
	case "show":
	case "set":
		fs.Func("hostname", "hostname", set(&u.Hostname))
		fs.Func("comment", "comment shown in the cluster tables", set(&u.Comment))
		fs.Func("location", "location shown in the cluster tables", set(&u.Location))
		fs.Func("ntp-server", "NTP server (host[:port])", set(&u.NTPServer))
	default:
		return usagef("unknown subcommand %q (want show or set)", args[0])
	}
	if err := parseNone(fs, args[1:]); err != nil {
		return err
	}
	c := newClient(*data)
	var s System
	var err error
	if args[0] == "set" {
		if u == (SystemUpdate{}) {
			return usagef("nothing to set")
		}
		err = c.call(ctx, "POST", "/v1/system", u, &s)
	} else {
		err = c.call(ctx, "GET", "/v1/system", nil, &s)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, s)
	}
	fmt.Fprintf(stdout, "Hostname:   %s\nComment:    %s\nLocation:   %s\nNTP server: %s\n", s.Hostname, s.Comment, s.Location, s.NTPServer)
	return nil
}

func cmdLDIF(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("want export, import FILE or restore FILE")
	}
	fs, data, _ := clientFlags("ldif " + args[0])
	yes := fs.Bool("yes", false, "restore: write the changes the plan lists (without it, only print the plan)")
	privateKeys := fs.Bool("private-keys", false, "export: keep secure mail's private keys (they stay encrypted under the cluster's key-encryption key)")
	if err := parseAll(fs, args[1:]); err != nil {
		return err
	}
	c := newClient(*data)
	switch args[0] {
	case "export":
		if fs.NArg() > 0 {
			return usagef("unexpected argument %q (export writes to standard output: postern ldif export > FILE)", fs.Arg(0))
		}
		path := "/v1/ldif/export"
		if *privateKeys {
			path += "?private_keys=true"
		}
		resp, err := c.do(ctx, "GET", path, nil, "")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.Copy(stdout, resp.Body)
		return err
	case "import":
		if fs.NArg() != 1 {
			return usagef("want exactly one FILE (or - for standard input)")
		}
		in := stdin
		if name := fs.Arg(0); name != "-" {
			f, err := os.Open(name)
			if err != nil {
				return err
			}
			defer f.Close()
			in = f
		}
		resp, err := c.do(ctx, "POST", "/v1/ldif/import", in, "text/plain")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var last ImportProgress
		for sc.Scan() {
			if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
				return fmt.Errorf("bad progress line from appliance: %q", sc.Text())
			}
			if last.Error == "" && !last.Done {
				fmt.Fprintf(stderr, "imported %s (%d added, %d updated, %d applied, %.0f/s)\n", plural(last.Entries, "entry", "entries"), last.Added, last.Updated, last.Applied, last.Rate)
			}
		}
		if err := sc.Err(); err != nil {
			return err
		}
		if last.Error != "" {
			return fmt.Errorf("%s (after %s read)", last.Error, plural(last.Entries, "entry", "entries"))
		}
		if !last.Done {
			return errors.New("import ended without a result (appliance stopped?)")
		}
		fmt.Fprintf(stdout, "imported %s: %d added, %d updated", plural(last.Entries, "entry", "entries"), last.Added, last.Updated)
		if last.Applied+last.Stale > 0 {
			fmt.Fprintf(stdout, ", %d applied with their entryUUID and entryCSN, %d older than the directory's state (kept the directory's)", last.Applied, last.Stale)
		}
		if last.Skipped > 0 {
			fmt.Fprintf(stdout, ", %d below ou=cluster skipped (cluster membership is never taken from LDIF)", last.Skipped)
		}
		fmt.Fprintln(stdout)
		return nil
	case "restore":
		if fs.NArg() != 1 || fs.Arg(0) == "-" {
			return usagef("want exactly one FILE (read twice: once for the plan, once to apply it)")
		}
		run := func(apply bool) (RestorePlan, error) {
			f, err := os.Open(fs.Arg(0))
			if err != nil {
				return RestorePlan{}, err
			}
			defer f.Close()
			resp, err := c.do(ctx, "POST", fmt.Sprintf("/v1/ldif/restore?apply=%t", apply), f, "text/plain")
			if err != nil {
				return RestorePlan{}, err
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			var last RestorePlan
			for sc.Scan() {
				if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
					return last, fmt.Errorf("bad progress line from appliance: %q", sc.Text())
				}
				if !last.Done && last.Error == "" {
					fmt.Fprintf(stderr, "read %s\n", plural(last.Entries, "entry", "entries"))
				}
			}
			if err := sc.Err(); err != nil {
				return last, err
			}
			if last.Error != "" {
				return last, errors.New(last.Error)
			}
			if !last.Done {
				return last, errors.New("restore ended without a result (appliance stopped?)")
			}
			return last, nil
		}
		plan, err := run(false)
		if err != nil {
			return err
		}
		if !*yes {
			fmt.Fprintf(stdout, "restore plan for %s: %s\nnothing changed yet: run again with --yes to restore\n", fs.Arg(0), plan.Effect)
			return nil
		}
		fmt.Fprintf(stdout, "restoring %s: %s\n", fs.Arg(0), plan.Effect)
		done, err := run(true)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "restored: %d added, %d changed, %d deleted, %d unchanged, %d below ou=cluster kept\n", done.Add, done.Change, done.Delete, done.Unchanged, done.Skipped)
		return nil
	default:
		return usagef("unknown subcommand %q (want export, import or restore)", args[0])
	}
}

// plural returns "1 entry", "2 entries".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// defaultData is $POSTERN_DATA, else ./var.
func defaultData() string {
	if d := os.Getenv("POSTERN_DATA"); d != "" {
		return d
	}
	return DefaultDataDir
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
