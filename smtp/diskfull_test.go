package smtp

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"postern/smtp/queue"
)

const diskFullChild = "POSTERN_DISKFULL_CHILD"

// TestQueueDiskFull fills a real file system under the queue (a 2 MiB
// tmpfs in a mount namespace of the test's own, so nothing outside sees
// it): MAIL answers 452 4.3.1 from statfs before any body is sent, a
// message whose write meets ENOSPC at the end of the data gets 452 4.3.1
// too, the message queued before stays readable and intact across a
// restart, and mail is taken again once space returns (issue 9, item 7).
func TestQueueDiskFull(t *testing.T) {
	if os.Getenv(diskFullChild) == "" {
		runInMountNamespace(t, "TestQueueDiskFull")
		return
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=2m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	defer syscall.Unmount(mnt, syscall.MNT_DETACH)
	qdir := filepath.Join(mnt, "queue")

	dir := newMemDir()
	dir.setDomain("dom.test", "127.0.20.21:1", TLSNone) // nothing listens: mail stays queued
	cfg := fastConfig(t, dir)
	cfg.DataDir = qdir
	cfg.RetryMin, cfg.RetryMax = time.Hour, time.Hour
	cfg.MaxMessageBytes = 256 << 10 // MinFreeBytes 384 KiB
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.20.21:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(l)
	defer g.Close()
	addr := l.Addr().String()

	body := "Subject: fill\r\n\r\n" + strings.Repeat(strings.Repeat("q", 98)+"\r\n", 1000) // 100 kB
	rc, _ := dialRaw(t, addr)
	rc.cmd("EHLO c.test")
	transaction := func(what, want string) {
		t.Helper()
		expectCode(t, what+": MAIL", rc.cmd("MAIL FROM:<a@remote.test>"), "250")
		expectCode(t, what+": RCPT", rc.cmd("RCPT TO:<x@dom.test>"), "250")
		expectCode(t, what+": DATA", rc.cmd("DATA"), "354")
		expectCode(t, what, rc.cmd(body+"."), want)
	}
	transaction("first message", "250 2.0.0 Ok: queued as")
	first := g.q.List()[0]
	firstContent, err := g.q.Content(first.ID)
	if err != nil {
		t.Fatal(err)
	}

	filler, err := os.Create(filepath.Join(mnt, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	fill := func() {
		t.Helper()
		block := make([]byte, 64<<10)
		for {
			if _, err := filler.Write(block); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				return
			}
		}
	}
	fill()
	free, _ := statfsFree(qdir)
	t.Logf("file system filled: %d octets free", free)
	expectCode(t, "MAIL on the full disk", rc.cmd("MAIL FROM:<a@remote.test>"), "452 4.3.1")

	// Room for MAIL and RCPT, then the disk fills during the body.
	st, _ := filler.Stat()
	if err := filler.Truncate(st.Size() - 512<<10); err != nil {
		t.Fatal(err)
	}
	filler.Seek(0, 2)
	expectCode(t, "MAIL with room", rc.cmd("MAIL FROM:<a@remote.test>"), "250")
	expectCode(t, "RCPT with room", rc.cmd("RCPT TO:<x@dom.test>"), "250")
	expectCode(t, "DATA", rc.cmd("DATA"), "354")
	rc.send(body)
	time.Sleep(100 * time.Millisecond)
	fill()
	expectCode(t, "end of data on the full disk", rc.cmd("."), "452 4.3.1")
	if got, err := g.q.Content(first.ID); err != nil || !bytes.Equal(got, firstContent) {
		t.Fatalf("the queued message is unreadable or changed on the full disk: %v", err)
	}

	filler.Close()
	os.Remove(filler.Name())
	transaction("after space returned", "250 2.0.0 Ok: queued as")
	g.Close()

	q, err := queue.Open(queue.Options{Dir: qdir})
	if err != nil {
		t.Fatalf("reopening the queue: %v", err)
	}
	defer q.Close()
	msgs := q.List()
	if len(msgs) != 2 || msgs[0].ID != first.ID {
		t.Fatalf("after restart the queue holds %d messages, want the first and the last", len(msgs))
	}
	for _, m := range msgs {
		c, err := q.Content(m.ID)
		if err != nil || !bytes.Equal(stripReceivedBytes(c), stripReceivedBytes(firstContent)) {
			t.Fatalf("message %s content damaged: %v", m.ID, err)
		}
	}
	q.Remove(context.Background(), first.ID)
}

// stripReceivedBytes drops the first header field (our Received) of a
// queued message.
func stripReceivedBytes(b []byte) []byte {
	i := bytes.Index(b, []byte("\r\nSubject: "))
	if i < 0 {
		return b
	}
	return b[i+2:]
}

// runInMountNamespace runs test name again in a child process in a new
// mount namespace (unshare -m; with -r when not root), so that the mounts
// it makes vanish with it and are never seen by the machine.
func runInMountNamespace(t *testing.T, name string) {
	t.Helper()
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatalf("unshare (util-linux) is required: %v", err)
	}
	args := []string{"-m", "--propagation", "private"}
	if os.Geteuid() != 0 {
		args = append([]string{"-r"}, args...)
	}
	args = append(args, os.Args[0], "-test.run=^"+name+"$", "-test.v", "-test.count=1", "-test.timeout=2m")
	cmd := exec.Command(unshare, args...)
	cmd.Env = append(os.Environ(), diskFullChild+"=1")
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		t.Log(line)
	}
	if err != nil && os.Geteuid() != 0 && bytes.Contains(out, []byte("unshare failed")) {
		t.Fatal("no user namespaces for a non-root test here: run it as root, as make test does")
	}
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+name)) {
		t.Fatalf("%s in its mount namespace: %v", name, err)
	}
}
