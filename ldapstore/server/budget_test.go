package server

import (
	"context"
	"testing"
	"time"
)

// TestBudget: acquire waits while the budget is spent, in order, gives up
// with its context, and grants a request larger than the budget when
// nothing else is held.
func TestBudget(t *testing.T) {
	b := newBudget(100)
	ctx := context.Background()
	if err := b.acquire(ctx, 60); err != nil {
		t.Fatal(err)
	}
	got := make(chan int64, 2)
	go func() { b.acquire(ctx, 50); got <- 50 }()
	for i := 0; ; i++ { // until it waits
		b.mu.Lock()
		n := len(b.waiters)
		b.mu.Unlock()
		if n == 1 {
			break
		}
		if i == 1000 {
			t.Fatal("the second request never waited")
		}
		time.Sleep(time.Millisecond)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := b.acquire(short, 10); err == nil {
		t.Fatal("a request queued behind a waiter was granted out of order")
	}
	select {
	case <-got:
		t.Fatal("granted over the budget")
	case <-time.After(50 * time.Millisecond):
	}
	b.release(60)
	if n := <-got; n != 50 || b.held() != 50 {
		t.Fatalf("held %d after release", b.held())
	}
	b.release(50)
	if err := b.acquire(ctx, 1000); err != nil || b.held() != 1000 {
		t.Fatalf("oversized request alone: %v, held %d", err, b.held())
	}
	b.release(1000)
	if b.held() != 0 {
		t.Fatalf("held %d", b.held())
	}
}
