package appliance

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"postern/cluster"
	"postern/internal/testnet"
)

// lockedBuffer is a bytes.Buffer safe for a writer and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// freeAddr returns a free TCP address on ip.
func freeAddr(t *testing.T, ip string) string {
	t.Helper()
	return testnet.FreePort(t, ip)
}

// menuClient is a browser of the admin menu: a cookie jar, redirects not
// followed (the test reads them).
type menuClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newMenuClient(t *testing.T, addr string) *menuClient {
	jar, _ := cookiejar.New(nil)
	return &menuClient{t: t, base: "https://" + addr, c: &http.Client{Jar: jar, Timeout: 60 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (m *menuClient) do(method, path string, body io.Reader, ctype string) (int, string, string) {
	m.t.Helper()
	req, _ := http.NewRequest(method, m.base+path, body)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if method == "POST" {
		req.Header.Set("Origin", m.base)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	resp, err := m.c.Do(req)
	if err != nil {
		m.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// waitPage gets path until it holds want; every answer must be the page
// itself (200), never the login page: the session lives on.
func (m *menuClient) waitPage(path, want string, within time.Duration) string {
	m.t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, loc, body := m.do("GET", path, nil, "")
		if code != 200 {
			m.t.Fatalf("GET %s: %d (to %q): the menu lost the session or the page", path, code, loc)
		}
		if strings.Contains(body, want) {
			return body
		}
		if strings.Contains(body, "flash error result") || time.Now().After(deadline) {
			m.t.Fatalf("%s does not say %q:\n%s", path, want, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestWebMenuAcrossRestartInNewRole: `postern serve` (in process) is
// attached as a frontend and detached through its web menu. The appliance
// makes itself anew twice in the same process; the menu's listener never
// refuses a connection, the session lives on, and each progress page ends
// with the result in the new role.
func TestWebMenuAcrossRestartInNewRole(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pc, err := net.ListenPacket("udp", "127.0.0.85:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go cluster.ServeSNTP(ctx, pc, time.Now)
	ntp := pc.LocalAddr().String()

	be, err := New(Config{DataDir: filepath.Join(t.TempDir(), "backend"), AdminPassword: "pw-backend", Hostname: "backend", NTPServer: ntp,
		LDAPAddr: "127.0.0.85:0", LDAPSAddr: "off", SMTPAddr: "127.0.0.85:0", AdminAddr: "off", ClusterAddr: "127.0.0.85:0", MetricsAddr: "off",
		ClusterHeartbeat: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := be.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	var id struct {
		ClusterID string `json:"clusterid"`
	}
	if err := newClient(be.cfg.DataDir).call(ctx, "POST", "/v1/cluster/prepare", cluster.PrepareRequest{Password: "correct horse battery", Allow: []string{"127.0.0.86"}}, &id); err != nil {
		t.Fatal(err)
	}

	// the frontend-to-be: the serve command itself
	t.Setenv("POSTERN_ADMIN_PASSWORD", "pw-front")
	data := filepath.Join(t.TempDir(), "front")
	admin, clusterAddr := freeAddr(t, "127.0.0.86"), freeAddr(t, "127.0.0.86")
	var out lockedBuffer
	served := make(chan int, 1)
	go func() {
		served <- Main(ctx, []string{"postern", "serve", "--data", data, "--hostname", "front", "--ntp-server", ntp, "--heartbeat", "1s",
			"--ldap", "127.0.0.86:0", "--ldaps", "off", "--smtp", "127.0.0.86:0", "--admin", admin, "--cluster", clusterAddr, "--metrics", "off"},
			strings.NewReader(""), &out, io.Discard)
	}()
	for i := 0; !strings.Contains(out.String(), "ready\n"); i++ {
		if i > 300 {
			t.Fatalf("serve not ready after 30 s:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	m := newMenuClient(t, admin)
	if code, loc, _ := m.do("POST", "/login", strings.NewReader(url.Values{"password": {"pw-front"}}.Encode()), "application/x-www-form-urlencoded"); code != 303 || loc != "/cluster" {
		t.Fatalf("login: %d %s", code, loc)
	}

	// while the appliance is made anew, the admin port never refuses
	var dials, refused atomic.Int64
	probe := func() (stop func()) {
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				case <-time.After(10 * time.Millisecond):
				}
				c, err := net.DialTimeout("tcp", admin, time.Second)
				dials.Add(1)
				if errors.Is(err, syscall.ECONNREFUSED) {
					refused.Add(1)
				}
				if c != nil {
					c.Close()
				}
			}
		}()
		return func() { close(done); wg.Wait() }
	}

	stop := probe()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("clusterid", "clusterid.txt")
	io.WriteString(fw, id.ClusterID)
	mw.WriteField("password", "correct horse battery")
	mw.WriteField("backend", be.Addr("cluster"))
	mw.WriteField("self", clusterAddr)
	mw.Close()
	code, progress, _ := m.do("POST", "/cluster/attach", &buf, mw.FormDataContentType())
	if code != 303 || !strings.HasPrefix(progress, "/cluster/attach/") {
		t.Fatalf("attach: %d %s", code, progress)
	}
	page := m.waitPage(progress, "This appliance is now frontend server F(1) of the cluster", 60*time.Second)
	stop()
	if !strings.Contains(page, "registered at "+be.Addr("cluster")) || !strings.Contains(page, "running as a frontend: F(1)") {
		t.Errorf("attach progress:\n%s", page)
	}
	if !strings.Contains(out.String(), "restarting in the new role") {
		t.Fatalf("the appliance was not made anew:\n%s", out.String())
	}
	if refused.Load() > 0 || dials.Load() == 0 {
		t.Fatalf("the admin port refused %d of %d connections while the appliance was made anew", refused.Load(), dials.Load())
	}
	_, _, body := m.do("GET", "/cluster", nil, "")
	if !strings.Contains(body, `<section id="remote"`) || !strings.Contains(body, "OK (") || strings.Contains(body, `<section id="join"`) {
		t.Fatalf("the cluster page after the attach is not a frontend's:\n%s", body)
	}

	// detach through its confirmation: made anew once more, standalone
	if _, _, body := m.do("GET", "/cluster/detach", nil, ""); !strings.Contains(body, `action="/cluster/detach"`) {
		t.Fatalf("detach confirmation:\n%s", body)
	}
	dials.Store(0)
	stop = probe()
	code, progress, _ = m.do("POST", "/cluster/detach", nil, "")
	if code != 303 || !strings.HasPrefix(progress, "/cluster/detach/") {
		t.Fatalf("detach: %d %s", code, progress)
	}
	page = m.waitPage(progress, "This appliance is standalone again", 60*time.Second)
	stop()
	if refused.Load() > 0 || dials.Load() == 0 {
		t.Fatalf("the admin port refused %d of %d connections during the detach", refused.Load(), dials.Load())
	}
	if !strings.Contains(page, "deleted this frontend") {
		t.Errorf("detach progress:\n%s", page)
	}
	if _, _, body := m.do("GET", "/cluster", nil, ""); !strings.Contains(body, `<section id="attach"`) || strings.Contains(body, `<section id="remote"`) {
		t.Fatalf("the cluster page after the detach is not a standalone appliance's:\n%s", body)
	}
	if n := strings.Count(out.String(), "restarting in the new role"); n != 2 {
		t.Errorf("made anew %d times, want 2", n)
	}

	cancel()
	select {
	case code := <-served:
		if code != 0 {
			t.Fatalf("serve exited %d:\n%s", code, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30 s")
	}
	// the menu closed with it
	if c, err := net.DialTimeout("tcp", admin, time.Second); err == nil {
		c.Close()
		t.Fatal("the admin port still answers after serve returned")
	}
}
