package appliance

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"

	"postern/cluster"
)

func cmdDomain(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("want add, list or remove")
	}
	fs, data, asJSON := clientFlags("domain " + args[0])
	var d Domain
	switch args[0] {
	case "add":
		fs.StringVar(&d.DeliverTo, "deliver-to", "", "delivery server HOST:PORT (required)")
		fs.StringVar(&d.TLS, "tls", "may", "TLS to the delivery server: none, may or encrypt")
	case "list", "remove":
	default:
		return usagef("unknown subcommand %q (want add, list or remove)", args[0])
	}
	// The domain name comes first: `domain add example.com --deliver-to ...`.
	rest := args[1:]
	var name string
	if args[0] != "list" {
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return usagef("want the domain name first: postern domain %s NAME", args[0])
		}
		name, rest = rest[0], rest[1:]
	}
	if err := parseAll(fs, rest); err != nil {
		return err
	}
	c := newClient(*data)
	switch args[0] {
	case "add":
		if d.DeliverTo == "" {
			return usagef("--deliver-to HOST:PORT is required")
		}
		switch d.TLS {
		case "none", "may", "encrypt":
		default:
			return usagef("invalid TLS policy %q: want none, may or encrypt", d.TLS)
		}
		d.Name = name
		var got Domain
		if err := c.call(ctx, "POST", "/v1/domains", d, &got); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, got)
		}
		fmt.Fprintf(stdout, "domain %s delivers to %s (TLS %s)\n", got.Name, got.DeliverTo, got.TLS)
	case "remove":
		if err := c.call(ctx, "DELETE", "/v1/domains/"+url.PathEscape(name), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "domain %s removed\n", name)
	case "list":
		var ds []Domain
		if err := c.call(ctx, "GET", "/v1/domains", nil, &ds); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, ds)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DOMAIN\tDELIVER TO\tTLS")
		for _, d := range ds {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", d.Name, d.DeliverTo, d.TLS)
		}
		return tw.Flush()
	}
	return nil
}

func cmdRelay(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("want show, networks CIDR... or smarthost HOST:PORT|none")
	}
	fs, data, asJSON := clientFlags("relay " + args[0])
	if err := parseAll(fs, args[1:]); err != nil {
		return err
	}
	var u RelayUpdate
	switch args[0] {
	case "show":
	case "networks":
		nets := fs.Args()
		if len(nets) == 0 {
			return usagef("want one or more CIDRs, or none")
		}
		if len(nets) == 1 && nets[0] == "none" {
			nets = []string{}
		}
		u.Networks = &nets
	case "smarthost":
		if fs.NArg() != 1 {
			return usagef("want HOST:PORT, or none")
		}
		h := fs.Arg(0)
		if h == "none" {
			h = ""
		}
		u.Smarthost = &h
	default:
		return usagef("unknown subcommand %q (want show, networks or smarthost)", args[0])
	}
	c := newClient(*data)
	var rs RelaySettings
	var err error
	if args[0] == "show" {
		err = c.call(ctx, "GET", "/v1/relay", nil, &rs)
	} else {
		err = c.call(ctx, "POST", "/v1/relay", u, &rs)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, rs)
	}
	nets := strings.Join(rs.Networks, " ")
	if nets == "" {
		nets = "(none: no relaying)"
	}
	sh := rs.Smarthost
	if sh == "" {
		sh = "(none: MX lookup)"
	}
	fmt.Fprintf(stdout, "Relay networks: %s\nSmarthost:      %s\n", nets, sh)
	return nil
}

// parseAll parses flags that may stand before, between or after the
// positional arguments, which stay in fs.Args().
// parseNone is parseAll for a command that takes no positional argument:
// one given is a usage error (exit 2), never silently ignored.
func parseNone(fs *flag.FlagSet, args []string) error {
	if err := parseAll(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

func parseAll(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return flagError(fs, err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if err := fs.Parse(append([]string{"--"}, pos...)); err != nil {
		return flagError(fs, err)
	}
	return nil
}

func cmdQueue(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("want list, show ID, flush or delete ID")
	}
	fs, data, asJSON := clientFlags("queue " + args[0])
	whole := false
	if args[0] == "list" || args[0] == "flush" {
		fs.BoolVar(&whole, "cluster", false, "every backend member's queue, through the cluster")
	}
	if err := parseAll(fs, args[1:]); err != nil {
		return err
	}
	c := newClient(*data)
	if whole {
		return queueCluster(ctx, c, args[0], *asJSON, stdout)
	}
	needID := func() (string, error) {
		if fs.NArg() != 1 {
			return "", usagef("want exactly one queue ID")
		}
		return url.PathEscape(fs.Arg(0)), nil
	}
	switch args[0] {
	case "list":
		var qs []QueueEntry
		if err := c.call(ctx, "GET", "/v1/queue", nil, &qs); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, qs)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tARRIVAL\tSIZE\tFROM\tRECIPIENT\tSTATUS\tATTEMPTS\tDIAGNOSTIC")
		for _, q := range qs {
			for i, r := range q.Recipients {
				id, arr, size, from := q.ID, q.Arrival.Format("2006-01-02 15:04:05"), fmt.Sprint(q.Size), orNull(q.From)
				if i > 0 {
					id, arr, size, from = "", "", "", ""
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", id, arr, size, terminalSafe(from), terminalSafe(r.Address), r.Status, r.Attempts, terminalSafe(r.Diagnostic))
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d messages in the queue\n", len(qs))
	case "show":
		id, err := needID()
		if err != nil {
			return err
		}
		var q QueueEntry
		if err := c.call(ctx, "GET", "/v1/queue/"+id, nil, &q); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, q)
		}
		fmt.Fprintf(stdout, "ID:      %s\nArrival: %s\nFrom:    %s\nSize:    %d\n", q.ID, q.Arrival.Format("2006-01-02 15:04:05 MST"), terminalSafe(orNull(q.From)), q.Size)
		for _, r := range q.Recipients {
			fmt.Fprintf(stdout, "To:      %s  %s, %d attempts", terminalSafe(r.Address), r.Status, r.Attempts)
			if !r.NextAttempt.IsZero() {
				fmt.Fprintf(stdout, ", next %s", r.NextAttempt.Format("15:04:05"))
			}
			if r.Diagnostic != "" {
				fmt.Fprintf(stdout, ", last: %s", terminalSafe(r.Diagnostic))
			}
			fmt.Fprintln(stdout)
		}
		// The header section is what a client sent: an ESC sequence in it
		// must not reach the operator's terminal.
		fmt.Fprintf(stdout, "\n%s", terminalSafe(q.Header))
	case "flush":
		var res map[string]int
		if err := c.call(ctx, "POST", "/v1/queue/flush", nil, &res); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d messages scheduled for delivery now\n", res["scheduled"])
	case "delete":
		id, err := needID()
		if err != nil {
			return err
		}
		if err := c.call(ctx, "DELETE", "/v1/queue/"+id, nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "message %s deleted\n", fs.Arg(0))
	default:
		return usagef("unknown subcommand %q (want list, show, flush or delete)", args[0])
	}
	return nil
}

func orNull(from string) string {
	if from == "" {
		return "<>"
	}
	return from
}

// queueCluster is `queue list --cluster` and `queue flush --cluster`.
func queueCluster(ctx context.Context, c *client, op string, asJSON bool, stdout io.Writer) error {
	var res []cluster.CallResult
	var err error
	if op == "list" {
		err = c.call(ctx, "GET", "/v1/queue?cluster=true", nil, &res)
	} else {
		err = c.call(ctx, "POST", "/v1/queue/flush?cluster=true", nil, &res)
	}
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(stdout, res)
	}
	failed := 0
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if op == "list" {
		fmt.Fprintln(tw, "MEMBER\tNO.\tID\tARRIVAL\tFROM\tRECIPIENT\tSTATUS\tDIAGNOSTIC")
	}
	for _, r := range res {
		if r.Error != "" {
			failed++
			fmt.Fprintf(tw, "%s\t%d\t(unreachable: %s)\n", r.DeviceID, r.ClusterNo, r.Error)
			continue
		}
		if op == "flush" {
			var n map[string]int
			json.Unmarshal(r.Result, &n)
			fmt.Fprintf(tw, "%s\t%d\t%d messages scheduled for delivery now\n", r.DeviceID, r.ClusterNo, n["scheduled"])
			continue
		}
		var qs []QueueEntry
		json.Unmarshal(r.Result, &qs)
		if len(qs) == 0 {
			fmt.Fprintf(tw, "%s\t%d\t(empty)\n", r.DeviceID, r.ClusterNo)
		}
		for _, q := range qs {
			for _, rc := range q.Recipients {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.DeviceID, r.ClusterNo, q.ID, q.Arrival.Format("2006-01-02 15:04:05"), terminalSafe(orNull(q.From)), terminalSafe(rc.Address), rc.Status, terminalSafe(rc.Diagnostic))
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d members did not answer", failed, len(res))
	}
	return nil
}

// terminalSafe shows the control characters of s (but newline and tab) as
// \xHH escapes, so that text from outside cannot drive a terminal.
func terminalSafe(s string) string {
	var b strings.Builder
	for _, r := range s {
		if (r < 0x20 && r != '\n' && r != '\t') || (r >= 0x7f && r < 0xa0) {
			fmt.Fprintf(&b, "\\x%02x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
