package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/smtp"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// chromiumBin is Debian's chromium, installed by make test (.ci/deps.sh).
const chromiumBin = "chromium"

// webBrowser is a headless Chromium driven through the DevTools protocol,
// with a fresh profile, downloads into a directory of the test, and every
// console error and uncaught exception of its pages recorded.
type webBrowser struct {
	t         *testing.T
	ctx       context.Context
	downloads string
	shots     string

	mu     sync.Mutex
	errors []string
}

func newWebBrowser(t *testing.T) *webBrowser {
	t.Helper()
	bin := requireTool(t, chromiumBin)
	dir := t.TempDir()
	b := &webBrowser{t: t, downloads: filepath.Join(dir, "downloads"), shots: filepath.Join(dir, "screenshots")}
	os.MkdirAll(b.downloads, 0o755)
	os.MkdirAll(b.shots, 0o755)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-quic", true),
		// without these, Chromium dials out (safe browsing, updates, sync)
		// and this machine's closed network refuses it
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// the appliances' certificates are self-signed
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.UserDataDir(filepath.Join(dir, "profile")), chromedp.WindowSize(1360, 900))
	ctx, cancelC := chromedp.NewContext(actx)
	b.ctx = ctx
	t.Cleanup(func() { cancelC(); cancelA() })
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: b.downloads}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				b.mu.Lock()
				b.errors = append(b.errors, fmt.Sprintf("%s: %s (%s:%d)", m.Type, m.Text, m.URL, m.Line+1))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// do runs actions with a bound on the time they take.
func (b *webBrowser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// text returns the text of the first element the CSS selector finds.
func (b *webBrowser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("browser: text of %s: %v", sel, err)
	}
	return s
}

func (b *webBrowser) eval(js string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("browser: %s: %v", js, err)
	}
	return s
}

func (b *webBrowser) location() string {
	b.t.Helper()
	return b.eval("location.pathname")
}

// waitText waits until the element's text holds want, and returns it.
func (b *webBrowser) waitText(sel, want string, within time.Duration) string {
	b.t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for time.Now().Before(deadline) {
		last = b.eval(fmt.Sprintf(`(document.querySelector(%q) || {}).innerText || ""`, sel))
		if strings.Contains(last, want) {
			return last
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.shot("failed-wait")
	b.t.Fatalf("browser: %s did not show %q within %s; it shows:\n%s", sel, want, within, last)
	return ""
}

// shot takes a screenshot of the whole page into the test's directory (and
// into $POSTERN_SCREENSHOTS when publish is set, for docs/screenshots).
func (b *webBrowser) shot(name string, publish ...bool) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644)
	if dir := os.Getenv("POSTERN_SCREENSHOTS"); dir != "" && len(publish) > 0 && publish[0] {
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			b.t.Errorf("publish screenshot: %v", err)
		}
	}
}

// noConsoleErrors fails when a page wrote an error to the console (a CSP
// violation, a failed request, a script error).
func (b *webBrowser) noConsoleErrors(page string) {
	b.t.Helper()
	time.Sleep(300 * time.Millisecond) // let the last messages arrive
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errors) > 0 {
		b.t.Errorf("console errors on the %s page:\n%s", page, strings.Join(b.errors, "\n"))
		b.errors = nil
	}
}

// download waits for a downloaded file whose name matches and returns
// its path.
func (b *webBrowser) download(pattern string) string {
	b.t.Helper()
	re := regexp.MustCompile(pattern)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		ents, _ := os.ReadDir(b.downloads)
		for _, e := range ents {
			if re.MatchString(e.Name()) && !strings.HasSuffix(e.Name(), ".crdownload") {
				return filepath.Join(b.downloads, e.Name())
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("no download matching %s", pattern)
	return ""
}

// login opens the menu of x and logs in with the admin password.
func (b *webBrowser) login(x *appliance) string {
	b.t.Helper()
	base := "https://" + x.addr["admin"]
	b.do("open "+base, chromedp.Navigate(base+"/cluster"), chromedp.WaitVisible(chromedp.CSS("#password")))
	if p := b.location(); p != "/login" {
		b.t.Fatalf("without a session the menu is at %s, want /login", p)
	}
	b.do("log in", chromedp.SendKeys(chromedp.CSS("#password"), adminPassword), chromedp.Click(chromedp.CSS(`section.login button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("#introduction")))
	return base
}

// TestWebMenuInBrowser is issue 14's browser scenario: a real headless
// Chromium logs in, prepares a cluster and downloads clusterid.txt, joins
// a second appliance through the upload form and sees the progress, sees
// both members OK, sees a member killed with -9 turn bad without a reload,
// allows injection, protects the identifier, adds a domain, deletes a
// queued message and exports the directory; every main page is
// screenshotted and none writes an error to the console.
func TestWebMenuInBrowser(t *testing.T) {
	f := newClusterFixture(t)
	alpha := f.start("127.0.0.40")
	bravo := f.start("127.0.0.41")
	for _, x := range []*appliance{alpha, bravo} {
		if !strings.Contains(x.out.String(), "admin menu on https://"+x.addr["admin"]+"/") {
			t.Fatalf("start-up report lacks the admin URL:\n%s", x.out)
		}
	}
	aID, bID := alpha.deviceID(t), bravo.deviceID(t)
	b := newWebBrowser(t)

	// alpha: log in, prepare, download clusterid.txt
	alphaURL := b.login(alpha)
	b.shot("cluster-standalone")
	b.noConsoleErrors("cluster (standalone)")
	b.do("prepare", chromedp.SendKeys(chromedp.CSS("#prepare-password"), "correct horse battery"),
		chromedp.SendKeys(chromedp.CSS("#prepare-allow"), "127.0.0.41"),
		chromedp.Click(chromedp.CSS(`#prepare button[type=submit]`)))
	idFile := b.download(`^clusterid\.txt$`)
	if raw, _ := os.ReadFile(idFile); len(raw) < 100 {
		t.Fatalf("clusterid.txt: %q", raw)
	}

	// bravo: upload it, start, watch the progress
	bravoURL := b.login(bravo)
	if got := b.eval(`document.querySelector("#join-self").value`); got != bravo.addr["cluster"] {
		t.Errorf("this device's address is prefilled with %q, want %q", got, bravo.addr["cluster"])
	}
	b.do("join", chromedp.SetUploadFiles(chromedp.CSS("#join-id"), []string{idFile}),
		chromedp.SendKeys(chromedp.CSS("#join-password"), "correct horse battery"),
		chromedp.SendKeys(chromedp.CSS("#join-member"), alpha.addr["cluster"]),
		chromedp.Click(chromedp.CSS(`#join button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS("#live-job")))
	if p := b.location(); !strings.HasPrefix(p, "/cluster/join/") {
		t.Fatalf("Start led to %s", p)
	}
	b.eval(`window.posternMarker = "no reload"; "ok"`)
	b.waitText("#live-job", "ok: ", 20*time.Second) // the checks, listed at once
	prog := b.waitText("#live-job", "This device is now a member of the cluster.", 60*time.Second)
	if !regexp.MustCompile(`copied (\d+)/(\d+) entries`).MatchString(prog) || !strings.Contains(prog, "checking") {
		t.Errorf("join progress lacks the checks or the copy:\n%s", prog)
	}
	b.shot("join-progress", true)
	b.noConsoleErrors("join progress")

	// alpha: both members OK in Cluster members, without a reload
	b.do("alpha cluster page", chromedp.Navigate(alphaURL+"/cluster"), chromedp.WaitVisible(chromedp.CSS("#members-table")))
	b.eval(`window.posternMarker = "no reload"; "ok"`)
	rowSel := func(id string) string { return fmt.Sprintf(`#members-table tr[data-device=%q]`, id) }
	b.waitText(rowSel(bID), "OK (", 30*time.Second)
	b.waitText(rowSel(aID), "this device", 5*time.Second)
	if got := b.eval(`window.posternMarker || "reloaded"`); got != "no reload" {
		t.Errorf("the page reloaded (%s): tables must refresh in place", got)
	}
	b.noConsoleErrors("cluster")

	// allow injection on bravo
	b.do("inject", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#inject-backends option[value=%q]`, bID))),
		chromedp.Click(chromedp.CSS(`#inject button[type=submit]`)))
	b.waitText(".flash.ok", "may inject mail on "+bID, 10*time.Second)
	if out, _ := alpha.cli("cluster", "inject"); !strings.Contains(out, bID) {
		t.Errorf("cluster inject after the menu: %s", out)
	}

	// protect the identifier: checkbox and one IP per line
	if b.eval(`String(document.querySelector("#protect-limit").checked)`) != "true" {
		b.do("check protect", chromedp.Click(chromedp.CSS("#protect-limit")))
	}
	b.do("protect", chromedp.SetValue(chromedp.CSS("#protect-ips"), "127.0.0.41\n127.0.0.42"),
		chromedp.Click(chromedp.CSS(`#protect button[type=submit]`)))
	b.waitText(".flash.ok", "limited to 127.0.0.41, 127.0.0.42", 10*time.Second)
	if out, _ := alpha.cli("cluster", "protect"); !strings.Contains(out, "127.0.0.42") {
		t.Errorf("cluster protect after the menu: %s", out)
	}
	b.waitText(rowSel(bID), "OK (", 30*time.Second)
	b.shot("cluster", true)
	b.noConsoleErrors("cluster")

	// kill -9 bravo: its row turns within 10 s, without a reload
	b.eval(`window.posternMarker = "no reload"; "ok"`)
	bravo.kill9()
	killed := time.Now()
	deadline := killed.Add(10 * time.Second)
	for {
		cls := b.eval(fmt.Sprintf(`(document.querySelector(%q) || {}).className || ""`, rowSel(bID)))
		st := b.eval(fmt.Sprintf(`(document.querySelector(%q) || {innerText: ""}).innerText`, rowSel(bID)+" td.status"))
		if cls == "bad" && !strings.HasPrefix(st, "OK") {
			t.Logf("bravo's row changed %s after kill -9: %s", time.Since(killed).Round(100*time.Millisecond), st)
			break
		}
		if time.Now().After(deadline) {
			b.shot("failed-kill")
			t.Fatalf("10 s after kill -9 bravo's row still says %q (%s)", st, cls)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if got := b.eval(`window.posternMarker || "reloaded"`); got != "no reload" {
		t.Errorf("the page reloaded (%s)", got)
	}
	b.shot("cluster-member-down")
	_ = bravoURL

	// Mail: add a domain, queue a message for it, delete it
	b.do("mail page", chromedp.Navigate(alphaURL+"/mail"), chromedp.WaitVisible(chromedp.CSS("#domain-name")))
	b.do("add domain", chromedp.SendKeys(chromedp.CSS("#domain-name"), "example.net"),
		chromedp.SendKeys(chromedp.CSS("#domain-server"), "127.0.0.49:2526"),
		chromedp.Click(chromedp.CSS(`#domains button[type=submit]`)))
	b.waitText(".flash.ok", "Managed domain example.net saved", 10*time.Second)
	if out, _ := alpha.cli("domain", "list"); !strings.Contains(out, "example.net") {
		t.Errorf("domain list after the menu: %s", out)
	}
	queueID := sendPlain(t, alpha, "sender@example.org", "user@example.net", "web menu test")
	b.waitText("#queue-table", queueID, 15*time.Second) // the queue table refreshes by itself
	// every member's queue (queue list --cluster): alpha's message, and
	// bravo, killed above, not reached
	b.waitText("#cluster-queue-table", queueID, 15*time.Second)
	b.waitText("#cluster-queue-table", "not reached", 15*time.Second)
	b.shot("mail", true)
	b.noConsoleErrors("mail")
	b.do("show message", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#queue-table a[href="/mail/queue/%s"]`, queueID))))
	b.waitText("pre.headers", "Subject: web menu test", 10*time.Second)
	b.do("delete", chromedp.Click(chromedp.CSS(`main p a.button.danger`)))
	if got := b.waitText("section.confirm", "no bounce", 10*time.Second); !strings.Contains(got, "user@example.net") {
		t.Errorf("delete confirmation does not say what happens: %q", got)
	}
	b.do("confirm delete", chromedp.Click(chromedp.CSS(`section.confirm button[type=submit]`)))
	b.waitText(".flash.ok", "Queued message "+queueID+" deleted", 10*time.Second)
	if out, _ := alpha.cli("queue", "list"); strings.Contains(out, queueID) {
		t.Errorf("message %s still queued after the menu deleted it:\n%s", queueID, out)
	}
	b.noConsoleErrors("queue")

	// Directory: export LDIF
	b.do("directory", chromedp.Navigate(alphaURL+"/directory"), chromedp.WaitVisible(chromedp.CSS("#export")))
	b.shot("directory")
	b.do("export", chromedp.Click(chromedp.CSS(`#export a.button`)))
	ldif, _ := os.ReadFile(b.download(`^postern-.*\.ldif$`))
	if !strings.Contains(string(ldif), "dn: dc=postern,dc=local") || !strings.Contains(string(ldif), "cn=example.net,ou=domains") {
		t.Errorf("exported LDIF lacks the tree or the new domain:\n%.500s", ldif)
	}
	b.noConsoleErrors("directory")

	// the other pages render and say what they are for
	for _, pg := range []struct{ path, sel, want string }{
		{"/system", "main", "Firmware version"},
		{"/ssl", "#certificate", "Subject"},
		{"/logs", "main", "Newest first"},
		{"/status", "main", "Listeners"},
	} {
		b.do(pg.path, chromedp.Navigate(alphaURL+pg.path), chromedp.WaitVisible(chromedp.CSS(pg.sel)))
		if got := b.text(pg.sel); !strings.Contains(got, pg.want) {
			t.Errorf("%s lacks %q", pg.path, pg.want)
		}
		b.shot(strings.TrimPrefix(pg.path, "/"))
		b.noConsoleErrors(pg.path)
	}
	// log out: the menu is closed again
	b.do("logout", chromedp.Click(chromedp.CSS(`form.logout button`)), chromedp.WaitVisible(chromedp.CSS("#password")))
	b.do("after logout", chromedp.Navigate(alphaURL+"/mail"), chromedp.WaitVisible(chromedp.CSS("#password")))
	t.Logf("screenshots in %s", b.shots)
}

// sendPlain sends one message to x over SMTP (no TLS) and returns its
// queue ID (the only message in x's queue).
func sendPlain(t *testing.T, x *appliance, from, to, subject string) string {
	t.Helper()
	c, err := smtp.Dial(x.addr["smtp"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("webtest.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail(from); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(to); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(w, "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nhello\r\n", from, to, subject)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	out, err := x.cli("queue", "list", "--json")
	var q []struct {
		ID string `json:"id"`
	}
	if err != nil || json.Unmarshal([]byte(out), &q) != nil || len(q) != 1 {
		t.Fatalf("queue list: %v\n%s", err, out)
	}
	return q[0].ID
}

// TestWebMenuInBrowserFrontend is the frontend part of issues 13 and 14
// in a real headless Chromium: a third appliance is attached as a frontend
// through its own web menu (a refused attach first, every problem listed
// at once; then the upload form with an identifier downloaded from the
// base's menu), restarts in its new role while the browser stays logged
// in, shows its Remote LDAP server with the backend OK, adds the second
// backend, is shown as F(1,2) in the base's Cluster Setup, says on its
// Directory page that it keeps none, and detaches through the
// confirmation page. No page writes an error to the console.
func TestWebMenuInBrowserFrontend(t *testing.T) {
	f := newClusterFixtureOn(t, "127.0.0.89")
	alpha, bravo, charlie := f.start("127.0.0.80"), f.start("127.0.0.81"), f.start("127.0.0.82")
	if out, err := f.join(bravo, alpha, f.prepare(alpha, "127.0.0.81")); err != nil {
		t.Fatalf("join: %v\n%s", err, out)
	}
	alpha.waitAllOK(t, 2)
	aID, bID, cID := alpha.deviceID(t), bravo.deviceID(t), charlie.deviceID(t)
	b := newWebBrowser(t)

	// alpha: an identifier charlie may use, from the menu
	alphaURL := b.login(alpha)
	b.do("prepare", chromedp.SendKeys(chromedp.CSS("#prepare-password"), "correct horse battery"),
		chromedp.SendKeys(chromedp.CSS("#prepare-allow"), "127.0.0.82"),
		chromedp.Click(chromedp.CSS(`#prepare button[type=submit]`)))
	idFile := b.download(`^clusterid\.txt$`)

	// charlie, standalone: both ways into a cluster are offered
	charlieURL := b.login(charlie)
	for _, sel := range []string{"#join", "#attach"} {
		if b.eval(fmt.Sprintf(`String(!!document.querySelector(%q))`, sel)) != "true" {
			t.Fatalf("a standalone appliance's cluster page lacks %s", sel)
		}
	}
	if got := b.eval(`document.querySelector("#attach-self").value`); got != charlie.addr["cluster"] {
		t.Errorf("this device's address is prefilled with %q, want %q", got, charlie.addr["cluster"])
	}
	attach := func(password, self string) {
		b.do("attach form", chromedp.Navigate(charlieURL+"/cluster"), chromedp.WaitVisible(chromedp.CSS("#attach-id")),
			chromedp.SetUploadFiles(chromedp.CSS("#attach-id"), []string{idFile}),
			chromedp.SendKeys(chromedp.CSS("#attach-password"), password),
			chromedp.SendKeys(chromedp.CSS("#attach-backend"), alpha.addr["cluster"]),
			chromedp.SetValue(chromedp.CSS("#attach-self"), self),
			chromedp.Click(chromedp.CSS(`#attach button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS("#live-job")))
		if p := b.location(); !strings.HasPrefix(p, "/cluster/attach/") {
			t.Fatalf("Start led to %s", p)
		}
	}
	// refused: every problem at once, and nothing changed
	wrongSelf := "127.0.0.82:1"
	attach("not the cluster password", wrongSelf)
	refused := b.waitText("#live-job", "fix:", 30*time.Second)
	for _, want := range []string{"checking", "(2 problem(s))", "wrong cluster password", "--self " + wrongSelf} {
		if !strings.Contains(refused, want) {
			t.Errorf("refused attach lacks %q:\n%s", want, refused)
		}
	}
	b.noConsoleErrors("refused attach")
	if st := charlie.clusterStatus(t); st.Member {
		t.Fatal("a refused attach made charlie a member")
	}

	// accepted: the checks, the registration, the restart, the result
	attach("correct horse battery", charlie.addr["cluster"])
	b.eval(`window.posternMarker = "no reload"; "ok"`)
	b.waitText("#live-job", "ok: ", 20*time.Second)
	prog := b.waitText("#live-job", "This appliance is now frontend server F(1) of the cluster", 90*time.Second)
	for _, want := range []string{"registered at " + alpha.addr["cluster"], "restarting as a frontend", "running as a frontend: F(1)"} {
		if !strings.Contains(prog, want) {
			t.Errorf("attach progress lacks %q:\n%s", want, prog)
		}
	}
	if got := b.eval(`window.posternMarker || "reloaded"`); got != "no reload" {
		t.Errorf("the progress page reloaded (%s): it must refresh in place", got)
	}
	if !strings.Contains(charlie.out.String(), "restarting in the new role") {
		t.Fatalf("charlie was not made anew as a frontend:\n%s", charlie.out)
	}
	b.noConsoleErrors("attach progress")

	// the Remote LDAP server table: alpha OK and in use; add bravo
	b.do("back to the cluster page", chromedp.Click(chromedp.CSS(`#live-job a[href="/cluster"]`)), chromedp.WaitVisible(chromedp.CSS("#remote-table")))
	remoteRow := func(id string) string { return fmt.Sprintf(`#remote-table tr[data-device=%q]`, id) }
	b.waitText(remoteRow(aID), "OK (", 15*time.Second)
	if got := b.text(remoteRow(aID) + " td.in-use"); got != "yes" {
		t.Errorf("alpha, the only backend, is not in use: %q", got)
	}
	for _, sel := range []string{"#join", "#attach", "#members", "#setup", "#prepare", "#protect"} {
		if b.eval(fmt.Sprintf(`String(!!document.querySelector(%q))`, sel)) != "false" {
			t.Errorf("a frontend's cluster page shows %s", sel)
		}
	}
	b.do("add backend", chromedp.SendKeys(chromedp.CSS("#backend-addr"), bravo.addr["cluster"]),
		chromedp.Click(chromedp.CSS(`#add-backend button[type=submit]`)))
	b.waitText(".flash.ok", "Backend "+bravo.addr["cluster"]+" added", 20*time.Second)
	b.waitText(remoteRow(bID), "OK (", 15*time.Second)
	b.waitText("#remote", "F(1,2)", 5*time.Second)
	b.shot("frontend", true)
	b.noConsoleErrors("frontend cluster page")

	// a page that needs a directory says where it is
	b.do("frontend directory", chromedp.Navigate(charlieURL+"/directory"), chromedp.WaitVisible(chromedp.CSS("#no-directory")))
	if got := b.text("#no-directory"); !strings.Contains(got, "keeps no local directory") || !strings.Contains(got, aID) {
		t.Errorf("a frontend's Directory page: %q", got)
	}
	b.noConsoleErrors("frontend directory")

	// alpha: charlie is F(1,2) in Cluster Setup, frontend of both backends
	b.do("alpha cluster page", chromedp.Navigate(alphaURL+"/cluster"), chromedp.WaitVisible(chromedp.CSS("#setup-table")))
	setupRow := func(id string) string { return fmt.Sprintf(`#setup-table tr[data-device=%q]`, id) }
	b.waitText(setupRow(cID), "F(1,2)", 30*time.Second)
	cell := func(row string, i int) string {
		return b.eval(fmt.Sprintf(`(document.querySelector(%q) || {cells: []}).cells[%d].innerText`, row, i))
	}
	if fe := cell(setupRow(cID), 5); !strings.Contains(fe, aID) || !strings.Contains(fe, bID) {
		t.Errorf("charlie's Is Frontend of: %q, want %s and %s", fe, aID, bID)
	}
	b.waitText(setupRow(aID)+" td:nth-child(7)", cID, 30*time.Second) // alpha's Is Backend of
	if got := b.eval(fmt.Sprintf(`String(!!document.querySelector(%q))`, fmt.Sprintf(`#inject-frontends option[value=%q]`, cID))); got != "true" {
		t.Error("alpha's Allow mail injection does not offer charlie among the frontend systems")
	}
	if got := b.text("#members-table"); strings.Contains(got, cID) {
		t.Error("charlie, a frontend, is listed in alpha's Cluster members")
	}
	b.shot("cluster-with-frontend")
	b.noConsoleErrors("alpha with a frontend")

	// charlie: detach through the confirmation page
	b.do("charlie cluster page", chromedp.Navigate(charlieURL+"/cluster"), chromedp.WaitVisible(chromedp.CSS("#detach")))
	b.do("detach", chromedp.Click(chromedp.CSS(`#detach a.button`)))
	if got := b.waitText("section.confirm", "revokes its device key", 10*time.Second); !strings.Contains(got, "fresh, empty local database") {
		t.Errorf("the detach confirmation does not say what happens: %q", got)
	}
	b.do("confirm detach", chromedp.Click(chromedp.CSS(`section.confirm button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS("#live-job")))
	b.waitText("#live-job", "This appliance is standalone again", 90*time.Second)
	b.noConsoleErrors("detach progress")
	b.do("standalone again", chromedp.Click(chromedp.CSS(`#live-job a[href="/cluster"]`)), chromedp.WaitVisible(chromedp.CSS("#attach")))
	if st := charlie.clusterStatus(t); st.Member {
		t.Fatal("charlie is still a member after the detach")
	}
	eventually(t, 30*time.Second, "charlie's record gone from alpha", func() string {
		for _, r := range alpha.clusterStatus(t).Setup {
			if r.DeviceID == cID {
				return "still in Cluster Setup: " + r.ClusterNo
			}
		}
		return ""
	})
	b.noConsoleErrors("standalone after the detach")
}
