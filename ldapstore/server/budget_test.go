package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"postern/ldapstore"
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

// TestPagedSearchHeldBounded (issue 9, item 10, the neighbour in paged
// searches): the rest of a paged search's result set is charged to the
// server's result budget; a client that opens paged searches and never
// asks for their next pages gets adminLimitExceeded once the budget is
// spent instead of holding memory without bound, and the budget comes
// back when its connection closes.
func TestPagedSearchHeldBounded(t *testing.T) {
	// room for two chunks of remembered entries
	ts := newTestServer(t, testOption(func(c *Config) { c.MaxResultBuffer = 2*pendingChunk*pendingSize + 1 }))
	var batch []*ldapstore.Entry
	for i := range 2500 {
		uid := fmt.Sprintf("pg%04d", i)
		batch = append(batch, entry("uid="+uid+",ou=people,"+testSuffix, "objectClass", "inetOrgPerson", "uid", uid, "cn", uid, "sn", uid))
	}
	if err := ts.store.AddBatch(context.Background(), batch, testRootDN); err != nil {
		t.Fatal(err)
	}
	l := ts.root()
	page := func() error {
		ctrl := ldap.NewControlPaging(1)
		_, err := l.Search(ldap.NewSearchRequest("ou=people,"+testSuffix, ldap.ScopeSingleLevel, 0, 0, 0, false, "(objectClass=*)", []string{"1.1"}, []ldap.Control{ctrl}))
		return err
	}
	var err error
	for i := 0; i < 16 && err == nil; i++ {
		err = page()
	}
	wantCode(t, err, ldap.LDAPResultAdminLimitExceeded)
	if held := ts.srv.paged.held(); held > ts.srv.cfg.MaxResultBuffer {
		t.Fatalf("held %d over the budget %d", held, ts.srv.cfg.MaxResultBuffer)
	}
	l.Close()
	for i := 0; ts.srv.paged.held() != 0; i++ {
		if i == 100 {
			t.Fatalf("%d octets still held after the connection closed", ts.srv.paged.held())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// and paged searches work again
	l = ts.root()
	res, err := l.SearchWithPaging(ldap.NewSearchRequest("ou=people,"+testSuffix, ldap.ScopeSingleLevel, 0, 0, 0, false, "(objectClass=*)", []string{"1.1"}, nil), 500)
	if err != nil || len(res.Entries) != 2502 {
		t.Fatalf("paged search after: %v, %d entries", err, len(res.Entries))
	}
	if held := ts.srv.paged.held(); held != 0 {
		t.Fatalf("%d octets held after a complete paged search", held)
	}
}
