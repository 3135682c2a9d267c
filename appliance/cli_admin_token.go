package appliance

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// cmdAdminToken is `postern admin token create [--name N] | list | revoke ID`:
// bearer tokens for the web menu's JSON API.
func cmdAdminToken(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("want token create, token list or token revoke ID")
	}
	fs, data, asJSON := clientFlags("admin token " + args[0])
	c := func() *client { return newClient(*data) }
	switch args[0] {
	case "create":
		name := fs.String("name", "", "what the token is for (shown in token list)")
		if err := parseAll(fs, args[1:]); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return usagef("unexpected argument %q", fs.Arg(0))
		}
		var t AdminTokenCreated
		if err := c().call(ctx, "POST", "/v1/admin/tokens", map[string]string{"name": *name}, &t); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, t)
		}
		fmt.Fprintf(stdout, "admin token %s (shown once): %s\nuse it as: curl -H 'Authorization: Bearer %s' https://ADMIN-ADDRESS/api/v1/status\n", t.ID, t.Token, t.Token)
		return nil
	case "list":
		if err := parseAll(fs, args[1:]); err != nil {
			return err
		}
		var ts []AdminToken
		if err := c().call(ctx, "GET", "/v1/admin/tokens", nil, &ts); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, ts)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED\tLAST USED")
		for _, t := range ts {
			used := "never"
			if !t.LastUsed.IsZero() {
				used = t.LastUsed.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Created.Format(time.RFC3339), used)
		}
		return tw.Flush()
	case "revoke":
		if err := parseAll(fs, args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return usagef("want exactly one token ID (see postern admin token list)")
		}
		if err := c().call(ctx, "DELETE", "/v1/admin/tokens/"+fs.Arg(0), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "admin token %s revoked: it no longer works\n", fs.Arg(0))
		return nil
	default:
		return unknown("subcommand of postern admin token", args[0], []string{"create", "list", "revoke"})
	}
}
