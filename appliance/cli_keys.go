package appliance

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// `postern keys`, `postern ca` and `postern policy`: secure mail's keys and
// policy, through the control socket (secure_routes.go).

func cmdKeys(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("want generate, import, export, list or delete")
	}
	fs, data, asJSON := clientFlags("keys " + args[0])
	var smime, pgp, dkim, selfSigned, private, ca bool
	var algo, selector, ownerFlag, pwFile, out, fpr string
	switch args[0] {
	case "generate":
		fs.BoolVar(&smime, "smime", false, "an S/MIME certificate (issued by the internal CA unless --self-signed)")
		fs.BoolVar(&pgp, "pgp", false, "an OpenPGP key")
		fs.BoolVar(&dkim, "dkim", false, "a DKIM signing key (domains only)")
		fs.StringVar(&algo, "algo", "", "rsa3072 (default), ecdsa (S/MIME signing only) or ed25519 (OpenPGP, DKIM)")
		fs.BoolVar(&selfSigned, "self-signed", false, "S/MIME: a self-signed certificate instead of one from the internal CA")
		fs.StringVar(&selector, "selector", "postern", "DKIM selector")
	case "import":
		fs.StringVar(&ownerFlag, "owner", "", "the address or domain the keys belong to (default: the one they name)")
		fs.StringVar(&pwFile, "password-file", "", "file holding the PKCS #12 or OpenPGP password (first line)")
		fs.BoolVar(&ca, "ca", false, "trust the file's certificates as S/MIME roots")
	case "export":
		fs.BoolVar(&smime, "smime", false, "S/MIME certificates only")
		fs.BoolVar(&pgp, "pgp", false, "OpenPGP keys only")
		fs.BoolVar(&dkim, "dkim", false, "the DKIM DNS record only")
		fs.BoolVar(&private, "private", false, "the private key, as PKCS #12 (S/MIME) or a protected OpenPGP key; needs --password-file")
		fs.StringVar(&pwFile, "password-file", "", "file holding the password that protects an exported private key")
		fs.StringVar(&out, "out", "", "write to FILE (mode 0600) instead of standard output")
	case "list":
	case "delete":
		fs.StringVar(&fpr, "fingerprint", "", "only the certificate or key with this fingerprint (default: every key of the owner)")
	default:
		return usagef("unknown subcommand %q (want generate, import, export, list or delete)", args[0])
	}
	if err := parseAll(fs, args[1:]); err != nil {
		return err
	}
	kind := ""
	n := 0
	for k, on := range map[string]bool{"smime": smime, "pgp": pgp, "dkim": dkim} {
		if on {
			kind, n = k, n+1
		}
	}
	if n > 1 {
		return usagef("give one of --smime, --pgp, --dkim")
	}
	c := newClient(*data)
	one := func(what string) (string, error) {
		if fs.NArg() != 1 {
			return "", usagef("want exactly one %s", what)
		}
		return fs.Arg(0), nil
	}
	var keys []KeyInfo
	switch args[0] {
	case "generate":
		owner, err := one("ADDRESS or DOMAIN")
		if err != nil {
			return err
		}
		if kind == "" {
			return usagef("give --smime, --pgp or --dkim")
		}
		req := KeyGenerate{Owner: owner, Kind: kind, Algo: algo, SelfSigned: selfSigned, Selector: selector}
		if err := req.check(); err != nil {
			return usagef("%v", err)
		}
		if err := c.call(ctx, "POST", "/v1/keys/generate", req, &keys); err != nil {
			return err
		}
	case "import":
		file, err := one("FILE")
		if err != nil {
			return err
		}
		if ownerFlag != "" {
			if ca {
				return usagef("--ca makes trust anchors, which belong to no address: leave out --owner")
			}
			if err := checkOwnerName(ownerFlag); err != nil {
				return usagef("--owner: %v", err)
			}
		}
		b, err := readBounded(file, "certificate or key file", maxKeyFile)
		if err != nil {
			return err
		}
		req := KeyImport{Owner: ownerFlag, Data: b, CA: ca}
		if pwFile != "" {
			if req.Password, err = readPassword(pwFile); err != nil {
				return err
			}
		}
		if err := c.call(ctx, "POST", "/v1/keys/import", req, &keys); err != nil {
			return err
		}
	case "export":
		owner, err := one("ADDRESS or DOMAIN")
		if err != nil {
			return err
		}
		req := KeyExport{Owner: owner, Kind: kind, Private: private}
		if private {
			if pwFile == "" {
				return usagef("--private needs --password-file: a private key leaves the gateway protected only")
			}
			if req.Password, err = readPassword(pwFile); err != nil {
				return err
			}
		}
		var ans struct{ Data []byte }
		if err := c.call(ctx, "POST", "/v1/keys/export", req, &ans); err != nil {
			return err
		}
		if out != "" {
			return os.WriteFile(out, ans.Data, 0o600)
		}
		_, err = stdout.Write(ans.Data)
		return err
	case "list":
		if fs.NArg() > 1 {
			return usagef("want at most one ADDRESS or DOMAIN")
		}
		if err := c.call(ctx, "GET", "/v1/keys?owner="+url.QueryEscape(fs.Arg(0)), nil, &keys); err != nil {
			return err
		}
	case "delete":
		owner, err := one("ADDRESS or DOMAIN")
		if err != nil {
			return err
		}
		var ans map[string]int
		if err := c.call(ctx, "POST", "/v1/keys/delete", KeyDelete{Owner: owner, Fingerprint: fpr}, &ans); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s of %s deleted\n", plural(ans["deleted"], "key", "keys"), owner)
		return nil
	}
	if *asJSON {
		return printJSON(stdout, keys)
	}
	return printKeys(stdout, keys)
}

func printKeys(w io.Writer, keys []KeyInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OWNER\tKIND\tALGORITHM\tUSAGE\tPRIVATE\tEXPIRES\tFINGERPRINT\tSUBJECT")
	var records []string
	for _, k := range keys {
		exp := "-"
		if !k.NotAfter.IsZero() {
			exp = k.NotAfter.UTC().Format(time.DateOnly)
		}
		priv := "no"
		if k.Private {
			priv = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", terminalSafe(k.Owner), k.Kind, k.Algorithm, strings.Join(k.Usage, ","), priv, exp, k.Fingerprint, terminalSafe(k.Subject))
		if k.Record != "" {
			records = append(records, k.Record)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range records {
		fmt.Fprintf(w, "publish in DNS: %s\n", r)
	}
	return nil
}

func cmdCA(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "init" {
		return usagef("want init")
	}
	fs, data, asJSON := clientFlags("ca init")
	var req CAInit
	fs.StringVar(&req.Name, "name", "", "the CA's common name (default \"Postern internal CA\")")
	fs.StringVar(&req.Algo, "algo", "", "ecdsa (default) or rsa3072")
	if err := parseAll(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if err := req.check(); err != nil {
		return usagef("%v", err)
	}
	var keys []KeyInfo
	if err := newClient(*data).call(ctx, "POST", "/v1/ca/init", req, &keys); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, keys)
	}
	return printKeys(stdout, keys)
}

func cmdPolicy(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("want set or show")
	}
	fs, data, asJSON := clientFlags("policy " + args[0])
	var req PolicySet
	fs.StringVar(&req.Domain, "domain", "", "a managed domain's policy")
	fs.StringVar(&req.User, "user", "", "a user's policy (an address in a managed domain)")
	switch args[0] {
	case "set":
		fs.StringVar(&req.Encrypt, "encrypt", "", "never, if-key or always (inherit: take the level above)")
		fs.StringVar(&req.Sign, "sign", "", "never or always (inherit: take the level above)")
		fs.StringVar(&req.Method, "method", "", "smime or pgp (inherit: take the level above)")
		fs.StringVar(&req.Trigger, "trigger", "", "global: the subject prefix that forces encryption (none: off)")
		fs.StringVar(&req.NoKey, "no-key", "", "global: reject (554 5.7.1 at SMTP time) or bounce (a DSN) when encryption is required and no key is known")
	case "show":
	default:
		return usagef("unknown subcommand %q (want set or show)", args[0])
	}
	if err := parseAll(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	c := newClient(*data)
	var rep PolicyReport
	if args[0] == "set" {
		if req.Encrypt == "" && req.Sign == "" && req.Method == "" && req.Trigger == "" && req.NoKey == "" {
			return usagef("nothing to set")
		}
		if err := req.check(); err != nil {
			return usagef("%v", err)
		}
		if err := c.call(ctx, "POST", "/v1/secure/policy", req, &rep); err != nil {
			return err
		}
	} else {
		if err := checkPolicyLevel(req.Domain, req.User); err != nil {
			return usagef("%v", err)
		}
		q := url.Values{}
		if req.Domain != "" {
			q.Set("domain", req.Domain)
		}
		if req.User != "" {
			q.Set("user", req.User)
		}
		if err := c.call(ctx, "GET", "/v1/secure/policy?"+q.Encode(), nil, &rep); err != nil {
			return err
		}
	}
	if *asJSON {
		return printJSON(stdout, rep)
	}
	p, s := rep.Effective, rep.Sources
	trigger := p.Trigger
	if trigger == "" {
		trigger = "(none)"
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "policy of %s\tvalue\tfrom\n", rep.Level)
	fmt.Fprintf(tw, "encrypt\t%s\t%s\n", p.Encrypt, s.Encrypt)
	fmt.Fprintf(tw, "sign\t%s\t%s\n", p.Sign, s.Sign)
	fmt.Fprintf(tw, "method\t%s\t%s\n", p.Method, s.Method)
	fmt.Fprintf(tw, "subject trigger\t%s\t%s\n", terminalSafe(trigger), s.Trigger)
	fmt.Fprintf(tw, "no key\t%s\t%s\n", p.NoKey, s.NoKey)
	return tw.Flush()
}
