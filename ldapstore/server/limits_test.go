package server

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// wantNotice reads a Notice of Disconnection (RFC 4511 §4.4.1) and then the
// end of the stream.
func wantNotice(t *testing.T, c io.Reader) {
	t.Helper()
	id, op := readMessage(t, c)
	if id != 0 || op.ClassType != ber.ClassApplication || op.Tag != appExtendedResponse {
		t.Fatalf("got id %d tag %d, want an unsolicited ExtendedResponse", id, op.Tag)
	}
	if code := resultCode(t, op); code != int64(ldap.LDAPResultProtocolError) {
		t.Fatalf("notice result %d, want protocolError", code)
	}
	if len(op.Children) < 4 || op.Children[3].Tag != 10 || op.Children[3].Data.String() != OIDNoticeOfDisconnection {
		t.Fatalf("notice without responseName %s", OIDNoticeOfDisconnection)
	}
	if _, err := ber.ReadPacket(c); err == nil {
		t.Fatal("connection still open after the notice")
	}
}

func TestMalformedInput(t *testing.T) {
	ts := newTestServer(t)
	tests := []struct {
		name  string
		input []byte
	}{
		{"not a sequence", []byte{0x04, 0x00}},
		{"indefinite length", []byte{0x30, 0x80, 0x00, 0x00}},
		{"protocolOp not application", []byte{0x30, 0x05, 0x02, 0x01, 0x01, 0x04, 0x00}},
		{"messageID zero", msg(0, extendedOp(OIDWhoAmI))},
		{"response as request", []byte{0x30, 0x0c, 0x02, 0x01, 0x01, 0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00}},
		{"child overruns", []byte{0x30, 0x05, 0x02, 0x09, 0x01, 0x01, 0x01}},
		{"bind without fields", []byte{0x30, 0x05, 0x02, 0x01, 0x01, 0x60, 0x00}},
		{"truncated then closed", []byte{0x30, 0x10, 0x02, 0x01}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.raw()
			c.Write(tc.input)
			if tc.name == "truncated then closed" {
				c.(interface{ CloseWrite() error }).CloseWrite()
			}
			wantNotice(t, c)
			// The server goes on serving other connections.
			if _, err := ts.dial().WhoAmI(nil); err != nil {
				t.Fatalf("after malformed input: %v", err)
			}
		})
	}
	if got := gather(t, ts.reg, "postern_ldap_protocol_errors_total"); !strings.Contains(got, "8") {
		t.Errorf("protocol error counter: %q", got)
	}
}

func TestOversizedMessage(t *testing.T) {
	ts := newTestServer(t, testOption(func(c *Config) { c.MaxMessageSize = 1024 }))
	// A header announcing more than the limit is refused before the body.
	c := ts.raw()
	c.Write([]byte{0x30, 0x84, 0x00, 0x10, 0x00, 0x00})
	wantNotice(t, c)

	// A real oversized request from a client ends its connection.
	l := ts.root()
	err := l.Add(addReq("cn=big.example,ou=domains,"+testSuffix, "objectClass", "posternDomain", "cn", "big.example", "description", strings.Repeat("x", 2000)))
	if err == nil {
		t.Fatal("oversized add succeeded")
	}
	// A message just under the limit is fine.
	l = ts.root()
	wantCode(t, l.Add(addReq("cn=ok.example,ou=domains,"+testSuffix, "objectClass", "posternDomain", "cn", "ok.example", "description", strings.Repeat("x", 800))), 0)
}

func TestMaxInFlight(t *testing.T) {
	ts := newTestServer(t, testOption(func(c *Config) { c.MaxInFlight = 1 }))
	started := make(chan struct{})
	ts.srv.HandleSearchControl(testHandlerOID, SearchHandlerFunc(func(ctx context.Context, req *SearchRequest, w SearchWriter) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}))
	l := ts.root()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := ldap.NewSearchRequest(testSuffix, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", nil,
		[]ldap.Control{ldap.NewControlString(testHandlerOID, true, "")})
	l.SearchAsync(ctx, req, 1)
	<-started
	_, err := l.Search(ldap.NewSearchRequest(testSuffix, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", nil, nil))
	wantCode(t, err, ldap.LDAPResultBusy)
	// Other connections have their own budget.
	if es := search(t, ts.root(), testSuffix, ldap.ScopeBaseObject, "(objectClass=*)"); len(es) != 1 {
		t.Fatal("other connection refused")
	}
}

func TestIdleTimeout(t *testing.T) {
	ts := newTestServer(t, testOption(func(c *Config) { c.IdleTimeout = 200 * time.Millisecond }))
	c := ts.raw()
	start := time.Now()
	_, err := c.Read(make([]byte, 1))
	if !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: read %v, want EOF", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("closed after %v", d)
	}

	// A connection with a running (persistent) search is not idle.
	started := make(chan struct{})
	ts.srv.HandleSearchControl(testHandlerOID, SearchHandlerFunc(func(ctx context.Context, req *SearchRequest, w SearchWriter) error {
		close(started)
		select {
		case <-ctx.Done():
		case <-time.After(1500 * time.Millisecond):
		}
		return nil
	}))
	l := ts.root()
	req := ldap.NewSearchRequest(testSuffix, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", nil,
		[]ldap.Control{ldap.NewControlString(testHandlerOID, true, "")})
	if _, err := l.Search(req); err != nil {
		t.Fatalf("search outlasting the idle timeout: %v", err)
	}
}

func TestControls(t *testing.T) {
	ts := newTestServer(t)
	l := ts.root()
	base := func(ctrls ...ldap.Control) error {
		_, err := l.Search(ldap.NewSearchRequest(testSuffix, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", nil, ctrls))
		return err
	}
	// RFC 4511 §4.1.11: unknown critical controls fail the operation,
	// unknown non-critical ones are ignored.
	wantCode(t, base(ldap.NewControlString("1.2.3.4", true, "")), ldap.LDAPResultUnavailableCriticalExtension)
	wantCode(t, base(ldap.NewControlString("1.2.3.4", false, "")), 0)
	wantCode(t, base(ldap.NewControlManageDsaIT(true)), 0)
	m := ldap.NewModifyRequest(testUserDN, []ldap.Control{ldap.NewControlString("1.2.3.4", true, "")})
	m.Replace("description", []string{"x"})
	wantCode(t, l.Modify(m), ldap.LDAPResultUnavailableCriticalExtension)
	// Paged results are for searches only.
	m = ldap.NewModifyRequest(testUserDN, []ldap.Control{ldap.NewControlString(OIDPagedResults, true, "\x30\x05\x02\x01\x0a\x04\x00")})
	m.Replace("description", []string{"x"})
	wantCode(t, l.Modify(m), ldap.LDAPResultUnavailableCriticalExtension)
	m = ldap.NewModifyRequest(testUserDN, []ldap.Control{ldap.NewControlManageDsaIT(true)})
	m.Replace("description", []string{"x"})
	wantCode(t, l.Modify(m), 0)
	_, err := l.SimpleBind(&ldap.SimpleBindRequest{Username: testRootDN, Password: testRootPW, Controls: []ldap.Control{ldap.NewControlString("1.2.3.4", true, "")}})
	wantCode(t, err, ldap.LDAPResultUnavailableCriticalExtension)
}

func TestMetrics(t *testing.T) {
	ts := newTestServer(t)
	l := ts.root()
	search(t, l, testSuffix, ldap.ScopeBaseObject, "(objectClass=*)")
	wantCode(t, ts.dial().Bind(testRootDN, "wrong"), ldap.LDAPResultInvalidCredentials)
	ops := gather(t, ts.reg, "postern_ldap_operations_total")
	for _, want := range []string{"code=0 op=bind 1", "code=49 op=bind 1", "code=0 op=search 1"} {
		if !strings.Contains(ops, want) {
			t.Errorf("operations metric lacks %q:\n%s", want, ops)
		}
	}
	if conns := gather(t, ts.reg, "postern_ldap_connections_total"); !strings.Contains(conns, "2") {
		t.Errorf("connections_total %q", conns)
	}
}
