package webadmin

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The frontend side of fakeControl: what the appliance's control API
// answers on a frontend (appliance/frontend.go frontendRoutes) and for an
// attach or a detach, in its JSON.

// feRefusal is the frontend's 409 for a route that needs a directory.
const feRefusal = "this appliance is a cluster frontend without a local directory: write on a backend: PST-AAAA (192.0.2.1:2222) (this command needs a directory)"

var feBackendRows = map[string]string{
	"192.0.2.1:2222": `{"device_id":"PST-AAAA","cluster_no":1,"ip":"192.0.2.1","port":"2222","status":"OK (7 entries in remote database)","ok":true,"in_use":true,"measured":"2030-01-01T00:00:00Z"}`,
	"192.0.2.2:2222": `{"device_id":"PST-BBBB","cluster_no":2,"ip":"192.0.2.2","port":"2222","status":"error: cluster: dial 192.0.2.2:2222: connection refused","ok":false,"measured":"2030-01-01T00:00:00Z"}`,
}

var feNumbers = map[string]string{"192.0.2.1:2222": "1", "192.0.2.2:2222": "2"}

// serveFrontend answers the attach and the frontend's routes; false
// leaves the request to the backend's routes.
func (f *fakeControl) serveFrontend(w http.ResponseWriter, r *http.Request, key, body string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := func(status int, s string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, s)
	}
	if key == "POST /v1/cluster/frontend/attach" && !f.frontend {
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, `{"line":"checking"}`+"\n"+`{"line":"ok: cluster password"}`+"\n")
		if strings.Contains(body, `"password":"wrong`) {
			io.WriteString(w, `{"error":"cluster: join refused (2 problem(s)):\n  - wrong cluster password\n    fix: enter the password given to `+"`postern cluster prepare`"+` on 192.0.2.1:2222\n  - NTP servers differ\n    fix: use the same NTP server"}`+"\n")
			return true
		}
		io.WriteString(w, `{"line":"registered at 192.0.2.1:2222 (PST-AAAA, Cluster No. 1) as a frontend"}`+"\n"+`{"line":"restarting as a frontend"}`+"\n"+`{"done":true}`+"\n")
		if !f.stayStandalone { // the appliance made anew as a frontend
			f.frontend, f.member, f.feBackends = true, false, []string{"192.0.2.1:2222"}
		}
		return true
	}
	if !f.frontend {
		return false
	}
	switch {
	case key == "GET /v1/status":
		j(200, `{"device_id":"PST-FFFF","uuid":"33333333-3333-3333-3333-333333333333","hostname":"front","version":"1.2.3","build":"b","uptime":"1m0s","listeners":{"cluster":"192.0.2.3:2222","smtp":"192.0.2.3:25"},"entries":-1,"role":"frontend (no local directory)"}`)
	case key == "GET /v1/cluster/status":
		var rows, nos []string
		for _, a := range f.feBackends {
			rows, nos = append(rows, feBackendRows[a]), append(nos, feNumbers[a])
		}
		j(200, `{"member":true,"device_id":"PST-FFFF","uuid":"33333333-3333-3333-3333-333333333333","members":null,"setup":null,"replication":null,"ntp":{"server":"","offset_ms":0,"max_offset":""},
		"frontend":{"frontend":true,"device_id":"PST-FFFF","uuid":"33333333-3333-3333-3333-333333333333","cluster_uuid":"cccccccc-cccc-cccc-cccc-cccccccccccc","addr":"192.0.2.3:2222",
		"number":"F(`+strings.Join(nos, ",")+`)","backends":[`+strings.Join(rows, ",")+`],"inject_to":["PST-AAAA"],
		"cluster_backends":[{"device_id":"PST-AAAA","hostname":"alpha","addr":"192.0.2.1:2222","cluster_no":1},{"device_id":"PST-BBBB","hostname":"bravo","addr":"192.0.2.2:2222","cluster_no":2}],
		"measured":"2030-01-01T00:00:00Z"},"measured":"2030-01-01T00:00:00Z"}`)
	case key == "POST /v1/cluster/backend/add":
		addr := regexp.MustCompile(`"addr":"([^"]*)"`).FindStringSubmatch(body)[1]
		switch {
		case slices.Contains(f.feBackends, addr):
			j(409, `{"error":"cluster: `+addr+` is already a backend of this frontend"}`)
		case feBackendRows[addr] == "":
			j(409, `{"error":"cluster: no backend of the cluster has the address `+addr+`"}`)
		default:
			f.feBackends = append(f.feBackends, addr)
			j(200, `{"added":"`+addr+`"}`)
		}
	case key == "POST /v1/cluster/backend/remove":
		addr := regexp.MustCompile(`"addr":"([^"]*)"`).FindStringSubmatch(body)[1]
		i := slices.Index(f.feBackends, addr)
		switch {
		case i < 0:
			j(409, `{"error":"cluster: `+addr+` is not a backend of this frontend"}`)
		case len(f.feBackends) == 1:
			j(409, `{"error":"cluster: `+addr+` is this frontend's only backend: add another first, or detach"}`)
		default:
			f.feBackends = slices.Delete(f.feBackends, i, i+1)
			j(200, `{"removed":"`+addr+`"}`)
		}
	case key == "POST /v1/cluster/inject":
		if strings.Contains(body, `"frontends":["`) {
			j(400, `{"error":"a frontend injects on backends only"}`)
			return true
		}
		j(200, `{"inject_to":["PST-BBBB"]}`)
	case key == "POST /v1/cluster/frontend/detach":
		f.frontend, f.member, f.feBackends = false, false, nil // made anew, standalone
		j(200, `{"told":"PST-AAAA"}`)
	case strings.HasPrefix(r.URL.Path, "/v1/ldif/"), strings.HasPrefix(r.URL.Path, "/v1/domains"), r.URL.Path == "/v1/relay",
		strings.HasPrefix(r.URL.Path, "/v1/cluster/"):
		j(409, fmt.Sprintf(`{"error":%q}`, feRefusal))
	default:
		return false // machine-local routes: as on a backend
	}
	return true
}

func (f *fakeControl) setFrontend(backends ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frontend, f.member, f.feBackends = true, false, backends
}

// waitPage gets path until its body holds want (a job's progress).
func (f *fixture) waitPage(path, want, cookie string) string {
	f.t.Helper()
	var last string
	for i := 0; i < 300; i++ {
		last = f.do("GET", path, nil, "", cookie).Body.String()
		if strings.Contains(last, want) {
			return last
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.t.Fatalf("%s never said %q:\n%s", path, want, last)
	return ""
}

// flashAfter follows a redirect and returns the page it leads to.
func (f *fixture) flashAfter(w interface{ Header() http.Header }, cookie string) string {
	f.t.Helper()
	loc := w.Header().Get("Location")
	if loc == "" {
		f.t.Fatal("no redirect")
	}
	loc, _, _ = strings.Cut(loc, "#") // a browser keeps the fragment to itself
	return f.do("GET", loc, nil, "", cookie).Body.String()
}

// sectionHTML returns one section of the cluster page.
func sectionHTML(body, id string) string {
	i := strings.Index(body, `<section id="`+id+`"`)
	if i < 0 {
		return ""
	}
	rest := body[i:]
	return rest[:strings.Index(rest, "</section>")]
}

// rowHTML returns the table row of a device in a section.
func rowHTML(section, device string) string {
	i := strings.Index(section, `data-device="`+device+`"`)
	if i < 0 {
		return ""
	}
	rest := section[strings.LastIndex(section[:i], "<tr"):]
	return rest[:strings.Index(rest, "</tr>")]
}

func TestFrontendSectionsAsTheSeedSays(t *testing.T) {
	f := newFixture(t)
	f.fake.setFrontend("192.0.2.1:2222", "192.0.2.2:2222")
	c := f.login()
	w := f.do("GET", "/cluster", nil, "", c)
	body := w.Body.String()
	// "only appears if [it] is already part of a cluster as a frontend
	// server"; every section of a backend or a standalone appliance hidden
	if got, want := strings.Join(sectionOrder(body), ","), "inject,remote,detach,add-backend"; w.Code != 200 || got != want {
		t.Fatalf("frontend: %d, sections %s, want %s", w.Code, got, want)
	}
	remote := sectionHTML(body, "remote")
	for _, s := range []string{
		"<th>Device ID</th><th>Cluster No.</th><th>IP address</th><th>Port</th><th>Status</th><th>In use</th>",
		`id="live-remote" data-live`, "frontend server <strong>F(1,2)</strong>", "cccccccc-cccc-cccc-cccc-cccccccccccc",
	} {
		if !strings.Contains(body, s) {
			t.Errorf("Remote LDAP server lacks %q", s)
		}
	}
	a, b := rowHTML(remote, "PST-AAAA"), rowHTML(remote, "PST-BBBB")
	for _, s := range []string{`class="ok"`, `<a href="/cluster/backends/192.0.2.1:2222">192.0.2.1</a>`, "<td>2222</td>", "OK (7 entries in remote database)", `<td class="in-use">yes</td>`} {
		if !strings.Contains(a, s) {
			t.Errorf("the row of the backend in use lacks %q:\n%s", s, a)
		}
	}
	for _, s := range []string{`class="bad"`, "error: cluster: dial 192.0.2.2:2222: connection refused", `<td class="in-use"></td>`} {
		if !strings.Contains(b, s) {
			t.Errorf("the row of the unreachable backend lacks %q:\n%s", s, b)
		}
	}
	// Allow mail injection on a frontend: the cluster's backends only
	inject := sectionHTML(body, "inject")
	if strings.Contains(inject, "inject-frontends") || !strings.Contains(inject, `<option value="PST-AAAA" selected>PST-AAAA (alpha, No. 1)</option>`) ||
		!strings.Contains(inject, `<option value="PST-BBBB">PST-BBBB (bravo, No. 2)</option>`) || !strings.Contains(inject, "Now allowed: PST-AAAA.") {
		t.Errorf("Allow mail injection on a frontend:\n%s", inject)
	}
	if !strings.Contains(sectionHTML(body, "detach"), `href="/cluster/detach"`) {
		t.Error("Detach from LDAP server has no way to the confirmation")
	}
	add := sectionHTML(body, "add-backend")
	if !strings.Contains(add, `action="/cluster/backends"`) || !strings.Contains(add, "firmware version (this machine: 1.2.3)") || !strings.Contains(add, "NTP server (this machine: 192.0.2.123)") ||
		!strings.Contains(add, "uses every backend of the cluster") {
		t.Errorf("Add additional backend:\n%s", add)
	}

	// with one backend, the other backend of the cluster is offered
	f.fake.setFrontend("192.0.2.1:2222")
	body = f.do("GET", "/cluster", nil, "", c).Body.String()
	if add := sectionHTML(body, "add-backend"); !strings.Contains(add, `<option value="192.0.2.2:2222">PST-BBBB (bravo), No. 2</option>`) || !strings.Contains(add, "PST-BBBB on 192.0.2.2:2222") {
		t.Errorf("Add additional backend does not offer the unused backend:\n%s", add)
	}
	if !strings.Contains(body, "F(1)</strong>") {
		t.Error("F(1) not shown")
	}
}

func TestBackendSetupShowsFrontends(t *testing.T) {
	f := newFixture(t)
	f.fake.member = true
	c := f.login()
	body := f.do("GET", "/cluster", nil, "", c).Body.String()
	setup := sectionHTML(body, "setup")
	fe := rowHTML(setup, "PST-FFFF")
	cells := strings.Split(fe, "<td>")
	// Device ID, Cluster No., Hostname, IP, Port, Is Frontend of, Is Backend of, ...
	if len(cells) < 8 || !strings.HasPrefix(cells[2], "F(1,2)") || !strings.Contains(cells[6], "PST-AAAA") || !strings.Contains(cells[6], "PST-BBBB") || strings.Contains(cells[7], "PST-") {
		t.Fatalf("the frontend's Cluster Setup row lacks F(1,2) and its backends under Is Frontend of:\n%s", fe)
	}
	be := strings.Split(rowHTML(setup, "PST-BBBB"), "<td>")
	if len(be) < 8 || !strings.Contains(be[7], "PST-FFFF") || strings.Contains(be[6], "PST-") {
		t.Fatalf("a backend's row lacks its frontend under Is Backend of:\n%s", rowHTML(setup, "PST-BBBB"))
	}
	// the frontend is no Cluster member (backends only), and a backend's
	// injection offers it among the frontends
	if strings.Contains(sectionHTML(body, "members"), "PST-FFFF") {
		t.Error("a frontend in Cluster members")
	}
	if inject := sectionHTML(body, "inject"); !strings.Contains(inject, `<select id="inject-frontends"`) || !strings.Contains(inject, `<option value="PST-FFFF">PST-FFFF (front, F(1,2))</option>`) {
		t.Errorf("Allowed frontend systems on a backend:\n%s", inject)
	}
}

func attachForm(t *testing.T, password, backend, self string) (io.Reader, string) {
	return multipartBody(t, map[string]string{"password": password, "backend": backend, "self": self}, map[string]string{"clusterid": "ID"})
}

func TestAttachProgressAndNewRole(t *testing.T) {
	f := newFixture(t)
	c := f.login()
	// bad input: a clear error, nothing reaches the backend
	for _, tc := range []struct {
		name, password, backend, self string
		file                          bool
		want                          string
	}{
		{"no file", "pw", "", "192.0.2.3:2222", false, "choose the clusterid.txt made on the backend"},
		{"no password", "", "", "192.0.2.3:2222", true, "enter the cluster password"},
		{"no self", "pw", "", "", true, "enter this device's cluster address IP:PORT"},
		{"self not IP:PORT", "pw", "", "front.example", true, `this device's address "front.example" is not IP:PORT`},
		{"backend not IP:PORT", "pw", "alpha:22", "192.0.2.3:2222", true, `the backend's address "alpha:22" is not IP:PORT`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{}
			if tc.file {
				files["clusterid"] = "ID"
			}
			body, ct := multipartBody(t, map[string]string{"password": tc.password, "backend": tc.backend, "self": tc.self}, files)
			w := f.do("POST", "/cluster/attach", body, ct, c)
			if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/cluster#attach" {
				t.Fatalf("%d %s", w.Code, w.Header().Get("Location"))
			}
			if p := f.flashAfter(w, c); !strings.Contains(p, html.EscapeString(tc.want)) {
				t.Fatalf("the page does not say %q", tc.want)
			}
		})
	}
	if _, ok := f.fake.called("POST /v1/cluster/frontend/attach"); ok {
		t.Fatal("a bad attach form reached the backend")
	}

	// refused: every problem at once, still standalone
	body, ct := attachForm(t, "wrong password", "192.0.2.1:2222", "192.0.2.3:2222")
	w := f.do("POST", "/cluster/attach", body, ct, c)
	if !strings.HasPrefix(w.Header().Get("Location"), "/cluster/attach/") {
		t.Fatalf("attach: %d %s", w.Code, w.Header().Get("Location"))
	}
	p := f.waitPage(w.Header().Get("Location"), "result", c)
	for _, s := range []string{"ok: cluster password", "join refused (2 problem(s))", "wrong cluster password", "NTP servers differ", "fix: use the same NTP server", `class="flash error result"`} {
		if !strings.Contains(p, s) {
			t.Errorf("refused attach's page lacks %q:\n%s", s, p)
		}
	}
	if got := strings.Join(sectionOrder(f.do("GET", "/cluster", nil, "", c).Body.String()), ","); got != "introduction,prepare,join,attach" {
		t.Fatalf("after a refused attach: sections %s", got)
	}

	// accepted: progress, then the result once it answers as a frontend
	body, ct = attachForm(t, "cluster password", "192.0.2.1:2222", "192.0.2.3:2222")
	w = f.do("POST", "/cluster/attach", body, ct, c)
	progress := w.Header().Get("Location")
	p = f.waitPage(progress, "This appliance is now frontend server F(1) of the cluster", c)
	for _, s := range []string{"starting: backend 192.0.2.1:2222, this device 192.0.2.3:2222", "registered at 192.0.2.1:2222", "restarting as a frontend", "running as a frontend: F(1)", `href="/cluster"`} {
		if !strings.Contains(p, s) {
			t.Errorf("attach progress lacks %q:\n%s", s, p)
		}
	}
	if b, _ := f.fake.called("POST /v1/cluster/frontend/attach"); b != `{"id":"SUQ=","password":"cluster password","member":"192.0.2.1:2222","self":"192.0.2.3:2222"}` {
		t.Fatalf("attach sent %s", b)
	}
	if got := strings.Join(sectionOrder(f.do("GET", "/cluster", nil, "", c).Body.String()), ","); got != "inject,remote,detach,add-backend" {
		t.Fatalf("after the attach: sections %s", got)
	}
}

func TestAttachBusyAndNoNewRole(t *testing.T) {
	f := newFixture(t)
	f.fake.joinGate = make(chan struct{})
	f.fake.stayStandalone = true
	c := f.login()
	// a join runs: an attach is busy, and never reaches the backend
	body, ct := multipartBody(t, map[string]string{"password": "twelve chars pw", "self": "192.0.2.2:2222"}, map[string]string{"clusterid": "ID"})
	join := f.do("POST", "/cluster/join", body, ct, c).Header().Get("Location")
	body, ct = attachForm(t, "cluster password", "", "192.0.2.3:2222")
	w := f.do("POST", "/cluster/attach", body, ct, c)
	if w.Header().Get("Location") != join {
		t.Fatalf("attach during a join went to %q, want the join's page %q", w.Header().Get("Location"), join)
	}
	if p := f.flashAfter(w, c); !strings.Contains(p, "busy: a join started from this menu") {
		t.Fatalf("attach during a join not answered busy:\n%s", p)
	}
	if _, ok := f.fake.called("POST /v1/cluster/frontend/attach"); ok {
		t.Fatal("a busy attach reached the backend")
	}
	close(f.fake.joinGate)
	f.waitPage(join, "This device is now a member of the cluster.", c)

	// attached, but the appliance never answers as a frontend: bounded,
	// and the page says so
	f.s.cfg.RoleWait = 300 * time.Millisecond
	f.fake.mu.Lock()
	f.fake.member = false
	f.fake.mu.Unlock()
	body, ct = attachForm(t, "cluster password", "", "192.0.2.3:2222")
	w = f.do("POST", "/cluster/attach", body, ct, c)
	p := f.waitPage(w.Header().Get("Location"), "result", c)
	if !strings.Contains(p, "attached, but the appliance did not answer as a frontend within 300ms (it is still standalone): see the Logs page") {
		t.Fatalf("no new role not explained:\n%s", p)
	}
	if b, _ := f.fake.called("POST /v1/cluster/frontend/attach"); !strings.Contains(b, `"member":""`) {
		t.Fatalf("an attach without a backend address sent %s", b)
	}
}

func TestAddAndRemoveBackend(t *testing.T) {
	f := newFixture(t)
	f.fake.setFrontend("192.0.2.1:2222")
	c := f.login()
	for _, tc := range []struct{ addr, want string }{
		{"", "enter the backend's cluster address IP:PORT"},
		{"bravo", `the backend's address "bravo" is not IP:PORT`},
		{"192.0.2.2", `the backend's address "192.0.2.2" is not IP:PORT`},
	} {
		w := f.post("/cluster/backends", url.Values{"addr": {tc.addr}}, c)
		if w.Header().Get("Location") != "/cluster#add-backend" || !strings.Contains(f.flashAfter(w, c), html.EscapeString(tc.want)) {
			t.Errorf("add backend %q: not explained (%s)", tc.addr, w.Header().Get("Location"))
		}
	}
	if _, ok := f.fake.called("POST /v1/cluster/backend/add"); ok {
		t.Fatal("a bad address reached the backend")
	}
	// refused by the frontend: its message
	w := f.post("/cluster/backends", url.Values{"addr": {"192.0.2.9:2222"}}, c)
	if p := f.flashAfter(w, c); !strings.Contains(p, "cluster: no backend of the cluster has the address 192.0.2.9:2222") {
		t.Fatalf("refused add not shown:\n%s", p)
	}
	w = f.post("/cluster/backends", url.Values{"addr": {" 192.0.2.2:2222 "}}, c)
	if b, _ := f.fake.called("POST /v1/cluster/backend/add"); b != `{"addr":"192.0.2.2:2222"}` {
		t.Fatalf("add sent %s", b)
	}
	p := f.flashAfter(w, c)
	if !strings.Contains(p, "Backend 192.0.2.2:2222 added") || !strings.Contains(p, "frontend server <strong>F(1,2)</strong>") {
		t.Fatalf("after the add:\n%s", p)
	}

	// the IP address opens the removal page: what happens, the button
	w = f.do("GET", "/cluster/backends/192.0.2.2:2222", nil, "", c)
	for _, s := range []string{"Remove LDAP server 192.0.2.2:2222", "PST-BBBB is taken off this frontend's list of LDAP servers (F(1,2) today)",
		"stays a member of the cluster with its database", `action="/cluster/backends/192.0.2.2:2222/remove"`} {
		if w.Code != 200 || !strings.Contains(w.Body.String(), s) {
			t.Errorf("removal page: %d, lacks %q", w.Code, s)
		}
	}
	if _, ok := f.fake.called("POST /v1/cluster/backend/remove"); ok {
		t.Fatal("showing the removal page removed")
	}
	w = f.post("/cluster/backends/192.0.2.2:2222/remove", nil, c)
	if b, _ := f.fake.called("POST /v1/cluster/backend/remove"); b != `{"addr":"192.0.2.2:2222"}` {
		t.Fatalf("remove sent %s", b)
	}
	if p := f.flashAfter(w, c); !strings.Contains(p, html.EscapeString("Backend 192.0.2.2:2222 removed from this frontend's list")) || !strings.Contains(p, "F(1)</strong>") {
		t.Fatalf("after the removal:\n%s", p)
	}
	// the only backend: no button, and the control API's refusal if posted anyway
	w = f.do("GET", "/cluster/backends/192.0.2.1:2222", nil, "", c)
	if !strings.Contains(w.Body.String(), "is this frontend's only backend: it cannot be removed") || strings.Contains(w.Body.String(), `/remove"`) {
		t.Fatalf("only backend's page:\n%s", w.Body)
	}
	w = f.post("/cluster/backends/192.0.2.1:2222/remove", nil, c)
	if w.Header().Get("Location") != "/cluster/backends/192.0.2.1:2222" || !strings.Contains(f.flashAfter(w, c), html.EscapeString("this frontend's only backend: add another first, or detach")) {
		t.Fatal("removing the only backend: refusal not shown")
	}
	if w := f.do("GET", "/cluster/backends/192.0.2.7:2222", nil, "", c); w.Code != 404 || !strings.Contains(w.Body.String(), "192.0.2.7:2222 is not a backend of this frontend") {
		t.Fatalf("unknown backend: %d", w.Code)
	}
}

func TestFrontendInjectsOnBackendsOnly(t *testing.T) {
	f := newFixture(t)
	f.fake.setFrontend("192.0.2.1:2222")
	c := f.login()
	w := f.post("/cluster/inject", url.Values{"backends": {"PST-BBBB"}}, c)
	if b, _ := f.fake.called("POST /v1/cluster/inject"); b != `{"backends":["PST-BBBB"],"frontends":[]}` {
		t.Fatalf("inject sent %s", b)
	}
	if p := f.flashAfter(w, c); !strings.Contains(p, "This member may inject mail on PST-BBBB.") {
		t.Fatal("inject result not shown")
	}
	w = f.post("/cluster/inject", url.Values{"frontends": {"PST-EEEE"}}, c)
	if p := f.flashAfter(w, c); !strings.Contains(p, "a frontend injects on backends only") {
		t.Fatal("refusal not shown")
	}
}

func TestDetachConfirmAndNewRole(t *testing.T) {
	f := newFixture(t)
	f.fake.setFrontend("192.0.2.1:2222")
	c := f.login()
	w := f.do("GET", "/cluster/detach", nil, "", c)
	for _, s := range []string{"a backend deletes its record in the cluster, which revokes its device key", "fresh, empty local database",
		"in the running process", "Its machine-local data stays", `action="/cluster/detach"`, `class="danger">Detach</button>`} {
		if w.Code != 200 || !strings.Contains(w.Body.String(), s) {
			t.Errorf("detach confirmation: %d, lacks %q", w.Code, s)
		}
	}
	if _, ok := f.fake.called("POST /v1/cluster/frontend/detach"); ok {
		t.Fatal("showing the confirmation detached")
	}
	w = f.post("/cluster/detach", nil, c)
	if !strings.HasPrefix(w.Header().Get("Location"), "/cluster/detach/") {
		t.Fatalf("detach: %d %s", w.Code, w.Header().Get("Location"))
	}
	p := f.waitPage(w.Header().Get("Location"), "This appliance is standalone again", c)
	for _, s := range []string{"PST-AAAA deleted this frontend's record: its key is revoked", "restarting as a standalone appliance", "running as a standalone appliance"} {
		if !strings.Contains(p, html.EscapeString(s)) {
			t.Errorf("detach progress lacks %q:\n%s", s, p)
		}
	}
	if got := strings.Join(sectionOrder(f.do("GET", "/cluster", nil, "", c).Body.String()), ","); got != "introduction,prepare,join,attach" {
		t.Fatalf("after the detach: sections %s", got)
	}
	// detached: a second detach is the control API's refusal, shown
	w = f.post("/cluster/detach", nil, c)
	if p := f.waitPage(w.Header().Get("Location"), "result", c); !strings.Contains(p, "no route POST /v1/cluster/frontend/detach") {
		t.Fatalf("refused detach not shown:\n%s", p)
	}
}

func TestFrontendPagesWithoutDirectory(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	f := newFixture(t)
	f.fake.setFrontend("192.0.2.1:2222")
	c := f.login()
	for path, want := range map[string][]string{
		"/directory": {"This appliance is a cluster frontend server: it keeps no local directory.", feRefusal, `href="/cluster#remote"`},
		"/mail":      {"it keeps no local directory", feRefusal, `id="queue-table"`, `href="/mail/queue/Q1"`},
		"/status":    {"none: a frontend server keeps no local directory (frontend (no local directory))"},
		"/system":    {"192.0.2.123 (a frontend server stamps no changes"},
	} {
		w := f.do("GET", path, nil, "", c)
		for _, s := range want {
			if w.Code != 200 || !strings.Contains(w.Body.String(), s) {
				t.Errorf("%s on a frontend: %d, lacks %q", path, w.Code, s)
			}
		}
	}
	for path, gone := range map[string]string{"/directory": `href="/directory/export"`, "/mail": `action="/mail/domains"`} {
		if strings.Contains(f.do("GET", path, nil, "", c).Body.String(), gone) {
			t.Errorf("%s on a frontend offers %s", path, gone)
		}
	}
	// the actions: the refusal, shown on the page they lead back to
	w := f.do("GET", "/directory/export", nil, "", c)
	if w.Header().Get("Location") != "/directory" || !strings.Contains(f.flashAfter(w, c), feRefusal) {
		t.Errorf("export on a frontend: %d %s", w.Code, w.Header().Get("Location"))
	}
	w = f.post("/mail/domains", url.Values{"name": {"example.org"}, "deliver_to": {"192.0.2.26:25"}}, c)
	if !strings.Contains(f.flashAfter(w, c), feRefusal) {
		t.Error("domain add on a frontend: refusal not shown")
	}
	// an LDIF upload is refused before anything of it is stored
	body, ct := multipartBody(t, nil, map[string]string{"ldif": "dn: cn=secret,dc=postern,dc=local\ncn: secret\n"})
	w = f.do("POST", "/directory/import", body, ct, c)
	if w.Header().Get("Location") != "/directory" || !strings.Contains(f.flashAfter(w, c), feRefusal) {
		t.Errorf("import on a frontend: %d %s", w.Code, w.Header().Get("Location"))
	}
	if _, ok := f.fake.called("POST /v1/ldif/import"); ok {
		t.Error("an import on a frontend reached the control API")
	}
	if ents, _ := os.ReadDir(tmp); len(ents) > 0 {
		t.Errorf("an LDIF upload to a frontend left %d file(s) in the temporary directory", len(ents))
	}
}
