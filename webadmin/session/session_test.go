package session

import (
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestSessionTimeouts(t *testing.T) {
	c := &clock{time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := NewStore(10*time.Minute, time.Hour, c.now)
	ss := s.Create("192.0.2.1")
	for i := 0; i < 5; i++ { // used every 9 minutes: the idle timeout never strikes
		c.t = c.t.Add(9 * time.Minute)
		if _, ok := s.Get(ss.ID); !ok {
			t.Fatalf("session ended after %d idle-free uses", i)
		}
	}
	c.t = c.t.Add(9 * time.Minute) // 54 min
	if _, ok := s.Get(ss.ID); !ok {
		t.Fatal("session ended before the absolute timeout")
	}
	c.t = c.t.Add(7 * time.Minute) // 61 min: absolute timeout
	if _, ok := s.Get(ss.ID); ok {
		t.Fatal("session outlived its absolute timeout")
	}
	ss = s.Create("192.0.2.1")
	c.t = c.t.Add(10 * time.Minute)
	if _, ok := s.Get(ss.ID); ok {
		t.Fatal("session outlived its idle timeout")
	}
	if s.Len() != 0 {
		t.Fatalf("%d sessions left", s.Len())
	}
	ss = s.Create("x")
	s.Delete(ss.ID)
	if _, ok := s.Get(ss.ID); ok {
		t.Fatal("deleted session still valid")
	}
}

func TestThrottleGrows(t *testing.T) {
	c := &clock{time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	th := NewThrottle(time.Second, time.Minute, c.now)
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	for i, w := range want {
		if got := th.Fail("a"); got != w {
			t.Fatalf("failure %d: delay %s, want %s", i+1, got, w)
		}
		if got := th.Wait("a"); got != w {
			t.Fatalf("failure %d: wait %s, want %s", i+1, got, w)
		}
		if th.Wait("b") != 0 {
			t.Fatal("another IP is throttled")
		}
		c.t = c.t.Add(w)
		if th.Wait("a") != 0 {
			t.Fatalf("still throttled after %s", w)
		}
	}
	for i := 0; i < 20; i++ {
		th.Fail("a")
	}
	if got := th.Wait("a"); got != time.Minute {
		t.Fatalf("cap: %s", got)
	}
	th.Succeed("a")
	if th.Wait("a") != 0 {
		t.Fatal("success did not clear")
	}
}
