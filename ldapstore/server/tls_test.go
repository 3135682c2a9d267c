package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// testCertificates makes a self-signed certificate for 127.0.0.1 and
// returns the server's TLS configuration, a client's that trusts it and the
// certificate in PEM.
func testCertificates(t testing.TB) (*tls.Config, *tls.Config, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "postern test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}}
	client := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	return server, client, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestStartTLS(t *testing.T) {
	ts := newTestServer(t)
	l := ts.dial()
	if err := l.StartTLS(ts.tls); err != nil {
		t.Fatalf("StartTLS: %v", err)
	}
	if st, ok := l.TLSConnectionState(); !ok || st.Version < tls.VersionTLS12 {
		t.Fatalf("TLS state %v %v", ok, st.Version)
	}
	if err := l.Bind(testRootDN, testRootPW); err != nil {
		t.Fatalf("bind over TLS: %v", err)
	}
	if es := search(t, l, testSuffix, ldap.ScopeBaseObject, "(objectClass=*)"); len(es) != 1 {
		t.Fatalf("search over TLS: %d entries", len(es))
	}
	// RFC 4511 §4.14.1: StartTLS on a TLS layer is refused with
	// operationsError (go-ldap refuses client-side, so send it by hand).
	_, err := l.Extended(ldap.NewExtendedRequest(OIDStartTLS, nil))
	wantCode(t, err, ldap.LDAPResultOperationsError)
	// The connection still works.
	if es := search(t, l, testSuffix, ldap.ScopeBaseObject, "(objectClass=*)"); len(es) != 1 {
		t.Fatalf("search after refused StartTLS: %d entries", len(es))
	}
}

func TestStartTLSWithOutstandingOperation(t *testing.T) {
	ts := newTestServer(t)
	started := make(chan struct{})
	ts.srv.HandleSearchControl(testHandlerOID, SearchHandlerFunc(func(ctx context.Context, req *SearchRequest, w SearchWriter) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}))
	l := ts.root()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := ldap.NewSearchRequest(testSuffix, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", nil,
		[]ldap.Control{ldap.NewControlString(testHandlerOID, true, "")})
	l.SearchAsync(ctx, req, 1)
	<-started
	_, err := l.Extended(ldap.NewExtendedRequest(OIDStartTLS, nil))
	wantCode(t, err, ldap.LDAPResultOperationsError)
}

func TestStartTLSUnconfigured(t *testing.T) {
	ts := newTestServer(t, testOption(func(c *Config) { c.TLSConfig = nil }))
	l := ts.dial()
	_, err := l.Extended(ldap.NewExtendedRequest(OIDStartTLS, nil))
	wantCode(t, err, ldap.LDAPResultUnavailable)
	root := search(t, l, "", ldap.ScopeBaseObject, "(objectClass=*)", "supportedExtension")
	for _, v := range root[0].GetAttributeValues("supportedExtension") {
		if v == OIDStartTLS {
			t.Fatal("StartTLS advertised without a TLS configuration")
		}
	}
}

func TestLDAPS(t *testing.T) {
	ts := newTestServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ts.srv.ServeTLS(l)
	c, err := ldap.DialURL("ldaps://"+l.Addr().String(), ldap.DialWithTLSConfig(ts.tls))
	if err != nil {
		t.Fatalf("ldaps dial: %v", err)
	}
	defer c.Close()
	if err := c.Bind(testUserDN, testUserPW); err != nil {
		t.Fatalf("bind over LDAPS: %v", err)
	}
	res, err := c.WhoAmI(nil)
	if err != nil || res.AuthzID != "dn:"+testUserDN {
		t.Fatalf("WhoAmI over LDAPS: %+v %v", res, err)
	}
	// StartTLS on LDAPS is a sequencing error.
	_, err = c.Extended(ldap.NewExtendedRequest(OIDStartTLS, nil))
	wantCode(t, err, ldap.LDAPResultOperationsError)

	// TLS 1.2 is the minimum.
	old := ts.tls.Clone()
	old.MaxVersion = tls.VersionTLS11
	old.MinVersion = tls.VersionTLS10
	if c, err := tls.Dial("tcp", l.Addr().String(), old); err == nil {
		c.Close()
		t.Fatal("TLS 1.1 handshake succeeded")
	}
}
