package testnet

import "testing"

// TestFreePortNeverRepeats: many addresses in a row are all distinct.
func TestFreePortNeverRepeats(t *testing.T) {
	seen := map[string]bool{}
	for range 500 {
		a := FreePort(t, "127.0.0.201")
		if seen[a] {
			t.Fatalf("%s handed out twice", a)
		}
		seen[a] = true
	}
}
