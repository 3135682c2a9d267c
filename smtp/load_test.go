package smtp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				return filepath.Join(dir, name)
			}
		}
		t.Fatalf("%s is required for this test (Postfix / swaks packages): %v", name, err)
	}
	return p
}

// startSMTPSink runs Postfix's smtp-sink on a loopback port, dumping every
// transaction into one file; it returns the address and a counter.
func startSMTPSink(t *testing.T) (addr string, count func() int) {
	bin := needTool(t, "smtp-sink")
	dumpDir, err := os.MkdirTemp("", "postern-smtp-sink")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dumpDir) })
	os.Chmod(dumpDir, 0o777) // smtp-sink drops privileges (-u) before writing
	dump := filepath.Join(dumpDir, "dump")
	addr = freeAddr(t)
	args := []string{"-D", dump, addr, "256"}
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "postfix"}, args...)
	}
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	waitUntil(t, "smtp-sink to listen", 5*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr, func() int {
		b, _ := os.ReadFile(dump)
		return bytes.Count(b, []byte("\nX-Mail-Args: ")) + bytes.Count(b[:min(len(b), 15)], []byte("X-Mail-Args: "))
	}
}

// TestSMTPSourceLoad: Postfix's smtp-source sends 2,000 messages in 20
// sessions through the gateway to smtp-sink (all must arrive), and 2,000
// to a Go sink that checks every body byte for byte.
func TestSMTPSourceLoad(t *testing.T) {
	source := needTool(t, "smtp-source")
	sinkAddr, sinkCount := startSMTPSink(t)
	gosink := startSink(t, sinkOpts{})
	dir := newMemDir()
	dir.setDomain("sink.test", sinkAddr, TLSMay)
	dir.setDomain("gosink.test", gosink.addr, TLSMay)
	gw := startGateway(t, fastConfig(t, dir))

	// smtp-source -F sends the file's lines with CRLF and dot-stuffing.
	lines := []string{"From: <load@remote.test>", "To: <r@gosink.test>", "Subject: load", "", "line one",
		".a line that starts with a dot", "..two dots", strings.Repeat("0123456789", 90), "8bit: \xc3\xa9t\xc3\xa9", "last"}
	file := filepath.Join(t.TempDir(), "msg.txt")
	os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
	const n = 2000
	run := func(to, rcpt string, count int, extra ...string) {
		args := append([]string{"-s", "20", "-m", fmt.Sprint(count), "-f", "load@remote.test", "-t", rcpt, "-M", "client.test"}, extra...)
		args = append(args, to)
		out, err := exec.Command(source, args...).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Fatalf("smtp-source: %v\n%s", err, out)
		}
	}
	// The reference: what smtp-source sends when it talks to a sink directly.
	ref := startSink(t, sinkOpts{})
	run(ref.addr, "r@gosink.test", 1, "-F", file)
	want := ref.waitFor(t, 1, 10*time.Second)[0].Data
	if !bytes.HasPrefix(want, []byte(strings.Join(lines, "\r\n"))) {
		t.Fatalf("smtp-source sent %q", want)
	}

	start := time.Now()
	run(gw.addr, "r@gosink.test", n, "-F", file)
	got := gosink.waitFor(t, n, 60*time.Second)
	t.Logf("%d messages smtp-source → gateway → Go sink in %v", n, time.Since(start))
	for i, m := range got {
		if b := stripReceived(t, m.Data); !bytes.Equal(b, want) {
			t.Fatalf("message %d differs:\n got %q\nwant %q", i, b, want)
		}
	}

	start = time.Now()
	run(gw.addr, "r@sink.test", n, "-l", "10240")
	waitUntil(t, "2000 messages at smtp-sink", 60*time.Second, func() bool { return sinkCount() >= n })
	t.Logf("%d messages smtp-source → gateway → smtp-sink in %v", n, time.Since(start))
	if c := sinkCount(); c != n {
		t.Fatalf("smtp-sink counted %d, want %d", c, n)
	}
	if v := metricValue(t, gw.reg, "postern_smtp_messages_received_total"); v != 2*n {
		t.Fatalf("received_total %v", v)
	}
	waitUntil(t, "empty queue", 10*time.Second, func() bool { return gw.q.Len() == 0 })
}

const childEnv = "POSTERN_SMTP_TEST_CHILD"

// TestMain lets the test binary act as a minimal gateway process for the
// kill -9 test.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		runChildGateway()
		return
	}
	os.Exit(m.Run())
}

// runChildGateway serves until killed: data dir, listen address and sink
// from the environment; prints "ready" once serving.
func runChildGateway() {
	dir := newMemDir()
	dir.setDomain("kill.test", os.Getenv("SINK"), TLSNone)
	g, err := New(Config{
		Hostname:      "child.postern.test",
		DataDir:       os.Getenv("DATA"),
		Directory:     dir,
		RetryMin:      200 * time.Millisecond,
		RetryMax:      time.Second,
		ConnCacheTime: 100 * time.Millisecond,
	})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	l, err := net.Listen("tcp", os.Getenv("ADDR"))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	go g.Serve(l)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	g.Close()
}

func startChild(t *testing.T, data, addr, sink string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", "DATA="+data, "ADDR="+addr, "SINK="+sink)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line
		io.Copy(io.Discard, out)
	}()
	select {
	case l := <-ready:
		if !strings.HasPrefix(l, "ready") {
			t.Fatalf("child: %q", l)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("child did not start")
	}
	return cmd
}

var msgIDRe = regexp.MustCompile(`(?m)^Message-ID: <([^>]+)>`)

// TestKill9DuringLoad: a gateway process is killed with SIGKILL in the
// middle of a 5,000-message load and restarted on the same queue; every
// message that got a 250 must reach the sink (at least once).
func TestKill9DuringLoad(t *testing.T) {
	sink := startSink(t, sinkOpts{})
	data := t.TempDir()
	addr := freeAddr(t)
	child := startChild(t, data, addr, sink.addr)
	defer func() {
		child.Process.Kill()
		child.Wait()
	}()

	const total, senders = 5000, 10
	var mu sync.Mutex
	acked := map[string]bool{}
	var next int
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := gosmtp.Dial(addr)
			if err != nil {
				return
			}
			defer c.Close()
			if c.Hello("load.test") != nil {
				return
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				if next >= total {
					mu.Unlock()
					return
				}
				id := fmt.Sprintf("k%d@load.test", next)
				next++
				mu.Unlock()
				body := "Message-ID: <" + id + ">\r\nSubject: kill test\r\n\r\n" + strings.Repeat("payload line\r\n", 40)
				if c.Mail("load@remote.test", nil) != nil || c.Rcpt("r@kill.test", nil) != nil {
					return
				}
				w, err := c.Data()
				if err != nil {
					return
				}
				io.WriteString(w, body)
				if _, err := w.CloseWithResponse(); err != nil {
					return // no 250: the message may or may not arrive
				}
				mu.Lock()
				acked[id] = true
				mu.Unlock()
			}
		}()
	}
	// Kill once a good part of the load is acknowledged.
	waitUntil(t, "1500 acknowledged messages", 60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 1500
	})
	child.Process.Signal(syscall.SIGKILL)
	child.Wait()
	close(stop)
	wg.Wait()
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	t.Logf("killed after %d acknowledged messages (%d at the sink)", n, sink.count())

	child = startChild(t, data, addr, sink.addr)
	deadline := time.Now().Add(90 * time.Second)
	for {
		seen := map[string]bool{}
		for _, m := range sink.messages() {
			if mm := msgIDRe.FindSubmatch(m.Data); mm != nil {
				seen[string(mm[1])] = true
			}
		}
		missing := 0
		for id := range acked {
			if !seen[id] {
				missing++
			}
		}
		if missing == 0 {
			t.Logf("all %d acknowledged messages arrived (%d deliveries, duplicates allowed)", n, sink.count())
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged messages never arrived", missing, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	child.Process.Signal(syscall.SIGTERM)
	child.Wait()
}
