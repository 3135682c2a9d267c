// Package testnet gives tests loopback addresses. It is imported by tests
// only.
package testnet

import (
	"net"
	"sync"
	"testing"
)

// handedOut holds every address FreePort returned in this test binary.
var handedOut = struct {
	sync.Mutex
	m map[string]bool
}{m: map[string]bool{}}

// FreePort returns a TCP address on ip (a loopback address) that nothing
// listens on now and that FreePort never returned before in this process.
// The kernel may give the port it just gave back to the next bind: an
// appliance's six listeners, or a server and its sink, were then handed the
// same address and the second bind failed ("address already in use").
func FreePort(t testing.TB, ip string) string {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 1000 {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatalf("free port on %s: %v", ip, err)
		}
		a := l.Addr().String()
		l.Close()
		if !handedOut.m[a] {
			handedOut.m[a] = true
			return a
		}
	}
	t.Fatalf("no fresh port on %s", ip)
	return ""
}
