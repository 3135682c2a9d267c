package appliance

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"postern/cluster"
)

// cmdCluster is `postern cluster ...`: the cluster menu on the command line.
func cmdCluster(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("want prepare, join, check, status, leave, remove, forget, protect or inject")
	}
	sub := args[0]
	fs, data, asJSON := clientFlags("cluster " + sub)
	c := func() *client { return newClient(*data) }
	switch sub {
	case "prepare":
		pwFile := fs.String("password-file", "", "file holding the cluster password (first line)")
		out := fs.String("out", "clusterid.txt", "where to write the cluster identifier")
		self := fs.String("self", "", "this member's cluster address IP:PORT (default: the cluster listener)")
		allow := fs.String("allow", "", "IPs that may use the identifier (the joiners'), comma-separated")
		valid := fs.Duration("valid", cluster.DefaultValid, "how long the identifier admits joins")
		once := fs.Bool("once", false, "the identifier admits one join or attach only")
		if err := parseNone(fs, args[1:]); err != nil {
			return err
		}
		if *valid <= 0 {
			return usagef("--valid %s: want a positive duration such as 1h or 30m", *valid)
		}
		pw, err := readPassword(*pwFile)
		if err != nil {
			return err
		}
		var ans struct{ ClusterID string }
		if err := c().call(ctx, "POST", "/v1/cluster/prepare", cluster.PrepareRequest{Password: pw, Self: *self, Allow: splitList(*allow), Valid: *valid, Once: *once}, &ans); err != nil {
			return err
		}
		if err := os.WriteFile(*out, []byte(ans.ClusterID), 0o600); err != nil {
			return err
		}
		how := "joins"
		if *once {
			how = "one join"
		}
		fmt.Fprintf(stdout, "cluster identifier written to %s (admits %s until %s)\n", *out, how, time.Now().Add(*valid).UTC().Format(time.RFC3339))
		return nil
	case "join", "check":
		idFile := fs.String("id", "clusterid.txt", "the cluster identifier from the base")
		pwFile := fs.String("password-file", "", "file holding the cluster password (first line)")
		member := fs.String("member", "", "cluster address IP:PORT of a member (default: the identifier's)")
		self := fs.String("self", "", "this device's cluster address IP:PORT")
		if err := parseNone(fs, args[1:]); err != nil {
			return err
		}
		id, err := readBounded(*idFile, "cluster identifier", maxClusterID)
		if err != nil {
			return err
		}
		pw, err := readPassword(*pwFile)
		if err != nil {
			return err
		}
		req := cluster.JoinRequest{ID: id, Password: pw, Member: *member, Self: *self}
		if sub == "check" {
			var rep cluster.CheckReport
			if err := c().call(ctx, "POST", "/v1/cluster/check", req, &rep); err != nil {
				return err
			}
			if *asJSON {
				return printJSON(stdout, rep)
			}
			for _, s := range rep.OK {
				fmt.Fprintf(stdout, "ok: %s\n", s)
			}
			if len(rep.Problems) > 0 {
				return &cluster.CheckError{Problems: rep.Problems}
			}
			fmt.Fprintln(stdout, "all checks passed: this device can join")
			return nil
		}
		return streamJoin(ctx, c(), req, stdout)
	case "status":
		if err := parseNone(fs, args[1:]); err != nil {
			return err
		}
		var st cluster.Status
		if err := c().call(ctx, "GET", "/v1/cluster/status", nil, &st); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, st)
		}
		printClusterStatus(stdout, &st)
		return nil
	case "leave":
		if err := parseNone(fs, args[1:]); err != nil {
			return err
		}
		var res cluster.LeaveResult
		if err := c().call(ctx, "POST", "/v1/cluster/leave", nil, &res); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "this device left the cluster and is standalone; its database stays as last synchronised")
		if res.Told == "" {
			return fmt.Errorf("no member could be told (%s): its record stays in the cluster; on a member run: postern cluster forget %s", orNone(res.Error), res.DeviceID)
		}
		fmt.Fprintf(stdout, "%s was told and removed this device's record from the cluster\n", res.Told)
		return nil
	case "remove", "forget":
		if err := parseAll(fs, args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return usagef("want exactly one DEVICE-ID")
		}
		if err := c().call(ctx, "POST", "/v1/cluster/"+sub+"/"+fs.Arg(0), nil, nil); err != nil {
			return err
		}
		if sub == "remove" {
			fmt.Fprintf(stdout, "%s removed from the cluster; its access is revoked and the cluster key rotated (make a new clusterid.txt with `postern cluster prepare`)\n", fs.Arg(0))
		} else {
			fmt.Fprintf(stdout, "record of %s deleted (an active member comes back by its heartbeat)\n", fs.Arg(0))
		}
		return nil
	case "frontend":
		if len(args) < 2 {
			return usagef("want frontend attach or frontend detach")
		}
		fs, data, _ = clientFlags("cluster frontend " + args[1])
		switch args[1] {
		case "attach":
			idFile := fs.String("id", "clusterid.txt", "the cluster identifier from a backend")
			pwFile := fs.String("password-file", "", "file holding the cluster password (first line)")
			backend := fs.String("backend", "", "cluster address IP:PORT of the backend to attach to")
			self := fs.String("self", "", "this device's cluster address IP:PORT")
			discard := fs.Bool("discard-local", false, "attach although this appliance's directory holds entries of its own (they are deleted: a frontend keeps no directory)")
			if err := parseNone(fs, args[2:]); err != nil {
				return err
			}
			id, err := readBounded(*idFile, "cluster identifier", maxClusterID)
			if err != nil {
				return err
			}
			pw, err := readPassword(*pwFile)
			if err != nil {
				return err
			}
			return streamProgress(ctx, c(), "/v1/cluster/frontend/attach", AttachRequest{JoinRequest: cluster.JoinRequest{ID: id, Password: pw, Member: *backend, Self: *self}, DiscardLocal: *discard}, stdout)
		case "detach":
			if err := parseNone(fs, args[2:]); err != nil {
				return err
			}
			var ans map[string]string
			if err := c().call(ctx, "POST", "/v1/cluster/frontend/detach", nil, &ans); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "detached: %s deleted this frontend's record and revoked its key; this appliance is standalone again, with a fresh, empty default directory (made anew in the running process)\n", ans["told"])
			return nil
		}
		return unknown("subcommand of postern cluster frontend", args[1], []string{"attach", "detach"})
	case "backend":
		if len(args) < 2 {
			return usagef("want backend add IP:PORT or backend remove IP:PORT")
		}
		fs, data, _ = clientFlags("cluster backend " + args[1])
		if args[1] != "add" && args[1] != "remove" {
			return unknown("subcommand of postern cluster backend", args[1], []string{"add", "remove"})
		}
		if err := parseAll(fs, args[2:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return usagef("want exactly one IP:PORT (a backend's cluster address)")
		}
		if err := c().call(ctx, "POST", "/v1/cluster/backend/"+args[1], map[string]string{"addr": fs.Arg(0)}, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "backend %s %s\n", fs.Arg(0), map[string]string{"add": "added: lookups fail over to it", "remove": "removed from this frontend's list"}[args[1]])
		return nil
	case "password":
		if err := parseNone(fs, args[1:]); err != nil {
			return err
		}
		var ans map[string]int
		if err := c().call(ctx, "POST", "/v1/cluster/password", nil, &ans); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d cluster identifiers retired: none handed out before works any more; make a new one with `postern cluster prepare --password-file NEW` (the members keep working on their device keys)\n", ans["retired"])
		return nil
	case "rekey":
		idFile := fs.String("id", "", "a new cluster identifier from a member (when this device's old key is lost)")
		pwFile := fs.String("password-file", "", "file holding the cluster password (with --id)")
		member := fs.String("member", "", "cluster address IP:PORT of a member (default: the identifier's)")
		if err := parseNone(fs, args[1:]); err != nil {
			return err
		}
		var req cluster.RekeyRequest
		if *idFile != "" {
			id, err := readBounded(*idFile, "cluster identifier", maxClusterID)
			if err != nil {
				return err
			}
			pw, err := readPassword(*pwFile)
			if err != nil {
				return err
			}
			req = cluster.RekeyRequest{ID: id, Password: pw, Member: *member}
		}
		var res cluster.RekeyResult
		if err := c().call(ctx, "POST", "/v1/cluster/rekey", req, &res); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "device key replaced: %s (was %s), taken by %s; the old key is revoked\n", res.New, orNone(res.Old), res.Told)
		return nil
	case "readdress":
		self := fs.String("self", "", "this member's new cluster address IP:PORT")
		if err := parseNone(fs, args[1:]); err != nil {
			return err
		}
		if *self == "" {
			return usagef("--self IP:PORT is required")
		}
		if err := c().call(ctx, "POST", "/v1/cluster/readdress", map[string]string{"self": *self}, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "cluster address is now %s; the members are told with the next heartbeat\n", *self)
		return nil
	case "compare":
		attrs := fs.Bool("attrs", false, "compare every attribute too, not only DN and entryCSN")
		if err := parseNone(fs, args[1:]); err != nil {
			return err
		}
		return cmdCompare(ctx, c(), *attrs, *asJSON, stdout)
	case "protect":
		ips := fs.String("ips", "", "the IPs allowed besides the members' own, comma-separated (replaces the list)")
		add := fs.String("add", "", "IPs to add to the allowed list")
		off := fs.Bool("off", false, "allow the cluster identifier from every IP (not recommended)")
		on := fs.Bool("on", false, "limit the cluster identifier to the members and the allowed IPs (default)")
		if err := parseNone(fs, args[1:]); err != nil {
			return err
		}
		var p cluster.Protection
		var err error
		if *ips == "" && *add == "" && !*off && !*on {
			err = c().call(ctx, "GET", "/v1/cluster/protect", nil, &p)
		} else {
			req := cluster.ProtectRequest{Off: *off, Add: splitList(*add)}
			if *ips != "" {
				req.IPs = splitList(*ips)
			}
			err = c().call(ctx, "POST", "/v1/cluster/protect", req, &p)
		}
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, p)
		}
		state := protectState(p)
		fmt.Fprintf(stdout, "Protect cluster identifier: %s\nMember IPs:  %s\nAllowed IPs: %s\n", state, orNone(strings.Join(p.MemberIPs, ", ")), orNone(strings.Join(p.AllowedIPs, ", ")))
		return nil
	case "inject":
		backends := fs.String("backends", "", "backend Device IDs this device may inject mail on")
		frontends := fs.String("frontends", "", "frontend Device IDs this device may inject mail on")
		if err := parseNone(fs, args[1:]); err != nil {
			return err
		}
		var ans struct {
			InjectTo []string `json:"inject_to"`
		}
		set := false
		fs.Visit(func(f *flag.Flag) { set = set || f.Name == "backends" || f.Name == "frontends" })
		if !set {
			// no option only shows (as protect does): it never clears the list
			var st cluster.Status
			if err := c().call(ctx, "GET", "/v1/cluster/status", nil, &st); err != nil {
				return err
			}
			ans.InjectTo = st.InjectTo
			if st.Frontend != nil {
				ans.InjectTo = st.Frontend.InjectTo
			}
		} else if err := c().call(ctx, "POST", "/v1/cluster/inject", cluster.InjectRequest{Backends: splitList(*backends), Frontends: splitList(*frontends)}, &ans); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, ans)
		}
		fmt.Fprintf(stdout, "this device may inject mail on: %s\n", orNone(strings.Join(ans.InjectTo, ", ")))
		return nil
	default:
		return usagef("unknown subcommand %q", sub)
	}
}

func streamJoin(ctx context.Context, c *client, req cluster.JoinRequest, stdout io.Writer) error {
	return streamProgress(ctx, c, "/v1/cluster/join", req, stdout)
}

// streamProgress posts req and prints the progress lines it streams.
func streamProgress(ctx context.Context, c *client, path string, req any, stdout io.Writer) error {
	b, _ := json.Marshal(req)
	resp, err := c.do(ctx, "POST", path, strings.NewReader(string(b)), "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var p JoinProgress
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return fmt.Errorf("bad progress line from appliance: %q", sc.Text())
		}
		switch {
		case p.Error != "":
			return errors.New(p.Error)
		case p.Done:
			return nil
		default:
			fmt.Fprintln(stdout, p.Line)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("join ended without a result (appliance stopped?)")
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func printClusterStatus(w io.Writer, st *cluster.Status) {
	if f := st.Frontend; f != nil {
		fmt.Fprintf(w, "Frontend %s (%s) of cluster %s at %s: %s (measured %s)\n\n", f.DeviceID, f.UUID, f.ClusterUUID, f.Addr, f.Number, fmtTime(f.Measured))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "Remote LDAP server")
		fmt.Fprintln(tw, "Device ID\tCluster No.\tIP address\tPort\tStatus\tIn use")
		for _, b := range f.Backends {
			use := ""
			if b.InUse {
				use = "yes"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", b.DeviceID, b.ClusterNo, b.IP, b.Port, b.Status, use)
		}
		tw.Flush()
		fmt.Fprintf(w, "Allow mail injection on: %s\n", orNone(strings.Join(f.InjectTo, ", ")))
		return
	}
	if !st.Member {
		fmt.Fprintf(w, "Device %s (%s) is not a cluster member (standalone).\n", st.DeviceID, st.UUID)
		if st.Standalone != "" {
			fmt.Fprintf(w, "It was %s.\n", st.Standalone)
		}
		return
	}
	fmt.Fprintf(w, "Cluster %s: this device %s is Cluster No. %d at %s (measured %s)\n\n", st.ClusterUUID, st.DeviceID, st.ClusterNo, st.Addr, fmtTime(st.Measured))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Cluster members")
	fmt.Fprintln(tw, "Device ID\tIP address\tPort\tStatus\tComment\tLocation\tVersion\tLast update time")
	for _, m := range st.Members {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.DeviceID, m.IP, m.Port, m.Status, orDash(m.Comment), orDash(m.Location), m.Version, fmtTime(m.LastUpdate))
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "Cluster Setup")
	fmt.Fprintln(tw, "Device ID / UUID\tCluster No.\tHostname\tIP address\tPort\tIs frontend of\tIs backend of\tComment\tLocation\tVersion\tParity\tLast update time")
	for _, s := range st.Setup {
		fmt.Fprintf(tw, "%s / %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.DeviceID, s.UUID, s.ClusterNo, orDash(s.Hostname), s.IP, s.Port,
			orDash(strings.Join(s.FrontendOf, ",")), orDash(strings.Join(s.BackendOf, ",")), orDash(s.Comment), orDash(s.Location), s.Version, s.Parity, fmtTime(s.LastUpdate))
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "Cluster replication")
	fmt.Fprintln(tw, "Device ID / UUID\tCluster No.\tLast context CSN\tTime")
	for _, r := range st.Replication {
		mark := ""
		if r.Self {
			mark = " *"
		}
		fmt.Fprintf(tw, "%s / %s%s\t%d\t%s\t%s\n", r.DeviceID, r.UUID, mark, r.ClusterNo, orDash(r.ContextCSN), fmtTime(r.Time))
	}
	tw.Flush()
	if st.LastChange != "" {
		fmt.Fprintf(w, "Last change in the cluster: %s   (* = this device)\n", st.LastChange)
	}
	if p := st.Protection; p != nil {
		state := protectState(*p)
		// the same two lists, in the same words, as `cluster protect`
		fmt.Fprintf(w, "\nProtect cluster identifier: %s\nMember IPs:  %s\nAllowed IPs: %s\n", state, orNone(strings.Join(p.MemberIPs, ", ")), orNone(strings.Join(p.AllowedIPs, ", ")))
	}
	fmt.Fprintf(w, "Allow mail injection on: %s\n", orNone(strings.Join(st.InjectTo, ", ")))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cmdCompare runs `cluster compare`: progress on stderr, the report on
// stdout, an error (exit 1) when the members differ.
func cmdCompare(ctx context.Context, c *client, attrs, asJSON bool, stdout io.Writer) error {
	resp, err := c.do(ctx, "POST", fmt.Sprintf("/v1/cluster/compare?attrs=%t", attrs), nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var rep *cluster.CompareReport
	for sc.Scan() {
		var p CompareProgress
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return fmt.Errorf("bad progress line from appliance: %q", sc.Text())
		}
		switch {
		case p.Error != "":
			return errors.New(p.Error)
		case p.Report != nil:
			rep = p.Report
		default:
			fmt.Fprintln(os.Stderr, p.Line)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if rep == nil {
		return errors.New("compare ended without a result (appliance stopped?)")
	}
	if asJSON {
		if err := printJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "Device ID\tCluster No.\tEntries\tTombstones\tConflict entries\tGlue\tError")
		for _, m := range rep.Members {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", m.DeviceID, m.ClusterNo, m.Entries, m.Tombstones, m.Conflicts, m.Glue, m.Error)
		}
		tw.Flush()
		for _, d := range rep.Diffs {
			fmt.Fprintf(stdout, "%s %s:\n", d.Kind, d.UUID)
			ids := make([]string, 0, len(d.Members))
			for id := range d.Members {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			for _, id := range ids {
				fmt.Fprintf(stdout, "  %s: %s\n", id, d.Members[id])
			}
		}
		if n := rep.Missing + rep.Versions; n > len(rep.Diffs) {
			fmt.Fprintf(stdout, "... and %d more (see --json)\n", n-len(rep.Diffs))
		}
		fmt.Fprintf(stdout, "%d entries compared on %d members in %.1fs: %d missing somewhere, %d in different versions\n",
			rep.Entries, len(rep.Members), rep.DurationSec, rep.Missing, rep.Versions)
	}
	if !rep.Equal {
		return errors.New("the members' trees differ")
	}
	return nil
}

func protectState(p cluster.Protection) string {
	if p.On {
		return "on"
	}
	return "off (every IP may use the cluster identifier)"
}
