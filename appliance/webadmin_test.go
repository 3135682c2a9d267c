package appliance

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startAdminTest starts an appliance whose admin menu listens on a
// loopback port the kernel picks.
func startAdminTest(t *testing.T) *Appliance {
	t.Helper()
	a, err := New(Config{
		DataDir: filepath.Join(t.TempDir(), "var"), AdminPassword: "pw-for-tests",
		LDAPAddr: "127.0.0.1:0", LDAPSAddr: "off", SMTPAddr: "127.0.0.1:0",
		AdminAddr: "127.0.0.1:0", ClusterAddr: "off", MetricsAddr: "off",
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

// adminGet calls the admin menu's API with a bearer token and returns the
// status, the body and the certificate the server presented.
func adminGet(t *testing.T, a *Appliance, path, token string) (int, string, *x509.Certificate) {
	t.Helper()
	var peer *x509.Certificate
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error { peer = cs.PeerCertificates[0]; return nil }}}}
	req, _ := http.NewRequest("GET", "https://"+a.Addr("admin")+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), peer
}

func TestAdminTokenCLIAndAPI(t *testing.T) {
	a := startAdminTest(t)
	code, out := run(t, a, "", "admin", "token", "create", "--name", "monitoring")
	m := regexp.MustCompile(`admin token ([0-9a-f]+) \(shown once\): (pst_\S+)`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("token create: %d %s", code, out)
	}
	id, tok := m[1], m[2]
	st, body, _ := adminGet(t, a, "/api/v1/status", tok)
	if st != 200 || !strings.Contains(body, a.Identity().DeviceID) {
		t.Fatalf("API with the token: %d %s", st, body)
	}
	if code, out := run(t, a, "", "admin", "token", "list"); code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "monitoring") || strings.Contains(out, tok) {
		t.Fatalf("token list: %d %s", code, out)
	}
	// stored hashed, machine-local
	raw, _ := readFile(filepath.Join(a.cfg.DataDir, tokensFile))
	if strings.Contains(raw, tok) || !strings.Contains(raw, `"hash"`) {
		t.Fatalf("token file holds the token or no hash:\n%s", raw)
	}
	if code, out := run(t, a, "", "admin", "token", "revoke", id); code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: %d %s", code, out)
	}
	if st, body, _ := adminGet(t, a, "/api/v1/status", tok); st != 401 || !strings.Contains(body, `"error"`) {
		t.Fatalf("revoked token: %d %s", st, body)
	}
	if code, out := run(t, a, "", "admin", "token", "revoke", id); code != 1 || !strings.Contains(out, "no admin token") {
		t.Fatalf("revoke twice: %d %s", code, out)
	}
	if code, _ := run(t, a, "", "admin", "token", "mint"); code != 2 {
		t.Fatalf("unknown token subcommand: exit %d", code)
	}
}

func readFile(p string) (string, error) {
	b, err := os.ReadFile(p)
	return string(b), err
}

// selfSigned makes a certificate and key in PEM.
func selfSigned(t *testing.T, cn string, notAfter time.Time, eku []x509.ExtKeyUsage) (string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: notAfter, DNSNames: []string{cn}, ExtKeyUsage: eku,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
}

func TestMachineCertificateUpload(t *testing.T) {
	a := startAdminTest(t)
	c := newClient(a.cfg.DataDir)
	ctx := context.Background()
	var info TLSInfo
	if err := c.call(ctx, "GET", "/v1/tls", nil, &info); err != nil || !info.SelfSigned || info.Chain != 1 {
		t.Fatalf("GET /v1/tls: %+v %v", info, err)
	}
	good, goodKey := selfSigned(t, "mail.example.com", time.Now().AddDate(1, 0, 0), []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth})
	_, otherKey := selfSigned(t, "other.example.com", time.Now().AddDate(1, 0, 0), nil)
	expired, expiredKey := selfSigned(t, "old.example.com", time.Now().Add(-time.Hour), nil)
	client, clientKey := selfSigned(t, "client.example.com", time.Now().AddDate(1, 0, 0), []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
	for _, tc := range []struct {
		name, cert, key, want string
	}{
		{"key of another certificate", good, otherKey, "do not make a pair"},
		{"expired", expired, expiredKey, "expired at"},
		{"client certificate", client, clientKey, "not for server authentication"},
		{"garbage", "hello", "world", "do not make a pair"},
	} {
		err := c.call(ctx, "POST", "/v1/tls", TLSUpload{CertPEM: tc.cert, KeyPEM: tc.key}, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, _, peer := adminGet(t, a, "/login", ""); peer.Subject.CommonName == "mail.example.com" {
		t.Fatal("a refused certificate is in force")
	}
	if err := c.call(ctx, "POST", "/v1/tls", TLSUpload{CertPEM: good, KeyPEM: goodKey}, &info); err != nil || info.Subject != "CN=mail.example.com" {
		t.Fatalf("good certificate: %+v %v", info, err)
	}
	// in force at once, on the admin listener, without a restart
	if _, _, peer := adminGet(t, a, "/login", ""); peer.Subject.CommonName != "mail.example.com" {
		t.Fatalf("admin listener presents %s", peer.Subject)
	}
	if b, _ := readFile(filepath.Join(a.cfg.DataDir, certFile)); b != good {
		t.Fatal("the certificate is not stored in the data directory")
	}
}

func TestLogsAndStatsRoutes(t *testing.T) {
	a := startAdminTest(t)
	c := newClient(a.cfg.DataDir)
	ctx := context.Background()
	a.log.Info("queued", "queue_id", "Q-LOGTEST", "from", "a@example.org")
	a.log.With("component", "smtp").Warn("deferred", "queue_id", "Q-OTHER")
	var lines []LogLine
	if err := c.call(ctx, "GET", "/v1/logs?q=q-logtest", nil, &lines); err != nil || len(lines) != 1 || lines[0].Msg != "queued" || !strings.Contains(lines[0].Attrs, "from=a@example.org") {
		t.Fatalf("logs filtered: %+v %v", lines, err)
	}
	if err := c.call(ctx, "GET", "/v1/logs?n=2", nil, &lines); err != nil || len(lines) != 2 || lines[0].Msg != "deferred" || !strings.Contains(lines[0].Attrs, "component=smtp") {
		t.Fatalf("logs newest first: %+v %v", lines, err)
	}
	if err := c.call(ctx, "GET", "/v1/logs?n=x", nil, &lines); err == nil || !strings.Contains(err.Error(), "positive number") {
		t.Fatalf("bad n: %v", err)
	}
	var st StatsReport
	if err := c.call(ctx, "GET", "/v1/stats", nil, &st); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range st.Metrics {
		names[f.Name] = true
	}
	if !names["postern_info"] || !names["postern_smtp_queue_messages"] || len(st.History[seriesQueue]) == 0 {
		t.Fatalf("stats: %v %v", names, st.History)
	}
	b, _ := json.Marshal(st.History)
	if !strings.Contains(string(b), seriesLag) {
		t.Fatalf("no lag history: %s", b)
	}
}

func TestLogRingWraps(t *testing.T) {
	r := newLogRing(3)
	for _, m := range []string{"a", "b", "c", "d", "e"} {
		r.add(LogLine{Msg: m})
	}
	got := r.search("", 10)
	if len(got) != 3 || got[0].Msg != "e" || got[2].Msg != "c" {
		t.Fatalf("ring: %+v", got)
	}
}

// TestAPIReachesEveryControlRoute calls the control routes through the web
// menu's /api/ with a bearer token: the same answers as the CLI gets,
// errors as JSON a person can act on.
func TestAPIReachesEveryControlRoute(t *testing.T) {
	a := startAdminTest(t)
	_, out := run(t, a, "", "admin", "token", "create", "--json")
	var tok AdminTokenCreated
	if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.Token == "" {
		t.Fatalf("token create --json: %v %s", err, out)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	call := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "https://"+a.Addr("admin")+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/api/v1/status", "", 200, `"device_id"`},
		{"GET", "/api/v1/system", "", 200, `"hostname"`},
		{"POST", "/api/v1/system", `{"comment":"rack 7"}`, 200, `"comment": "rack 7"`},
		{"GET", "/api/v1/cluster/status", "", 200, `"member": false`},
		{"POST", "/api/v1/cluster/protect", `{"ips":["192.0.2.1"]}`, 409, `"error"`},
		{"POST", "/api/v1/domains", `{"name":"example.com","deliver_to":"127.0.0.1:2526"}`, 200, `"tls": "may"`},
		{"POST", "/api/v1/domains", `{"name":"localhost","deliver_to":"127.0.0.1:2526"}`, 400, `invalid domain name`},
		{"GET", "/api/v1/domains", "", 200, `example.com`},
		{"POST", "/api/v1/relay", `{"networks":["192.0.2.0/24"]}`, 200, `192.0.2.0/24`},
		{"GET", "/api/v1/relay", "", 200, `192.0.2.0/24`},
		{"GET", "/api/v1/queue", "", 200, `[]`},
		{"GET", "/api/v1/queue/NOPE", "", 404, `no queued message NOPE`},
		{"POST", "/api/v1/queue/flush", "", 200, `"scheduled"`},
		{"GET", "/api/v1/ldif/export", "", 200, "dn: cn=example.com,ou=domains,"},
		{"GET", "/api/v1/tls", "", 200, `"not_after"`},
		{"GET", "/api/v1/logs?q=appliance+started", "", 200, `appliance started`},
		{"GET", "/api/v1/stats", "", 200, `postern_info`},
		{"GET", "/api/v1/admin/tokens", "", 200, tok.ID},
		{"GET", "/api/v1/nope", "", 404, `no API route GET /api/v1/nope`},
		{"DELETE", "/api/v1/status", "", 405, `not allowed`},
		// the machine's credentials and process are the control socket's;
		// a token further cannot make tokens nor take private keys out
		{"POST", "/api/v1/admin/password", `{}`, 403, `postern admin password`},
		{"POST", "/api/v1/stop", "", 403, `postern stop`},
		{"POST", "/api/v1/admin/tokens", `{"name":"more"}`, 403, `may not make or revoke tokens`},
		{"DELETE", "/api/v1/admin/tokens/" + tok.ID, "", 403, `may not make or revoke tokens`},
		{"GET", "/api/v1/ldif/export?private_keys=true", "", 403, `may not export private keys`},
		{"POST", "/api/v1/keys/export", `{"owner":"alice@example.com","private":true,"password":"twelve chars pw"}`, 403, `may not export private keys`},
		{"POST", "/api/v1/keys/export", `{"owner":"alice@example.com"}`, 404, `"error"`},
		{"GET", "/api/v1/status", "", 200, `"device_id"`}, // still running, password unchanged
	} {
		st, body := call(tc.method, tc.path, tc.body)
		if st != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s %s: %d %s, want %d with %q", tc.method, tc.path, st, body, tc.status, tc.want)
		}
		if st >= 400 && !strings.Contains(body, `{"error":`) {
			t.Errorf("%s %s: error is not JSON: %s", tc.method, tc.path, body)
		}
	}
	if code, out := run(t, a, "", "domain", "list"); code != 0 || !strings.Contains(out, "example.com") {
		t.Fatalf("the API's domain is not the CLI's: %s", out)
	}
}
