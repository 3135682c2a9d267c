package webadmin

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeControl stands in for the appliance's control API: canned answers
// in its JSON, and a record of every request the menu made.
type fakeControl struct {
	mu     sync.Mutex
	member bool
	// frontend: the appliance runs as a cluster frontend (frontend_test.go)
	frontend   bool
	feBackends []string // its backends' addresses, in order
	// stayStandalone: an attach succeeds but the appliance never comes
	// back as a frontend
	stayStandalone bool
	calls          []string          // "METHOD /path"
	bodies         map[string]string // "METHOD /path" → last body
	tokens         map[string]bool
	joinGate       chan struct{} // when set, the join waits for it
}

const pw = "correct admin password"

func newFake() *fakeControl {
	return &fakeControl{bodies: map[string]string{}, tokens: map[string]bool{"pst_good": true}}
}

func (f *fakeControl) called(call string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.bodies[call]
	return b, ok
}

func (f *fakeControl) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	key := r.Method + " " + r.URL.Path
	f.mu.Lock()
	f.calls = append(f.calls, key)
	f.bodies[key] = string(body)
	member := f.member
	gate := f.joinGate
	f.mu.Unlock()
	j := func(s string) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, s)
	}
	if f.serveFrontend(w, r, key, string(body)) {
		return
	}
	switch key {
	case "GET /v1/status":
		j(`{"device_id":"PST-AAAA","uuid":"11111111-1111-1111-1111-111111111111","hostname":"alpha","version":"1.2.3","build":"b","uptime":"1m0s","listeners":{"cluster":"192.0.2.1:2222","smtp":"192.0.2.1:25"},"entries":7,"context_csn":["20300101000000.000000Z#000000#001#000000"]}`)
	case "GET /v1/cluster/status":
		if !member {
			j(`{"member":false,"device_id":"PST-AAAA","uuid":"11111111-1111-1111-1111-111111111111","members":[],"setup":[],"replication":[],"ntp":{"server":"192.0.2.123","offset_ms":0.4,"measured":"2030-01-01T00:00:00Z","max_offset":"1s"}}`)
			return
		}
		j(`{"member":true,"device_id":"PST-AAAA","uuid":"11111111-1111-1111-1111-111111111111","cluster_no":1,
		"members":[{"device_id":"PST-AAAA","ip":"192.0.2.1","port":"2222","status":"this device (7 entries in local database)","ok":true,"state":"ok","self":true,"comment":"rack 1","location":"Zurich","version":"1.2.3","last_update":"2030-01-01T00:00:00Z"},
		{"device_id":"PST-BBBB","ip":"192.0.2.2","port":"2222","status":"OK (7 entries in remote database, 7 entries in local database)","ok":true,"state":"ok","comment":"rack 2","location":"Bern","version":"1.2.3","last_update":"2030-01-01T00:00:00Z"}],
		"setup":[{"device_id":"PST-AAAA","uuid":"11111111-1111-1111-1111-111111111111","cluster_no":"1","hostname":"alpha","ip":"192.0.2.1","port":"2222","backend_of":["PST-FFFF"],"parity":"OK","self":true,"version":"1.2.3"},
		{"device_id":"PST-BBBB","uuid":"22222222-2222-2222-2222-222222222222","cluster_no":"2","hostname":"bravo","ip":"192.0.2.2","port":"2222","backend_of":["PST-FFFF"],"parity":"OK","version":"1.2.3"},
		{"device_id":"PST-FFFF","uuid":"33333333-3333-3333-3333-333333333333","cluster_no":"F(1,2)","hostname":"front","ip":"192.0.2.3","port":"2222","frontend_of":["PST-AAAA","PST-BBBB"],"backend_of":null,"parity":"OK","version":"1.2.3"}],
		"replication":[{"device_id":"PST-AAAA","uuid":"11111111-1111-1111-1111-111111111111","cluster_no":1,"context_csn":"20300101000000.000000Z#000000#001#000000","time":"2030-01-01T00:00:00Z","self":true},
		{"device_id":"PST-BBBB","uuid":"22222222-2222-2222-2222-222222222222","cluster_no":2}],
		"last_change":"Cluster No. 1 at 2030-01-01T00:00:00Z","protection":{"on":true,"allowed_ips":["192.0.2.9"],"member_ips":["192.0.2.1","192.0.2.2"]},
		"inject_to":["PST-BBBB"],"ntp":{"server":"192.0.2.123","offset_ms":0.4,"max_offset":"1s"}}`)
	case "POST /v1/cluster/prepare":
		j(`{"clusterid":"-----BEGIN POSTERN CLUSTER IDENTIFIER-----\nxyz\n"}`)
	case "POST /v1/cluster/join":
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, `{"line":"checking"}`+"\n"+`{"line":"ok: firmware 1.2.3 on both"}`+"\n")
		if gate != nil {
			<-gate
		}
		io.WriteString(w, `{"line":"copied 5/10 entries"}`+"\n"+`{"line":"copied 10/10 entries"}`+"\n"+`{"done":true}`+"\n")
	case "POST /v1/cluster/remove/PST-BBBB", "POST /v1/cluster/forget/PST-BBBB", "POST /v1/cluster/leave":
		j(`{"ok":true}`)
	case "POST /v1/cluster/inject":
		j(`{"inject_to":["PST-BBBB"]}`)
	case "POST /v1/cluster/protect":
		j(`{"on":true,"allowed_ips":["192.0.2.7"],"member_ips":["192.0.2.1"]}`)
	case "GET /v1/system", "POST /v1/system":
		j(`{"hostname":"alpha","comment":"rack 1","location":"Zurich","ntp_server":"192.0.2.123"}`)
	case "GET /v1/tls":
		j(`{"subject":"CN=alpha,O=Postern appliance","issuer":"CN=alpha,O=Postern appliance","dns_names":["alpha","localhost"],"ip_addresses":["127.0.0.1"],"not_before":"2029-01-01T00:00:00Z","not_after":"2035-01-01T00:00:00Z","self_signed":true,"chain":1,"sha256":"ab"}`)
	case "POST /v1/tls":
		j(`{"subject":"CN=mail.example.com"}`)
	case "GET /v1/logs":
		j(`[{"time":"2030-01-01T00:00:00Z","level":"INFO","msg":"appliance started","attrs":"device_id=PST-AAAA q=` + r.URL.Query().Get("q") + `"}]`)
	case "GET /v1/domains":
		j(`[{"name":"example.com","deliver_to":"192.0.2.25:25","tls":"may"}]`)
	case "POST /v1/domains":
		j(`{"name":"example.org","deliver_to":"192.0.2.26:25","tls":"encrypt"}`)
	case "DELETE /v1/domains/example.com":
		j(`{"removed":"example.com"}`)
	case "GET /v1/relay", "POST /v1/relay":
		j(`{"networks":["192.0.2.0/24"],"smarthost":""}`)
	case "GET /v1/queue":
		if r.URL.Query().Get("cluster") == "true" {
			j(`[{"device_id":"PST-AAAA","cluster_no":1,"result":[{"id":"Q1","arrival":"2030-01-01T00:00:00Z","from":"a@example.org","size":1234,"recipients":[{"address":"b@example.com","status":"deferred","diagnostic":"connection refused"}]}]},
			{"device_id":"PST-BBBB","cluster_no":2,"result":[{"id":"Q7","arrival":"2030-01-01T00:00:00Z","from":"c@example.org","size":99,"recipients":[{"address":"d@example.net","status":"deferred"}]}]},
			{"device_id":"PST-CCCC","cluster_no":3,"error":"unreachable: connection refused"}]`)
			return
		}
		j(`[{"id":"Q1","arrival":"2030-01-01T00:00:00Z","from":"a@example.org","size":1234,"recipients":[{"address":"b@example.com","status":"deferred","attempts":2,"diagnostic":"connection refused"}]}]`)
	case "GET /v1/queue/Q1":
		j(`{"id":"Q1","arrival":"2030-01-01T00:00:00Z","from":"a@example.org","size":1234,"recipients":[{"address":"b@example.com","status":"deferred"}],"header":"Subject: hello\nFrom: a@example.org\n"}`)
	case "DELETE /v1/queue/Q1":
		j(`{"deleted":"Q1"}`)
	case "POST /v1/queue/flush":
		if r.URL.Query().Get("cluster") == "true" {
			j(`[{"device_id":"PST-AAAA","cluster_no":1,"result":{"scheduled":1}},{"device_id":"PST-BBBB","cluster_no":2,"result":{"scheduled":2}}]`)
			return
		}
		j(`{"scheduled":1}`)
	case "GET /v1/ldif/export":
		io.WriteString(w, "dn: dc=postern,dc=local\nobjectClass: top\n\ndn: ou=people,dc=postern,dc=local\nou: people\n\ndn: cn=A,ou=people,dc=postern,dc=local\ncn: A\n\n")
	case "POST /v1/ldif/import":
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, `{"entries":2,"added":2}`+"\n"+`{"entries":2,"added":2,"done":true}`+"\n")
	case "GET /v1/stats":
		j(`{"metrics":[{"name":"postern_smtp_queue_messages","help":"Messages in the queue.","type":"gauge","samples":[{"value":3}]}],"history":{"queue_messages":[{"time":"2030-01-01T00:00:00Z","value":1},{"time":"2030-01-01T00:00:30Z","value":3}],"replication_lag_seconds":[]}}`)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":"no route `+key+`"}`)
	}
}

// clock is an injectable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type fixture struct {
	t     *testing.T
	s     *Server
	fake  *fakeControl
	clock *clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, fake: newFake(), clock: &clock{t: time.Date(2030, 1, 1, 0, 1, 0, 0, time.UTC)}}
	s, err := New(Config{
		Backend:        f.fake,
		VerifyPassword: func(p string) bool { return p == pw },
		VerifyToken: func(tok string) bool {
			f.fake.mu.Lock()
			defer f.fake.mu.Unlock()
			return f.fake.tokens[tok]
		},
		Now:         f.clock.now,
		SessionIdle: 10 * time.Minute, SessionAbsolute: time.Hour,
		LoginDelay: 2 * time.Second, LoginDelayMax: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	f.s = s
	return f
}

// do sends a request as a same-origin browser page would.
func (f *fixture) do(method, target string, body io.Reader, ctype, cookie string) *httptest.ResponseRecorder {
	f.t.Helper()
	r := httptest.NewRequest(method, "https://admin.test"+target, body)
	r.RemoteAddr = "192.0.2.50:40000"
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	if method != "GET" {
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		r.Header.Set("Origin", "https://admin.test")
	}
	if cookie != "" {
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookie})
	}
	w := httptest.NewRecorder()
	f.s.ServeHTTP(w, r)
	return w
}

func (f *fixture) post(target string, form url.Values, cookie string) *httptest.ResponseRecorder {
	return f.do("POST", target, strings.NewReader(form.Encode()), "application/x-www-form-urlencoded", cookie)
}

// login logs in and returns the session cookie's value.
func (f *fixture) login() string {
	f.t.Helper()
	w := f.post("/login", url.Values{"password": {pw}}, "")
	if w.Code != http.StatusSeeOther {
		f.t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == sessionCookie {
			if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
				f.t.Fatalf("session cookie lacks Secure, HttpOnly or SameSite=Strict: %+v", c)
			}
			return c.Value
		}
	}
	f.t.Fatal("login set no session cookie")
	return ""
}

// pageRoutes are every page (GET) of the menu.
var pageRoutes = []string{"/", "/cluster", "/cluster/join/x", "/cluster/members/PST-BBBB", "/cluster/members/PST-BBBB/forget",
	"/cluster/attach/x", "/cluster/backends/192.0.2.1:2222", "/cluster/detach", "/cluster/detach/x",
	"/cluster/leave", "/system", "/ssl", "/logs", "/mail", "/mail/queue/Q1", "/mail/queue/Q1/delete",
	"/directory", "/directory/export", "/directory/import/x", "/status", "/nonexistent"}

// actionRoutes are every action (POST) of the menu.
var actionRoutes = []string{"/logout", "/cluster/prepare", "/cluster/join", "/cluster/members/PST-BBBB/remove", "/cluster/members/PST-BBBB/forget",
	"/cluster/leave", "/cluster/inject", "/cluster/protect", "/cluster/attach", "/cluster/backends", "/cluster/backends/192.0.2.1:2222/remove",
	"/cluster/detach", "/system", "/ssl", "/mail/domains", "/mail/domains/example.com/remove",
	"/mail/relay", "/mail/queue/flush", "/mail/queue/Q1/delete", "/directory/import"}

func TestNoSessionNoPage(t *testing.T) {
	f := newFixture(t)
	for _, p := range pageRoutes {
		w := f.do("GET", p, nil, "", "")
		if w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/login?next=") {
			t.Errorf("GET %s without a session: %d %s, want a redirect to the login page", p, w.Code, w.Header().Get("Location"))
		}
	}
	for _, p := range actionRoutes {
		w := f.post(p, url.Values{}, "")
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login" {
			t.Errorf("POST %s without a session: %d %s, want a redirect to the login page", p, w.Code, w.Header().Get("Location"))
		}
	}
	w := f.do("GET", "/cluster", nil, "", "forged-session-id")
	if w.Code != http.StatusSeeOther {
		t.Errorf("a made-up session ID opened a page: %d", w.Code)
	}
	f.fake.mu.Lock()
	defer f.fake.mu.Unlock()
	for _, c := range f.fake.calls {
		if strings.HasPrefix(c, "POST") || strings.HasPrefix(c, "DELETE") {
			t.Errorf("an action reached the backend without a session: %s", c)
		}
	}
	// what works without a session: the login page and static files
	for _, p := range []string{"/login", "/static/style.css", "/static/live.js", "/favicon.ico"} {
		if w := f.do("GET", p, nil, "", ""); w.Code != http.StatusOK {
			t.Errorf("GET %s without a session: %d", p, w.Code)
		}
	}
}

func TestAPINeedsAuth(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct{ method, path, auth string }{
		{"GET", "/api/v1/status", ""},
		{"GET", "/api/v1/cluster/status", ""},
		{"POST", "/api/v1/cluster/leave", ""},
		{"DELETE", "/api/v1/queue/Q1", ""},
		{"GET", "/api/v1/status", "Bearer pst_wrong"},
		{"GET", "/api/v1/status", "Basic YWRtaW46eA=="},
	} {
		r := httptest.NewRequest(tc.method, "https://admin.test"+tc.path, nil)
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		w := httptest.NewRecorder()
		f.s.ServeHTTP(w, r)
		var e struct{ Error string }
		if w.Code != http.StatusUnauthorized || json.Unmarshal(w.Body.Bytes(), &e) != nil || !strings.Contains(e.Error, "postern admin token create") {
			t.Errorf("%s %s (%q): %d %s, want 401 with a JSON error saying what to do", tc.method, tc.path, tc.auth, w.Code, w.Body)
		}
	}
	if _, ok := f.fake.called("POST /v1/cluster/leave"); ok {
		t.Fatal("an unauthenticated API call reached the backend")
	}
}

func TestBearerTokenAndRevoke(t *testing.T) {
	f := newFixture(t)
	call := func(method, path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "https://admin.test"+path, nil)
		r.Header.Set("Authorization", "Bearer pst_good")
		w := httptest.NewRecorder()
		f.s.ServeHTTP(w, r)
		return w
	}
	w := call("GET", "/api/v1/status")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"device_id":"PST-AAAA"`) {
		t.Fatalf("GET /api/v1/status with a token: %d %s", w.Code, w.Body)
	}
	if w := call("POST", "/api/v1/queue/flush"); w.Code != 200 {
		t.Fatalf("POST with a token (no browser headers): %d %s", w.Code, w.Body)
	}
	if w := call("GET", "/api/v1/nope"); w.Code != 404 || !strings.Contains(w.Body.String(), `"error"`) {
		t.Fatalf("unknown API route: %d %s, want a JSON 404", w.Code, w.Body)
	}
	for _, auth := range []string{"bearer pst_good", "BEARER  pst_good"} { // RFC 9110 §11.1: case-insensitive
		r := httptest.NewRequest("GET", "https://admin.test/api/v1/status", nil)
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		f.s.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Errorf("Authorization: %s: %d", auth, w.Code)
		}
	}
	for _, auth := range []string{"Basic pst_good", "Bearerpst_good", "pst_good"} {
		r := httptest.NewRequest("GET", "https://admin.test/api/v1/status", nil)
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		f.s.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("Authorization: %s: %d, want 401", auth, w.Code)
		}
	}
	f.fake.mu.Lock()
	delete(f.fake.tokens, "pst_good") // revoked
	f.fake.mu.Unlock()
	if w := call("GET", "/api/v1/status"); w.Code != http.StatusUnauthorized {
		t.Fatalf("revoked token: %d, want 401", w.Code)
	}
}

func TestAPIWithSession(t *testing.T) {
	f := newFixture(t)
	c := f.login()
	w := f.do("GET", "/api/v1/cluster/status", nil, "", c)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"member":false`) {
		t.Fatalf("API with a session: %d %s", w.Code, w.Body)
	}
	w = f.do("POST", "/api/v1/cluster/inject", strings.NewReader(`{"backends":["PST-BBBB"]}`), "application/json", c)
	if w.Code != 200 {
		t.Fatalf("API POST with a session, same origin: %d %s", w.Code, w.Body)
	}
	if b, _ := f.fake.called("POST /v1/cluster/inject"); b != `{"backends":["PST-BBBB"]}` {
		t.Fatalf("backend got %q", b)
	}
}

func TestCrossSitePostRefused(t *testing.T) {
	f := newFixture(t)
	c := f.login()
	for _, tc := range []struct {
		name    string
		path    string
		headers map[string]string
	}{
		{"page, Sec-Fetch-Site cross-site", "/cluster/leave", map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"page, Sec-Fetch-Site same-site", "/cluster/leave", map[string]string{"Sec-Fetch-Site": "same-site"}},
		{"page, foreign Origin", "/cluster/leave", map[string]string{"Origin": "https://evil.example"}},
		{"api, cross-site", "/api/v1/cluster/leave", map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"login, cross-site", "/login", map[string]string{"Sec-Fetch-Site": "cross-site"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "https://admin.test"+tc.path, strings.NewReader("password="+pw))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.AddCookie(&http.Cookie{Name: sessionCookie, Value: c})
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			f.s.ServeHTTP(w, r)
			if w.Code != http.StatusForbidden {
				t.Fatalf("cross-site POST %s: %d, want 403", tc.path, w.Code)
			}
			if strings.HasPrefix(tc.path, "/api/") && !strings.Contains(w.Body.String(), `"error"`) {
				t.Fatalf("API refusal is not JSON: %s", w.Body)
			}
		})
	}
	if _, ok := f.fake.called("POST /v1/cluster/leave"); ok {
		t.Fatal("a cross-site request reached the backend")
	}
	// the same request from the menu's own page goes through
	if w := f.post("/cluster/leave", url.Values{}, c); w.Code != http.StatusSeeOther {
		t.Fatalf("same-origin POST: %d", w.Code)
	}
	if _, ok := f.fake.called("POST /v1/cluster/leave"); !ok {
		t.Fatal("same-origin leave did not reach the backend")
	}
}

func TestWrongPasswordLimited(t *testing.T) {
	f := newFixture(t)
	try := func(p string) int { return f.post("/login", url.Values{"password": {p}}, "").Code }
	if c := try("wrong"); c != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", c)
	}
	// within the delay even the right password is refused, unchecked
	if c := try(pw); c != http.StatusTooManyRequests {
		t.Fatalf("right password during the 2 s delay: %d, want 429", c)
	}
	f.clock.add(2 * time.Second)
	if c := try("wrong again"); c != http.StatusUnauthorized {
		t.Fatalf("second wrong password: %d", c)
	}
	f.clock.add(3 * time.Second) // the delay grew to 4 s
	if c := try(pw); c != http.StatusTooManyRequests {
		t.Fatalf("right password 3 s into a 4 s delay: %d, want 429", c)
	}
	w := f.post("/login", url.Values{"password": {pw}}, "")
	if !strings.Contains(w.Body.String(), "wait 1 s") || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("the refusal does not say how long to wait: %s %q", w.Body, w.Header().Get("Retry-After"))
	}
	f.clock.add(time.Second)
	if c := try(pw); c != http.StatusSeeOther {
		t.Fatalf("right password after the delay: %d", c)
	}
	// another IP was never limited; a success clears the record
	if c := try("wrong"); c != http.StatusUnauthorized {
		t.Fatalf("after a success the first failure: %d", c)
	}
}

func TestSessionExpires(t *testing.T) {
	f := newFixture(t)
	c := f.login()
	if w := f.do("GET", "/cluster", nil, "", c); w.Code != 200 {
		t.Fatalf("fresh session: %d", w.Code)
	}
	// background refreshes do not keep an idle session alive
	for i := 0; i < 3; i++ {
		f.clock.add(4 * time.Minute)
		r := httptest.NewRequest("GET", "https://admin.test/cluster", nil)
		r.Header.Set(liveHeader, "1")
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: c})
		w := httptest.NewRecorder()
		f.s.ServeHTTP(w, r)
		if i < 2 && w.Code != 200 {
			t.Fatalf("live refresh %d: %d", i, w.Code)
		}
		if i == 2 && w.Code != http.StatusSeeOther {
			t.Fatalf("live refreshes kept an idle session alive past its idle timeout: %d", w.Code)
		}
	}
	if w := f.do("GET", "/cluster", nil, "", c); w.Code != http.StatusSeeOther {
		t.Fatalf("idle session still works: %d", w.Code)
	}
	// in use, it still ends at the absolute timeout
	c = f.login()
	for i := 0; i < 6; i++ {
		f.clock.add(9 * time.Minute)
		if w := f.do("GET", "/status", nil, "", c); w.Code != 200 {
			t.Fatalf("session in use ended after %d min", (i+1)*9)
		}
	}
	f.clock.add(7 * time.Minute) // 61 min
	if w := f.do("GET", "/status", nil, "", c); w.Code != http.StatusSeeOther {
		t.Fatalf("session outlived the absolute timeout: %d", w.Code)
	}
	if w := f.do("GET", "/api/v1/status", nil, "", c); w.Code != http.StatusUnauthorized {
		t.Fatalf("expired session on the API: %d", w.Code)
	}
}

func TestLogout(t *testing.T) {
	f := newFixture(t)
	c := f.login()
	if w := f.post("/logout", nil, c); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login" {
		t.Fatalf("logout: %d %s", w.Code, w.Header().Get("Location"))
	}
	if w := f.do("GET", "/cluster", nil, "", c); w.Code != http.StatusSeeOther {
		t.Fatalf("session works after logout: %d", w.Code)
	}
}

func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t)
	c := f.login()
	for _, p := range []string{"/login", "/cluster", "/static/live.js"} {
		w := f.do("GET", p, nil, "", c)
		h := w.Header()
		csp := h.Get("Content-Security-Policy")
		if strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Strict-Transport-Security": "max-age=31536000"} {
			if h.Get(k) != v {
				t.Errorf("%s: %s = %q, want %q", p, k, h.Get(k), v)
			}
		}
	}
	// no inline script or style in any page
	for _, p := range pageRoutes {
		w := f.do("GET", p, nil, "", c)
		body := w.Body.String()
		if strings.Contains(body, "<script>") || strings.Contains(body, " style=") || strings.Contains(body, "<style") || strings.Contains(body, "javascript:") {
			t.Errorf("%s holds inline script or style", p)
		}
	}
}

// sectionOrder returns the IDs of the cluster page's sections in order.
func sectionOrder(body string) []string {
	var ids []string
	for _, part := range strings.Split(body, `<section id="`)[1:] {
		ids = append(ids, part[:strings.Index(part, `"`)])
	}
	return ids
}

func TestClusterSectionsAsTheSeedSays(t *testing.T) {
	f := newFixture(t)
	c := f.login()
	w := f.do("GET", "/cluster", nil, "", c)
	if got, want := strings.Join(sectionOrder(w.Body.String()), ","), "introduction,prepare,join,attach"; got != want {
		t.Fatalf("standalone: sections %s, want %s", got, want)
	}
	for _, s := range []string{"firmware version: this machine has <strong>1.2.3</strong>", "192.0.2.123", "measured offset 0.4 ms", `name="clusterid"`, `value="192.0.2.1:2222"`, "Download cluster identifier"} {
		if !strings.Contains(w.Body.String(), s) {
			t.Errorf("standalone cluster page lacks %q", s)
		}
	}
	f.fake.mu.Lock()
	f.fake.member = true
	f.fake.mu.Unlock()
	w = f.do("GET", "/cluster", nil, "", c)
	body := w.Body.String()
	if got, want := strings.Join(sectionOrder(body), ","), "introduction,prepare,members,leave,inject,setup,replication,protect"; got != want {
		t.Fatalf("member: sections %s, want %s", got, want)
	}
	for _, s := range []string{
		// Cluster members: columns, status, the Device ID opens the remove page
		"<th>Device ID</th><th>IP address</th><th>Port</th><th>Status</th><th>Comment</th><th>Location</th><th>Version</th><th>Last update time</th>",
		"OK (7 entries in remote database, 7 entries in local database)", `href="/cluster/members/PST-BBBB"`,
		// Cluster Setup: columns, F(…), Is Backend of, colours, delete symbol only for others
		"<th>Device ID / UUID</th><th>Cluster No.</th><th>Hostname</th><th>IP address</th><th>Port</th><th>Is Frontend of</th><th>Is Backend of</th><th>Comment</th><th>Location</th><th>Version</th><th>Last update time</th>",
		"F(1,2)", `href="/cluster/members/PST-BBBB/forget"`, `fill="hsl(`,
		// Cluster replication: this machine in bold
		`<tr class="self">`, "20300101000000.000000Z#000000#001#000000",
		// injection: backends and frontends, the current choice selected
		`<option value="PST-BBBB" selected>`, `<option value="PST-FFFF">`,
		// protection: checkbox on, the IPs one per line
		`name="limit" value="1" checked`, ">192.0.2.9</textarea>",
		`data-live`,
	} {
		if !strings.Contains(body, s) {
			t.Errorf("member cluster page lacks %q", s)
		}
	}
	if strings.Contains(body, `href="/cluster/members/PST-AAAA/forget"`) {
		t.Error("this device has a delete symbol in Cluster Setup")
	}
	if strings.Count(body, `fill="hsl(`) < 5 {
		t.Error("devices lack their colour")
	}
}

func TestClusterActions(t *testing.T) {
	f := newFixture(t)
	c := f.login()
	w := f.post("/cluster/prepare", url.Values{"password": {"twelve chars pw"}, "allow": {"192.0.2.2\n192.0.2.3"}, "valid": {"1h"}}, c)
	if w.Code != 200 || w.Header().Get("Content-Disposition") != `attachment; filename="clusterid.txt"` || !strings.Contains(w.Body.String(), "CLUSTER IDENTIFIER") {
		t.Fatalf("prepare: %d %v %s", w.Code, w.Header(), w.Body)
	}
	if b, _ := f.fake.called("POST /v1/cluster/prepare"); b != `{"password":"twelve chars pw","allow":["192.0.2.2","192.0.2.3"],"valid":3600000000000}` {
		t.Fatalf("prepare sent %s", b)
	}
	for _, tc := range []struct {
		path    string
		form    url.Values
		call    string
		body    string
		flash   string
		flashAt string
	}{
		{"/cluster/members/PST-BBBB/remove", nil, "POST /v1/cluster/remove/PST-BBBB", "", "PST-BBBB was removed from the cluster", "/cluster"},
		{"/cluster/members/PST-BBBB/forget", nil, "POST /v1/cluster/forget/PST-BBBB", "", "The record of PST-BBBB was deleted", "/cluster"},
		{"/cluster/inject", url.Values{"backends": {"PST-BBBB"}}, "POST /v1/cluster/inject", `{"backends":["PST-BBBB"],"frontends":[]}`, "may inject mail on PST-BBBB", "/cluster"},
		{"/cluster/protect", url.Values{"limit": {"1"}, "ips": {"192.0.2.7\r\n"}}, "POST /v1/cluster/protect", `{"ips":["192.0.2.7"]}`, "limited to 192.0.2.7, 192.0.2.1", "/cluster"},
		{"/cluster/protect", url.Values{"ips": {""}}, "POST /v1/cluster/protect", `{"off":true,"ips":[]}`, "", ""},
		{"/system", url.Values{"hostname": {"alpha2"}, "comment": {"c"}, "location": {"l"}, "ntp_server": {"192.0.2.123"}}, "POST /v1/system", `{"hostname":"alpha2","comment":"c","location":"l","ntp_server":"192.0.2.123"}`, "System settings saved", "/system"},
		{"/mail/domains", url.Values{"name": {"example.org"}, "deliver_to": {"192.0.2.26:25"}, "tls": {"encrypt"}}, "POST /v1/domains", `{"name":"example.org","deliver_to":"192.0.2.26:25","tls":"encrypt"}`, "Managed domain example.org saved", "/mail"},
		{"/mail/domains/example.com/remove", nil, "DELETE /v1/domains/example.com", "", "example.com removed", "/mail"},
		{"/mail/relay", url.Values{"networks": {"192.0.2.0/24"}, "smarthost": {""}}, "POST /v1/relay", `{"networks":["192.0.2.0/24"],"smarthost":""}`, "Relay settings saved", "/mail"},
		{"/mail/queue/flush", nil, "POST /v1/queue/flush", "", "1 message(s) scheduled", "/mail"},
		{"/mail/queue/Q1/delete", nil, "DELETE /v1/queue/Q1", "", "Queued message Q1 deleted", "/mail"},
		{"/cluster/leave", nil, "POST /v1/cluster/leave", "", "This device left the cluster", "/cluster"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			w := f.post(tc.path, tc.form, c)
			if w.Code != http.StatusSeeOther {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			b, ok := f.fake.called(tc.call)
			if !ok {
				t.Fatalf("backend never got %s", tc.call)
			}
			if tc.body != "" && b != tc.body {
				t.Fatalf("backend got %s, want %s", b, tc.body)
			}
			if tc.flash != "" {
				if p := f.do("GET", tc.flashAt, nil, "", c); !strings.Contains(p.Body.String(), tc.flash) {
					t.Fatalf("the next page does not say %q:\n%s", tc.flash, p.Body)
				}
			}
		})
	}
	// a refused action shows the backend's message
	w = f.post("/cluster/members/PST-NOPE/remove", nil, c)
	if p := f.do("GET", w.Header().Get("Location"), nil, "", c); !strings.Contains(p.Body.String(), "no route POST /v1/cluster/remove/PST-NOPE") {
		t.Fatalf("refusal not shown:\n%s", p.Body)
	}
}

func TestConfirmationsSayWhatHappens(t *testing.T) {
	f := newFixture(t)
	f.fake.member = true
	c := f.login()
	for path, want := range map[string][]string{
		"/cluster/members/PST-BBBB":        {"Remove device from cluster", "The database remains on PST-BBBB in the last synchronised version", `action="/cluster/members/PST-BBBB/remove"`},
		"/cluster/leave":                   {"Its local database remains unchanged", `action="/cluster/leave"`},
		"/cluster/members/PST-BBBB/forget": {"reappears within a minute", `action="/cluster/members/PST-BBBB/forget"`},
		"/mail/queue/Q1/delete":            {"a@example.org to b@example.com", "no bounce", `action="/mail/queue/Q1/delete"`},
	} {
		w := f.do("GET", path, nil, "", c)
		for _, s := range want {
			if w.Code != 200 || !strings.Contains(w.Body.String(), s) {
				t.Errorf("%s: %d, lacks %q", path, w.Code, s)
			}
		}
	}
	if _, ok := f.fake.called("POST /v1/cluster/leave"); ok {
		t.Fatal("showing a confirmation acted")
	}
}

func TestOtherPages(t *testing.T) {
	f := newFixture(t)
	c := f.login()
	for path, want := range map[string][]string{
		"/system":        {`value="alpha"`, "1.2.3 (build b)", "measured offset 0.4 ms", "Zurich"},
		"/ssl":           {"CN=alpha,O=Postern appliance", "(self-signed)", "alpha, localhost; 127.0.0.1", "2035-01-01", `name="key_file"`},
		"/logs?q=PST-1":  {"appliance started", `value="PST-1"`, "q=PST-1"},
		"/mail":          {"example.com", "192.0.2.25:25", "192.0.2.0/24", `href="/mail/queue/Q1"`, "connection refused", "1.2 KiB"},
		"/mail/queue/Q1": {"Subject: hello", "a@example.org", "b@example.com"},
		"/directory":     {"<td>7</td>", "<td>ou=people,dc=postern,dc=local</td><td>2</td>", "Export LDIF"},
		"/status":        {"192.0.2.1:25", "Messages in the queue.", "<polyline", "no samples yet", "1m0s"},
	} {
		w := f.do("GET", path, nil, "", c)
		for _, s := range want {
			if w.Code != 200 || !strings.Contains(w.Body.String(), s) {
				t.Errorf("%s: %d, lacks %q", path, w.Code, s)
			}
		}
	}
	w := f.do("GET", "/directory/export", nil, "", c)
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Disposition"), `attachment; filename="postern-`) || !strings.Contains(w.Body.String(), "dn: cn=A,ou=people") {
		t.Fatalf("export: %d %v", w.Code, w.Header())
	}
}

// multipartBody builds a multipart form with files.
func multipartBody(t *testing.T, fields map[string]string, files map[string]string) (io.Reader, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	for k, v := range files {
		fw, err := mw.CreateFormFile(k, k+".txt")
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(fw, v)
	}
	mw.Close()
	return &buf, mw.FormDataContentType()
}

func TestJoinProgressAndBusy(t *testing.T) {
	f := newFixture(t)
	f.fake.joinGate = make(chan struct{})
	c := f.login()
	body, ct := multipartBody(t, map[string]string{"password": "twelve chars pw", "member": "192.0.2.1:2222", "self": "192.0.2.2:2222"}, map[string]string{"clusterid": "ID"})
	w := f.do("POST", "/cluster/join", body, ct, c)
	if w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/cluster/join/") {
		t.Fatalf("join: %d %s", w.Code, w.Header().Get("Location"))
	}
	progress := w.Header().Get("Location")
	wait := func(want string) string {
		t.Helper()
		var last string
		for i := 0; i < 200; i++ {
			last = f.do("GET", progress, nil, "", c).Body.String()
			if strings.Contains(last, want) {
				return last
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("progress page never said %q:\n%s", want, last)
		return ""
	}
	p := wait("ok: firmware 1.2.3 on both")
	if !strings.Contains(p, `<meta http-equiv="refresh" content="2">`) || !strings.Contains(p, "Running") {
		t.Fatalf("a running job's page does not refresh itself without script:\n%s", p)
	}
	// a second join while the first runs: busy, and nothing reaches the backend
	body, ct = multipartBody(t, map[string]string{"password": "twelve chars pw", "self": "192.0.2.2:2222"}, map[string]string{"clusterid": "ID"})
	w = f.do("POST", "/cluster/join", body, ct, c)
	if w.Header().Get("Location") != progress {
		t.Fatalf("second join went to %q", w.Header().Get("Location"))
	}
	if p := f.do("GET", progress, nil, "", c).Body.String(); !strings.Contains(p, "busy: a join started from this menu") {
		t.Fatalf("second join not answered busy:\n%s", p)
	}
	close(f.fake.joinGate)
	p = wait("This device is now a member of the cluster.")
	if !strings.Contains(p, "copied 10/10 entries") || strings.Contains(p, "copied 5/10 entries") {
		t.Fatalf("the copy progress is not one updated line:\n%s", p)
	}
	if strings.Contains(p, `http-equiv="refresh"`) {
		t.Fatal("a finished job still refreshes")
	}
	b, _ := f.fake.called("POST /v1/cluster/join")
	if b != `{"id":"SUQ=","password":"twelve chars pw","member":"192.0.2.1:2222","self":"192.0.2.2:2222"}` {
		t.Fatalf("join sent %s", b)
	}
	// a form without the file says what is missing
	body, ct = multipartBody(t, map[string]string{"password": "x", "self": "192.0.2.2:2222"}, nil)
	w = f.do("POST", "/cluster/join", body, ct, c)
	if p := f.do("GET", w.Header().Get("Location"), nil, "", c).Body.String(); !strings.Contains(p, "choose the clusterid.txt") {
		t.Fatalf("missing file not explained:\n%s", p)
	}
}

func TestLDIFImportProgress(t *testing.T) {
	f := newFixture(t)
	c := f.login()
	body, ct := multipartBody(t, nil, map[string]string{"ldif": "dn: cn=x,dc=postern,dc=local\ncn: x\n"})
	w := f.do("POST", "/directory/import", body, ct, c)
	if w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/directory/import/") {
		t.Fatalf("import: %d %s", w.Code, w.Header().Get("Location"))
	}
	for i := 0; i < 200; i++ {
		p := f.do("GET", w.Header().Get("Location"), nil, "", c).Body.String()
		if strings.Contains(p, "Imported 2 entries: 2 added, 0 updated.") {
			if b, _ := f.fake.called("POST /v1/ldif/import"); b != "dn: cn=x,dc=postern,dc=local\ncn: x\n" {
				t.Fatalf("backend got %q", b)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("import never finished")
}

func TestLoginNextAndOpenRedirect(t *testing.T) {
	f := newFixture(t)
	w := f.post("/login", url.Values{"password": {pw}, "next": {"/mail"}}, "")
	if w.Header().Get("Location") != "/mail" {
		t.Fatalf("next: %s", w.Header().Get("Location"))
	}
	// every way a browser reads as another site (WHATWG URL: tabs and
	// newlines dropped, a backslash read as a slash) goes to /cluster
	for _, next := range []string{"//evil.example/x", "/\t/evil.example/", "/\n/evil.example", "/\\evil.example", "/\\/evil.example",
		"https://evil.example/", "/%09/evil.example", "\t//evil.example", " //evil.example", "/\r\n/evil.example", "/\x00/evil.example", "javascript:alert(1)"} {
		w = f.post("/login", url.Values{"password": {pw}, "next": {next}}, "")
		if loc := w.Header().Get("Location"); loc != "/cluster" && !(next == "/%09/evil.example" && loc == next) {
			t.Errorf("next %q: redirected to %q", next, loc)
		}
	}
	if l := w.Header().Get("Location"); l != "/cluster" {
		t.Fatalf("open redirect: %s", l)
	}
}

// TestClusterQueues: on a backend of a cluster the Mail page lists every
// member's queue (a member that does not answer says so) and flushes them
// all (`queue list --cluster`, `queue flush --cluster`); a standalone
// appliance shows only its own queue.
func TestClusterQueues(t *testing.T) {
	f := newFixture(t)
	c := f.login()
	if w := f.do("GET", "/mail", nil, "", c); w.Code != 200 || strings.Contains(w.Body.String(), "Queues of every cluster member") {
		t.Fatalf("standalone: %d, shows the cluster's queues", w.Code)
	}
	f.fake.mu.Lock()
	f.fake.member = true
	f.fake.mu.Unlock()
	w := f.do("GET", "/mail", nil, "", c)
	for _, want := range []string{"Queues of every cluster member", "<td>PST-BBBB</td><td>2</td><td>Q7</td>", "d@example.net: deferred", "not reached: unreachable: connection refused", `action="/mail/queues/flush"`} {
		if w.Code != 200 || !strings.Contains(w.Body.String(), want) {
			t.Errorf("/mail on a member: %d, lacks %q", w.Code, want)
		}
	}
	w = f.post("/mail/queues/flush", nil, c)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("flush: %d %s", w.Code, w.Body)
	}
	if p := f.do("GET", w.Header().Get("Location"), nil, "", c); !strings.Contains(p.Body.String(), "3 message(s) on 2 member(s) scheduled") {
		t.Fatalf("flush result not shown:\n%s", p.Body)
	}
}
