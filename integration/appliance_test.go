package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

func dialAdmin(t *testing.T, a *appliance) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(a.ldapURL())
	if err != nil {
		t.Fatalf("dial %s: %v", a.ldapURL(), err)
	}
	if err := c.Bind(adminDN, adminPassword); err != nil {
		c.Close()
		t.Fatalf("bind: %v", err)
	}
	return c
}

func addPerson(c *ldap.Conn, cn string) error {
	r := ldap.NewAddRequest("cn="+cn+",ou=people,"+suffix, nil)
	r.Attribute("objectClass", []string{"person"})
	r.Attribute("cn", []string{cn})
	r.Attribute("sn", []string{"Test"})
	return c.Add(r)
}

// TestRestartKeepsData: a clean stop and start keeps every entry, the
// identity and the admin password.
func TestRestartKeepsData(t *testing.T) {
	a := startAppliance(t, "127.0.0.3")
	c := dialAdmin(t, a)
	for i := 0; i < 50; i++ {
		if err := addPerson(c, fmt.Sprintf("keep%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	before, err := a.cli("status", "--json")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, before)
	}
	a.stop()
	a.restart()
	c = dialAdmin(t, a)
	defer c.Close()
	res, err := c.Search(ldap.NewSearchRequest("ou=people,"+suffix, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 0, 0, false, "(cn=keep*)", []string{"1.1"}, nil))
	if err != nil || len(res.Entries) != 50 {
		t.Fatalf("after restart: %d entries, err %v", len(res.Entries), err)
	}
	after, _ := a.cli("status", "--json")
	id := regexp.MustCompile(`"device_id": "([^"]+)"`)
	if id.FindString(before) == "" || id.FindString(before) != id.FindString(after) {
		t.Fatalf("device identity changed across restart:\n%s\n%s", before, after)
	}
	if strings.Contains(a.out.String(), "admin password") {
		t.Fatalf("admin password printed although it was set from the environment:\n%s", a.out)
	}
}

// TestKill9DuringModifies kills the appliance in the middle of a stream of
// modifies: every modify that was acknowledged is there after the restart,
// and the store opens cleanly.
func TestKill9DuringModifies(t *testing.T) {
	a := startAppliance(t, "127.0.0.4")
	const workers = 8
	c := dialAdmin(t, a)
	for w := 0; w < workers; w++ {
		if err := addPerson(c, fmt.Sprintf("crash%d", w)); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()

	acked := make([]int, workers) // last acknowledged value per worker
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var total sync.Map
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			conn, err := ldap.DialURL(a.ldapURL())
			if err != nil {
				return
			}
			defer conn.Close()
			if conn.Bind(adminDN, adminPassword) != nil {
				return
			}
			for i := 1; i <= 100000 && ctx.Err() == nil; i++ {
				m := ldap.NewModifyRequest(fmt.Sprintf("cn=crash%d,ou=people,%s", w, suffix), nil)
				m.Replace("description", []string{strconv.Itoa(i)})
				if err := conn.Modify(m); err != nil {
					return // the kill cut the connection
				}
				acked[w] = i
				total.Store(w, i)
			}
		}(w)
	}
	// Let the stream run, then kill -9 in the middle of it.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		n := 0
		total.Range(func(_, v any) bool { n += v.(int); return true })
		if n >= 2000 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.kill9()
	wg.Wait()
	sum := 0
	for _, v := range acked {
		sum += v
	}
	if sum < 100 {
		t.Fatalf("only %d modifies acknowledged before the kill; the test proves nothing", sum)
	}
	a.restart()
	c = dialAdmin(t, a)
	defer c.Close()
	for w := 0; w < workers; w++ {
		res, err := c.Search(ldap.NewSearchRequest(fmt.Sprintf("cn=crash%d,ou=people,%s", w, suffix), ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"description"}, nil))
		if err != nil || len(res.Entries) != 1 {
			t.Fatalf("worker %d entry after kill: %v", w, err)
		}
		got, _ := strconv.Atoi(res.Entries[0].GetAttributeValue("description"))
		// The value is the last acknowledged one, or the one in flight at the kill.
		if got != acked[w] && got != acked[w]+1 {
			t.Errorf("worker %d: stored %d, last acknowledged %d", w, got, acked[w])
		}
	}
	t.Logf("%d acknowledged modifies before kill -9, all present", sum)
}

// TestCLI covers version, status, system settings, LDIF export/import with
// progress, and the errors a user makes.
func TestCLI(t *testing.T) {
	a := startAppliance(t, "127.0.0.5")

	out, err := a.cli("version")
	if err != nil || !strings.HasPrefix(out, "postern "+testVersion+" ") {
		t.Fatalf("version: %q %v", out, err)
	}
	out, err = a.cli("status")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	for _, want := range []string{"Device ID", "PST-", "Firmware  ", testVersion, "Entries", "Listener ldap", a.addr["ldap"], "#001#"} {
		if !strings.Contains(out, want) {
			t.Fatalf("status lacks %q:\n%s", want, out)
		}
	}

	out, err = a.cli("system", "set", "--hostname", "gw1.example.com", "--comment", "rack 4", "--location", "Zürich")
	if err != nil || !strings.Contains(out, "gw1.example.com") || !strings.Contains(out, "Zürich") {
		t.Fatalf("system set: %v\n%s", err, out)
	}
	out, err = a.cli("system", "set", "--hostname", "bad_host!")
	if exitCode(err) != 1 || !strings.Contains(out, "invalid hostname") {
		t.Fatalf("bad hostname: exit %d\n%s", exitCode(err), out)
	}
	out, _ = a.cli("system", "show", "--json")
	if !strings.Contains(out, `"hostname": "gw1.example.com"`) {
		t.Fatalf("system show:\n%s", out)
	}

	// Import 2,500 entries: progress, then the total.
	ldifPath := filepath.Join(t.TempDir(), "people.ldif")
	var b strings.Builder
	b.WriteString("version: 1\n")
	for i := 0; i < 2500; i++ {
		fmt.Fprintf(&b, "\ndn: uid=u%04d,ou=people,%s\nobjectClass: inetOrgPerson\nuid: u%04d\ncn: User %d\nsn: U\nmail: u%04d@example.com\n", i, suffix, i, i, i)
	}
	os.WriteFile(ldifPath, []byte(b.String()), 0o600)
	out, err = a.cli("ldif", "import", ldifPath)
	if err != nil || !strings.Contains(out, "imported 2500 entries: 2500 added, 0 updated") || !strings.Contains(out, "imported 1000 entries") {
		t.Fatalf("import: %v\n%s", err, out)
	}
	// Export → import again is idempotent: everything updated, nothing added.
	exported, err := a.cli("ldif", "export")
	if err != nil || !strings.Contains(exported, "dn: uid=u2499,ou=people,"+suffix) || !strings.Contains(exported, "entryUUID: ") {
		t.Fatalf("export: %v\n%.500s", err, exported)
	}
	if strings.Index(exported, "dn: ou=people,"+suffix) > strings.Index(exported, "dn: uid=u0000,") {
		t.Fatalf("export writes a child before its parent")
	}
	out, err = a.cliIn(strings.NewReader(exported), "ldif", "import", "-")
	if err != nil || !strings.Contains(out, "0 added") {
		t.Fatalf("re-import: %v\n%s", err, out)
	}
	// A bad record stops the import with its line and keeps what was there.
	out, err = a.cliIn(strings.NewReader("dn: uid=x,ou=people,"+suffix+"\nobjectClass: inetOrgPerson\nuid x\n"), "ldif", "import", "-")
	if exitCode(err) != 1 || !strings.Contains(out, "line 3") {
		t.Fatalf("bad LDIF: exit %d\n%s", exitCode(err), out)
	}
	out, err = a.cliIn(strings.NewReader("dn: uid=y,ou=people,"+suffix+"\nobjectClass: inetOrgPerson\nuid: y\n"), "ldif", "import", "-")
	if exitCode(err) != 1 || !strings.Contains(strings.ToLower(out), "uid=y") {
		t.Fatalf("schema-violating LDIF: exit %d\n%s", exitCode(err), out)
	}
	st, _ := a.cli("status", "--json")
	if !strings.Contains(st, `"entries": 2505`) {
		t.Fatalf("entry count after imports (5 base + 2500):\n%s", st)
	}

	// Usage errors exit 2 with a message; a second appliance on the same
	// data directory is refused.
	out, err = a.cli("frobnicate")
	if exitCode(err) != 2 || !strings.Contains(out, `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: exit %d\n%s", exitCode(err), out)
	}
	out, err = a.cli("serve", "--ldap", freePort(t, "127.0.0.5"), "--ldaps", "off", "--smtp", "off", "--admin", "off", "--cluster", "off", "--metrics", "off")
	if exitCode(err) != 1 || !strings.Contains(out, "in use by another postern") {
		t.Fatalf("second serve on the same data: exit %d\n%s", exitCode(err), out)
	}
	// Without a running appliance the CLI says so.
	a.stop()
	out, err = a.cli("status")
	if exitCode(err) != 1 || !strings.Contains(out, "no running appliance") {
		t.Fatalf("status without appliance: exit %d\n%s", exitCode(err), out)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("CLI hung")
	}
}

// TestMetricsFormat scrapes /metrics and checks it with Prometheus's own
// promtool.
func TestMetricsFormat(t *testing.T) {
	a := startAppliance(t, "127.0.0.6")
	resp, err := http.Get("http://" + a.addr["metrics"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"postern_ldap_entries 5", `postern_info{device_id="PST-`, `version="` + testVersion + `"`} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("metrics lack %q:\n%.3000s", want, body)
		}
	}
	out, err := tool(t, nil, string(body), "promtool", "check", "metrics")
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
