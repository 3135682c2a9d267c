package cluster

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestServeSNTP: beevik/ntp (the client the agent measures with) accepts
// the answer and measures the offset of a clock set ahead.
func TestServeSNTP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeSNTP(ctx, pc, func() time.Time { return time.Now().Add(3 * time.Second) }) }()
	off, err := queryNTP(pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	if off < 2900*time.Millisecond || off > 3100*time.Millisecond {
		t.Fatalf("offset %s, want about 3s", off)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
