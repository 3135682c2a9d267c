package queue

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func open(t *testing.T, dir string, seg int64) *Queue {
	t.Helper()
	q, err := Open(Options{Dir: dir, SegmentBytes: seg})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func put(t *testing.T, q *Queue, nrcpt int, content []byte) string {
	t.Helper()
	m := &Message{ID: q.NewID(), Arrival: time.Now(), From: "a@example.org"}
	for i := range nrcpt {
		m.Recipients = append(m.Recipients, Recipient{Addr: fmt.Sprintf("r%d@example.com", i)})
	}
	if err := q.Put(context.Background(), m, content); err != nil {
		t.Fatal(err)
	}
	return m.ID
}

func TestPutUpdateReplay(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	q := open(t, dir, 0)
	id1 := put(t, q, 3, []byte("Subject: one\r\n\r\nbody\r\n"))
	id2 := put(t, q, 1, []byte("Subject: two\r\n\r\n"))
	if err := q.Update(ctx, id1, RecipientUpdate{0, Recipient{Addr: "r0@example.com", Status: Delivered}},
		RecipientUpdate{1, Recipient{Addr: "r1@example.com", Status: Deferred, Attempts: 1, Diagnostic: "451 4.3.0 later"}}); err != nil {
		t.Fatal(err)
	}
	if err := q.Update(ctx, id2, RecipientUpdate{0, Recipient{Addr: "r0@example.com", Status: Delivered}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := q.Get(id2); ok {
		t.Fatal("fully delivered message still queued")
	}
	if err := q.Update(ctx, id2, RecipientUpdate{0, Recipient{}}); err != ErrNotFound {
		t.Fatalf("update of removed message: %v", err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	q = open(t, dir, 0)
	defer q.Close()
	if q.Len() != 1 {
		t.Fatalf("after reopen: %d messages, want 1", q.Len())
	}
	m, ok := q.Get(id1)
	if !ok {
		t.Fatal("message lost on reopen")
	}
	want := []Status{Delivered, Deferred, Queued}
	for i, r := range m.Recipients {
		if r.Status != want[i] {
			t.Errorf("recipient %d: %v, want %v", i, r.Status, want[i])
		}
	}
	if m.Recipients[1].Diagnostic != "451 4.3.0 later" || m.Recipients[1].Attempts != 1 {
		t.Errorf("recipient state not replayed: %+v", m.Recipients[1])
	}
	c, err := q.Content(id1)
	if err != nil || string(c) != "Subject: one\r\n\r\nbody\r\n" {
		t.Fatalf("content %q, %v", c, err)
	}
	if err := q.Remove(ctx, id1); err != nil {
		t.Fatal(err)
	}
	if q.Len() != 0 {
		t.Fatal("remove left the message")
	}
}

func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	q := open(t, dir, 0)
	id := put(t, q, 1, []byte("hello\r\n"))
	q.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	// The message is in the first segment; append garbage (a torn write)
	// to the last one.
	last := segs[len(segs)-1]
	f, _ := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{200, 0, 0, 0, 1, 2, 3, 4, recMessage, 9, 9})
	f.Close()
	q = open(t, dir, 0)
	defer q.Close()
	if _, ok := q.Get(id); !ok {
		t.Fatal("message lost after torn tail")
	}
	put(t, q, 1, []byte("after\r\n"))
	if q.Len() != 2 {
		t.Fatalf("len %d", q.Len())
	}
}

func TestSegmentsCollectedAndCompacted(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	q := open(t, dir, 4096)
	body := bytes.Repeat([]byte("x"), 1000)
	pinned := put(t, q, 1, body)
	var ids []string
	for range 50 {
		ids = append(ids, put(t, q, 1, body))
	}
	for _, id := range ids {
		if err := q.Update(ctx, id, RecipientUpdate{0, Recipient{Status: Delivered}}); err != nil {
			t.Fatal(err)
		}
	}
	// Force more rotations so the pinned message gets copied forward.
	for range 10 {
		id := put(t, q, 1, body)
		q.Update(ctx, id, RecipientUpdate{0, Recipient{Status: Bounced}})
	}
	if n := q.Segments(); n > 3 {
		t.Fatalf("%d segments left, want them collected", n)
	}
	q.Close()
	q = open(t, dir, 4096)
	defer q.Close()
	if q.Len() != 1 {
		t.Fatalf("len %d, want the pinned message only", q.Len())
	}
	c, err := q.Content(pinned)
	if err != nil || !bytes.Equal(c, body) {
		t.Fatalf("pinned content after compaction: %v", err)
	}
}

func TestConcurrentPutsShareFsyncs(t *testing.T) {
	q := open(t, t.TempDir(), 0)
	defer q.Close()
	var wg sync.WaitGroup
	for g := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				m := &Message{ID: q.NewID(), From: fmt.Sprint(g), Recipients: []Recipient{{Addr: "x@y"}}}
				if err := q.Put(context.Background(), m, []byte("data")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if q.Len() != 1000 {
		t.Fatalf("len %d", q.Len())
	}
}

// TestDeliveredTextLeavesTheDisk: within about retireEvery of a message's
// delivery its text is in none of the queue's files, also while other
// messages wait (they are copied into a new segment); the queue keeps
// working and replays exactly what is live.
func TestDeliveredTextLeavesTheDisk(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	q := open(t, dir, 0)
	defer func() { q.Close() }()
	waiting := put(t, q, 1, []byte("Subject: deferred\r\n\r\nstill waiting for its host\r\n"))
	id := put(t, q, 1, []byte("Subject: salaries\r\n\r\nthe secret figures\r\n"))
	held := func(text string) bool {
		files, _ := os.ReadDir(dir)
		for _, f := range files {
			b, _ := os.ReadFile(filepath.Join(dir, f.Name()))
			if bytes.Contains(b, []byte(text)) {
				return true
			}
		}
		return false
	}
	if !held("the secret figures") {
		t.Fatal("the queued message is not on disk")
	}
	if err := q.Update(ctx, id, RecipientUpdate{0, Recipient{Addr: "r0@example.com", Status: Delivered}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * retireEvery)
	for held("the secret figures") {
		if time.Now().After(deadline) {
			t.Fatalf("the delivered message's text is still in the queue's files %s after delivery", 3*retireEvery)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !held("still waiting for its host") {
		t.Fatal("the waiting message's text left the disk")
	}
	id2 := put(t, q, 1, []byte("Subject: next\r\n\r\nstill works\r\n"))
	q.Close()
	q = open(t, dir, 0)
	for _, want := range []string{waiting, id2} {
		if _, ok := q.Get(want); !ok {
			t.Fatalf("%s lost after retirement and replay", want)
		}
	}
	if c, err := q.Content(waiting); err != nil || !bytes.Contains(c, []byte("still waiting for its host")) {
		t.Fatalf("the waiting message's content after replay: %q %v", c, err)
	}
	if q.Len() != 2 {
		t.Fatalf("after retirement and replay: %d messages, want 2", q.Len())
	}
}

// TestUpdateWritten: a result recorded without waiting for fdatasync is
// applied at once and is in the segment file when the call returns (a
// process that dies then, kill -9, keeps it: the page cache holds it), and
// the next synced record makes it durable along with its own.
func TestUpdateWritten(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	q := open(t, dir, 0)
	defer q.Close()
	id1 := put(t, q, 1, []byte("Subject: one\r\n\r\n"))
	id2 := put(t, q, 2, []byte("Subject: two\r\n\r\n"))
	if err := q.UpdateWritten(ctx, id1, RecipientUpdate{0, Recipient{Addr: "r0@example.com", Status: Delivered}}); err != nil {
		t.Fatal(err)
	}
	if err := q.UpdateWritten(ctx, id2, RecipientUpdate{1, Recipient{Addr: "r1@example.com", Status: Deferred, Attempts: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := q.Get(id1); ok {
		t.Fatal("delivered message still queued")
	}
	if m, _ := q.Get(id2); m.Recipients[1].Status != Deferred {
		t.Fatalf("update not applied: %+v", m.Recipients[1])
	}
	mem, err1 := q.ContentShared(id2)
	disk, err2 := q.Content(id2)
	if err1 != nil || err2 != nil || string(mem) != "Subject: two\r\n\r\n" || string(disk) != string(mem) {
		t.Fatalf("content in memory %q (%v), on disk %q (%v)", mem, err1, disk, err2)
	}
	q.mu.RLock()
	head := q.segs[len(q.segs)-1]
	dirty := head.dirty
	q.mu.RUnlock()
	if !dirty {
		t.Fatal("head not marked as holding unsynced records")
	}
	// What a restart after kill -9 replays: the files as they are now.
	copyDir := t.TempDir()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(copyDir, e.Name()), b, 0o600)
	}
	r := open(t, copyDir, 0)
	if r.Len() != 1 {
		t.Fatalf("replay after a crash has %d messages, want 1", r.Len())
	}
	if m, _ := r.Get(id2); m.Recipients[1].Status != Deferred || m.Recipients[1].Attempts != 1 {
		t.Fatalf("replayed recipient: %+v", m.Recipients[1])
	}
	r.Close()
	// A synced record syncs the segment, the written ones with it.
	put(t, q, 1, []byte("Subject: three\r\n\r\n"))
	q.mu.RLock()
	dirty = head.dirty
	q.mu.RUnlock()
	if dirty {
		t.Fatal("head still marked unsynced after a Put")
	}
}
