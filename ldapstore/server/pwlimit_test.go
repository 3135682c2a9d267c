package server

import (
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"postern/ldapstore"
)

// TestPasswordChecksBounded floods the server with concurrent binds with a
// wrong password from one address and from many: every bind gets its
// answer (invalidCredentials), and no more password hashes run at once
// than the limits allow, so a flood of binds cannot exhaust memory.
func TestPasswordChecksBounded(t *testing.T) {
	ts := newTestServer(t, testOption(func(c *Config) { c.MaxPasswordChecks = 3 }))
	flood := func(n int, local func(i int) string) {
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local(i))}}
				l, err := ldap.DialURL("ldap://"+ts.addr, ldap.DialWithDialer(d))
				if err != nil {
					errs <- err
					return
				}
				defer l.Close()
				err = l.Bind(testRootDN, "wrong")
				if !ldap.IsErrorWithCode(err, uint16(ldapstore.InvalidCredentials)) {
					errs <- fmt.Errorf("bind %d: %v, want invalidCredentials", i, err)
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
	flood(40, func(int) string { return "127.0.0.1" })
	if p := ts.srv.pw.peak.Load(); p > MaxPasswordChecksPerIP {
		t.Fatalf("%d password checks ran at once for one address, limit %d", p, MaxPasswordChecksPerIP)
	}
	flood(40, func(i int) string { return fmt.Sprintf("127.0.1.%d", i+1) })
	if p := ts.srv.pw.peak.Load(); p > 3 || p < 2 {
		t.Fatalf("%d password checks ran at once, want the limit 3 reached and kept", p)
	}
	if n := len(ts.srv.pw.ips); n != 0 {
		t.Fatalf("%d per-address slots left after the flood", n)
	}
}
