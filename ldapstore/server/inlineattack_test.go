package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"

	"postern/ldapstore"
)

// addPeople adds n users under ou=people, so that a subtree search returns
// more than inlineEntries entries and hands reading over mid-search.
func addPeople(t *testing.T, ts *testServer, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		e := entry(fmt.Sprintf("uid=p%03d,ou=people,%s", i, testSuffix), "objectClass", "inetOrgPerson",
			"uid", fmt.Sprintf("p%03d", i), "cn", "P", "sn", "P", "description", fmt.Sprintf("%0200d", i))
		if err := ts.store.Add(context.Background(), e, testRootDN); err != nil {
			t.Fatal(err)
		}
	}
}

func abandonOp(id int64) *ber.Packet {
	return ber.NewInteger(ber.ClassApplication, ber.TypePrimitive, 16, id, "abandon")
}

func unbindOp() *ber.Packet {
	return ber.Encode(ber.ClassApplication, ber.TypePrimitive, 2, nil, "unbind")
}

// readUntilDone reads messages until the SearchResultDone of id; it
// returns the entries seen for id, or -1 when the connection ended first.
func readUntilDone(r io.Reader, id int64) int {
	n := 0
	for {
		got, op := readMessageNoFail(r)
		if op == nil {
			return -1
		}
		if got == id && op.Tag == appSearchEntry {
			n++
		}
		if got == id && op.Tag == appSearchDone {
			return n
		}
	}
}

// waitClosed reports whether the server closed c within d.
func waitClosed(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	return err == nil // EOF: closed by the server; a timeout is an error
}

// TestInlineAttacks: a synchronous client's operation runs in the reading
// goroutine (conn.inline). Whatever the client sends meanwhile, pipelined
// requests, an abandon or an unbind during a long search, StartTLS or a
// bind racing it, or nothing at all while it never reads, every request
// gets its answer or the connection ends, and when the clients are gone
// no goroutine is left behind.
func TestInlineAttacks(t *testing.T) {
	ts := newTestServer(t, testOption(func(c *Config) { c.MaxInFlight = 4 }))
	addPeople(t, ts, 120)
	const people = 123 // with alice, bob and ou=people itself
	base := "ou=people," + testSuffix
	time.Sleep(100 * time.Millisecond)
	before := runtime.NumGoroutine()

	bound := func(t *testing.T) (net.Conn, *bufio.Reader) {
		c := ts.raw()
		r := bufio.NewReader(c)
		c.Write(msg(1, bindOp(testRootDN, testRootPW)))
		if _, op := readMessage(t, r); resultCode(t, op) != 0 {
			t.Fatal("bind failed")
		}
		return c, r
	}
	t.Run("pipelined", func(t *testing.T) {
		c, r := bound(t)
		var b []byte
		for id := int64(2); id < 8; id++ {
			b = append(b, msg(id, searchOp(base, "objectClass"))...)
		}
		c.Write(b)
		got := map[int64]int{}
		for len(got) < 6 {
			id, op := readMessage(t, r)
			if op.Tag == appSearchEntry {
				got[-id]++
			}
			if op.Tag == appSearchDone {
				if code := resultCode(t, op); code != 0 && code != int64(ldapstore.Busy) {
					t.Fatalf("search %d: result %d", id, code)
				}
				got[id] = got[-id]
				if resultCode(t, op) == 0 && got[-id] != people {
					t.Fatalf("search %d: %d entries, want %d", id, got[-id], people)
				}
				delete(got, -id)
			}
		}
		c.Close()
	})
	t.Run("sequential after a moved search", func(t *testing.T) {
		c, r := bound(t)
		for id := int64(2); id < 12; id++ {
			c.Write(msg(id, searchOp(base, "objectClass")))
			if n := readUntilDone(r, id); n != people {
				t.Fatalf("search %d: %d entries", id, n)
			}
		}
		c.Close()
	})
	t.Run("abandon during an inline search", func(t *testing.T) {
		for i := 0; i < 20; i++ {
			c, r := bound(t)
			c.Write(msg(2, searchOp(base, "objectClass")))
			if i%2 == 1 {
				time.Sleep(time.Millisecond)
			}
			c.Write(msg(3, abandonOp(2)))
			c.Write(msg(4, searchOp(testSuffix, "dc")))
			// the abandoned search may end early without a result
			// (RFC 4511 §4.11); search 4 is answered whatever happens.
			for {
				id, op := readMessage(t, r)
				if id == 4 && op.Tag == appSearchDone {
					break
				}
			}
			c.Close()
		}
	})
	t.Run("unbind during an inline search", func(t *testing.T) {
		for i := 0; i < 20; i++ {
			c, _ := bound(t)
			c.Write(msg(2, searchOp(base, "objectClass")))
			c.Write(msg(3, unbindOp()))
			if !waitClosed(c, 5*time.Second) {
				t.Fatal("the connection stays open after an unbind")
			}
		}
	})
	t.Run("StartTLS and bind racing an inline search", func(t *testing.T) {
		for i := 0; i < 20; i++ {
			c, r := bound(t)
			c.Write(msg(2, searchOp(base, "objectClass")))
			if i%2 == 0 {
				c.Write(msg(3, extendedOp(OIDStartTLS)))
			} else {
				c.Write(msg(3, bindOp(testUserDN, testUserPW)))
			}
			seen2, seen3, tls := false, false, false
			for !(seen2 && seen3) {
				id, op := readMessage(t, r)
				switch {
				case id == 2 && op.Tag == appSearchDone:
					seen2 = true
				case id == 3:
					seen3 = true
					tls = op.Tag == appExtendedResponse && resultCode(t, op) == 0
				}
				if tls {
					break // the search ended first; TLS begins now
				}
			}
			c.Close()
		}
	})
	t.Run("client that never reads", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", ts.addr)
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				c.Write(msg(1, bindOp(testRootDN, testRootPW)))
				for id := int64(2); id < 40; id++ {
					c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
					if _, err := c.Write(msg(id, searchOp(base, "objectClass"))); err != nil {
						return
					}
				}
				time.Sleep(300 * time.Millisecond)
			}()
		}
		wg.Wait()
	})
	// every connection above is closed: the server's goroutines for them end
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before+1 {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines, %d before the clients:\n%s", n, before, buf)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
