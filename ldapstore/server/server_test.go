package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
	"github.com/prometheus/client_golang/prometheus"

	"postern/ldapstore"
)

const (
	testSuffix  = "dc=postern,dc=local"
	testRootDN  = "cn=admin,dc=postern,dc=local"
	testRootPW  = "root secret"
	testUserDN  = "uid=alice,ou=people,dc=postern,dc=local"
	testUserPW  = "alice secret"
	testOtherDN = "uid=bob,ou=people,dc=postern,dc=local"
	testOtherPW = "bob secret"
	testVersion = "9.9.9-test"
)

// testServer is a Store in a temporary directory with Postern's base DIT and
// two users, served on 127.0.0.1.
type testServer struct {
	t     testing.TB
	store *ldapstore.Store
	srv   *Server
	addr  string
	tls   *tls.Config // client side, trusting the server's certificate
	caPEM []byte      // the server's self-signed certificate
	reg   *prometheus.Registry
}

// testOption changes the Config of a test server.
type testOption func(*Config)

// serverHook changes a test server before it serves.
type serverHook func(*Server)

// newTestServer starts a server; opts are testOption or serverHook.
func newTestServer(t *testing.T, opts ...any) *testServer {
	t.Helper()
	return newTestServerTB(t, opts...)
}

// newTestServerTB is newTestServer for tests and benchmarks.
func newTestServerTB(t testing.TB, opts ...any) *testServer {
	t.Helper()
	st, err := ldapstore.Open(filepath.Join(t.TempDir(), "ldap.db"), ldapstore.Options{Suffix: testSuffix, ServerID: 1})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	for _, e := range []*ldapstore.Entry{
		entry(testSuffix, "objectClass", "top", "objectClass", "dcObject", "objectClass", "organization", "dc", "postern", "o", "Postern"),
		entry("ou=people,"+testSuffix, "objectClass", "organizationalUnit", "ou", "people"),
		entry("ou=domains,"+testSuffix, "objectClass", "organizationalUnit", "ou", "domains"),
		entry(testUserDN, "objectClass", "inetOrgPerson", "uid", "alice", "cn", "Alice Liddell", "sn", "Liddell",
			"mail", "alice@example.com", "userPassword", testUserPW, "employeeNumber", "10"),
		entry(testOtherDN, "objectClass", "inetOrgPerson", "uid", "bob", "cn", "Bob Dylan", "sn", "Dylan",
			"mail", "bob@example.com", "userPassword", testOtherPW, "employeeNumber", "20"),
	} {
		if err := st.Add(ctx, e, testRootDN); err != nil {
			t.Fatalf("add %s: %v", e.DN, err)
		}
	}
	hash, err := ldapstore.HashPassword(testRootPW)
	if err != nil {
		t.Fatal(err)
	}
	serverTLS, clientTLS, caPEM := testCertificates(t)
	reg := prometheus.NewRegistry()
	cfg := Config{
		Store:         st,
		RootDN:        testRootDN,
		RootPassword:  hash,
		TLSConfig:     serverTLS,
		Logger:        slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		VendorVersion: testVersion,
		Registry:      reg,
	}
	if _, ok := t.(*testing.B); ok {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for _, o := range opts {
		if o, ok := o.(testOption); ok {
			o(&cfg)
		}
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for _, o := range opts {
		if o, ok := o.(serverHook); ok {
			o(srv)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return &testServer{t: t, store: st, srv: srv, addr: l.Addr().String(), tls: clientTLS, caPEM: caPEM, reg: reg}
}

// testWriter sends the server's log to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// entry builds an entry from type/value pairs.
func entry(dn string, pairs ...string) *ldapstore.Entry {
	e := &ldapstore.Entry{DN: dn}
	for i := 0; i+1 < len(pairs); i += 2 {
		e.Set(pairs[i], append(e.Get(pairs[i]), pairs[i+1])...)
	}
	return e
}

// dial opens a go-ldap connection, closed at the end of the test.
func (ts *testServer) dial() *ldap.Conn {
	ts.t.Helper()
	l, err := ldap.DialURL("ldap://" + ts.addr)
	if err != nil {
		ts.t.Fatalf("dial: %v", err)
	}
	l.SetTimeout(10 * time.Second)
	ts.t.Cleanup(func() { l.Close() })
	return l
}

// bind dials and binds as dn with password.
func (ts *testServer) bind(dn, password string) *ldap.Conn {
	ts.t.Helper()
	l := ts.dial()
	if err := l.Bind(dn, password); err != nil {
		ts.t.Fatalf("bind %s: %v", dn, err)
	}
	return l
}

func (ts *testServer) root() *ldap.Conn { return ts.bind(testRootDN, testRootPW) }

// raw opens a plain TCP connection for hand-made messages.
func (ts *testServer) raw() net.Conn {
	ts.t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		ts.t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	ts.t.Cleanup(func() { c.Close() })
	return c
}

// wantCode fails unless err is an LDAP error with code (0: err is nil).
func wantCode(t *testing.T, err error, code uint16) {
	t.Helper()
	if code == 0 {
		if err != nil {
			t.Fatalf("got error %v, want success", err)
		}
		return
	}
	if !ldap.IsErrorWithCode(err, code) {
		t.Fatalf("got %v, want result code %d", err, code)
	}
}

// search runs a search and returns the entries (failing on error).
func search(t *testing.T, l *ldap.Conn, base string, scope int, filter string, attrs ...string) []*ldap.Entry {
	t.Helper()
	res, err := l.Search(ldap.NewSearchRequest(base, scope, ldap.NeverDerefAliases, 0, 0, false, filter, attrs, nil))
	if err != nil {
		t.Fatalf("search %q %s: %v", base, filter, err)
	}
	return res.Entries
}

func dns(es []*ldap.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.DN
	}
	return out
}

func attrNames(e *ldap.Entry) []string {
	var out []string
	for _, a := range e.Attributes {
		out = append(out, a.Name)
	}
	return out
}

// msg encodes an LDAPMessage with messageID id around op.
func msg(id int64, op *ber.Packet, ctrls ...*ber.Packet) []byte {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAPMessage")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "id"))
	p.AppendChild(op)
	if len(ctrls) > 0 {
		cp := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "controls")
		for _, c := range ctrls {
			cp.AppendChild(c)
		}
		p.AppendChild(cp)
	}
	return p.Bytes()
}

// readMessage reads one LDAPMessage from a raw connection and returns its
// messageID and protocolOp.
func readMessage(t *testing.T, r io.Reader) (int64, *ber.Packet) {
	t.Helper()
	p, err := ber.ReadPacket(r)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	if len(p.Children) < 2 {
		t.Fatalf("response has %d elements", len(p.Children))
	}
	id, _ := p.Children[0].Value.(int64)
	return id, p.Children[1]
}

// resultCode returns the resultCode of an LDAPResult-bearing protocolOp.
func resultCode(t *testing.T, op *ber.Packet) int64 {
	t.Helper()
	if len(op.Children) < 3 {
		t.Fatalf("protocolOp tag %d has %d elements", op.Tag, len(op.Children))
	}
	v, _ := op.Children[0].Value.(int64)
	return v
}

func gather(t *testing.T, reg *prometheus.Registry, name string) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				fmt.Fprintf(&b, "%s=%s ", lp.GetName(), lp.GetValue())
			}
			switch {
			case m.GetCounter() != nil:
				fmt.Fprintf(&b, "%g\n", m.GetCounter().GetValue())
			case m.GetGauge() != nil:
				fmt.Fprintf(&b, "%g\n", m.GetGauge().GetValue())
			}
		}
	}
	return b.String()
}
