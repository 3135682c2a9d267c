package appliance

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// startTest starts a whole appliance in-process on loopback ports chosen by
// the kernel, with the given admin password.
func startTest(t *testing.T) *Appliance {
	t.Helper()
	a, err := New(Config{
		DataDir: filepath.Join(t.TempDir(), "var"), AdminPassword: "pw-for-tests",
		LDAPAddr: "127.0.0.1:0", LDAPSAddr: "127.0.0.1:0", SMTPAddr: "127.0.0.1:0",
		AdminAddr: "off", ClusterAddr: "off", MetricsAddr: "127.0.0.1:0",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// run runs the CLI against a's data directory and returns its exit code and output.
func run(t *testing.T, a *Appliance, stdin string, args ...string) (int, string) {
	t.Helper()
	t.Setenv("POSTERN_DATA", a.cfg.DataDir)
	var out bytes.Buffer
	code := Main(context.Background(), append([]string{"postern"}, args...), strings.NewReader(stdin), &out, &out)
	return code, out.String()
}

func TestCLIInProcess(t *testing.T) {
	a := startTest(t)
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"status", "", []string{"status"}, 0, a.Identity().DeviceID},
		{"status json", "", []string{"status", "--json"}, 0, `"entries": 5`},
		{"status extra arg", "", []string{"status", "x"}, 2, `unexpected argument "x"`},
		{"domain add", "", []string{"domain", "add", "Example.COM.", "--deliver-to", "127.0.0.1:2526", "--tls", "encrypt"}, 0, "domain example.com delivers to 127.0.0.1:2526 (TLS encrypt)"},
		{"domain add flags first", "", []string{"domain", "add", "--deliver-to", "mx.example.net:25", "b.example"}, 2, "want the domain name first"},
		{"domain add no target", "", []string{"domain", "add", "c.example"}, 2, "--deliver-to HOST:PORT is required"},
		{"domain bad port", "", []string{"domain", "add", "c.example", "--deliver-to", "mx:0"}, 1, "port must be 1-65535"},
		{"domain bad tls", "", []string{"domain", "add", "c.example", "--deliver-to", "mx:25", "--tls", "always"}, 2, "invalid TLS policy"},
		{"domain bad name", "", []string{"domain", "add", "localhost", "--deliver-to", "mx:25"}, 1, "invalid domain name"},
		{"domain list", "", []string{"domain", "list"}, 0, "example.com  127.0.0.1:2526  encrypt"},
		{"domain remove missing", "", []string{"domain", "remove", "nope.example"}, 1, `no managed domain "nope.example"`},
		{"relay networks", "", []string{"relay", "networks", "192.0.2.7/24", "2001:db8::1"}, 0, "192.0.2.0/24 2001:db8::1/128"},
		{"relay bad network", "", []string{"relay", "networks", "10.0.0.0/33"}, 1, "invalid network"},
		{"relay smarthost", "", []string{"relay", "smarthost", "smarthost.example.net:587"}, 0, "smarthost.example.net:587"},
		{"relay smarthost none", "", []string{"relay", "smarthost", "none"}, 0, "(none: MX lookup)"},
		{"queue list empty", "", []string{"queue", "list"}, 0, "0 messages in the queue"},
		{"queue show missing", "", []string{"queue", "show", "NOPE"}, 1, "no queued message NOPE"},
		{"queue show no id", "", []string{"queue", "show"}, 2, "want exactly one queue ID"},
		{"system set nothing", "", []string{"system", "set"}, 2, "nothing to set"},
		{"system set", "", []string{"system", "set", "--location", "Basel"}, 0, "Location:   Basel"},
		{"ldif import stdin", "dn: cn=x,ou=people,dc=postern,dc=local\nobjectClass: person\ncn: x\nsn: y\n", []string{"ldif", "import", "-"}, 0, "imported 1 entry: 1 added, 0 updated"},
		{"ldif import missing file", "", []string{"ldif", "import", "/nonexistent.ldif"}, 1, "no such file"},
		{"ldif export", "", []string{"ldif", "export"}, 0, "dn: cn=x,ou=people,dc=postern,dc=local"},
		{"unknown", "", []string{"nope"}, 2, `unknown command "nope"`},
		{"version", "", []string{"version"}, 0, "postern "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := run(t, a, tc.stdin, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d (want %d), output:\n%s\nwant it to contain %q", code, tc.code, out, tc.want)
			}
		})
	}
	// The policy is in the directory, where the gateway reads it.
	d := &ldapDirectory{a: a, hasUsers: map[string]cachedBool{}}
	dom, ok, err := d.Domain(context.Background(), "example.com")
	if err != nil || !ok || dom.DeliverTo != "127.0.0.1:2526" || dom.TLS != "encrypt" {
		t.Fatalf("directory view of example.com: %+v %v %v", dom, ok, err)
	}
	rp, err := d.Relay(context.Background())
	if err != nil || len(rp.Networks) != 2 || rp.Smarthost != "" {
		t.Fatalf("directory view of relay: %+v %v", rp, err)
	}
}

func TestSecondInstanceRefused(t *testing.T) {
	a := startTest(t)
	_, err := New(Config{DataDir: a.cfg.DataDir})
	if err == nil || !strings.Contains(err.Error(), "in use by another postern (pid "+strconv.Itoa(os.Getpid())+")") {
		t.Fatalf("second New on the same data: %v", err)
	}
}

func TestParseAll(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	v := fs.String("v", "", "")
	if err := parseAll(fs, []string{"a", "-v", "1", "b"}); err != nil {
		t.Fatal(err)
	}
	if *v != "1" || strings.Join(fs.Args(), ",") != "a,b" {
		t.Fatalf("v=%q args=%q", *v, fs.Args())
	}
}

func TestValidHostname(t *testing.T) {
	for h, want := range map[string]bool{
		"gw1.example.com": true, "a": true, "a-b.c": true, strings.Repeat("a", 63) + ".x": true,
		"": false, "-a": false, "a-": false, "a..b": false, "a_b": false, strings.Repeat("a", 64): false, "a.-b": false, "a-.b": false,
	} {
		if validHostname(h) != want {
			t.Errorf("validHostname(%q) = %v, want %v", h, !want, want)
		}
	}
}

func TestTerminalSafe(t *testing.T) {
	for in, want := range map[string]string{
		"Subject: hi\n\tfolded\n":    "Subject: hi\n\tfolded\n",
		"X: \x1b[2J\x1b]0;owned\x07": `X: \x1b[2J\x1b]0;owned\x07`,
		"a\rb\x00c\x7f\u0085d é":     `a\x0db\x00c\x7f\x85d é`,
	} {
		if got := terminalSafe(in); got != want {
			t.Errorf("terminalSafe(%q) = %q, want %q", in, got, want)
		}
	}
}
