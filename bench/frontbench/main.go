// Command frontbench measures a cluster frontend against its backend
// (issue 13's benchmark), with the built postern binary as processes:
//
//   - change visibility: a domain added over LDAP on the backend, until the
//     frontend's SMTP gateway accepts a recipient of it (polled on one
//     session with RSET, MAIL, RCPT); p50 and p99 over -changes changes
//     (target p99 <= 2 s, aim <= 100 ms);
//   - SMTP throughput: Postfix's smtp-source into the backend, then into the
//     frontend, each delivering to smtp-sink, timed until smtp-sink has
//     counted every message (the SMTP bench's load); the ratio
//     frontend/backend (target >= 0.8).
//
// Everything listens on 127.0.1.0/24 and every process started here is
// stopped on exit. Output: one "measure=... key=value" line per figure.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-ldap/ldap/v3"
)

var (
	bin      = flag.String("postern", "bin/postern", "the postern binary")
	dir      = flag.String("dir", "", "work directory (required)")
	changes  = flag.Int("changes", 100, "changes measured for visibility")
	messages = flag.Int("n", 10000, "messages per throughput run")
	size     = flag.Int("size", 10240, "message size in bytes")
	sessions = flag.Int("sessions", 20, "parallel SMTP sessions")
	timeout  = flag.Duration("timeout", 10*time.Minute, "bound of each throughput run")
)

const (
	backendIP  = "127.0.1.1"
	frontendIP = "127.0.1.2"
	sinkIP     = "127.0.1.3"
	adminPW    = "bench-admin-pw"
	suffix     = "dc=postern,dc=local"
)

var procs []*exec.Cmd

func main() {
	flag.Parse()
	if *dir == "" {
		log.Fatal("frontbench: -dir is required")
	}
	defer stopAll()
	if err := run(); err != nil {
		stopAll()
		log.Fatalf("frontbench: %v", err)
	}
}

func stopAll() {
	for _, p := range procs {
		if p.Process != nil {
			p.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range procs {
		if p.Process != nil {
			done := make(chan struct{})
			go func() { p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				p.Process.Kill()
			}
		}
	}
	procs = nil
}

func port(ip string) string {
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func start(name string, env []string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	logf, err := os.Create(filepath.Join(*dir, filepath.Base(name)+"-"+strconv.Itoa(len(procs))+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	procs = append(procs, cmd)
	return cmd, nil
}

func cli(args ...string) (string, error) {
	out, err := exec.Command(*bin, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("postern %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

type member struct{ data, ldap, smtp, cluster string }

func serve(ip, ntp string) (member, error) {
	m := member{data: filepath.Join(*dir, ip), ldap: port(ip), smtp: port(ip), cluster: port(ip)}
	_, err := start(*bin, []string{"POSTERN_ADMIN_PASSWORD=" + adminPW}, "serve", "--data", m.data, "--hostname", "h"+strings.ReplaceAll(ip, ".", "-"),
		"--ldap", m.ldap, "--ldaps", "off", "--smtp", m.smtp, "--admin", "off", "--metrics", "off", "--cluster", m.cluster,
		"--ntp-server", ntp)
	if err != nil {
		return m, err
	}
	_, err = cli("wait", "--data", m.data)
	return m, err
}

func run() error {
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	ntp := port(backendIP) // a free TCP port; ntpd takes it in UDP
	if _, err := start(*bin, nil, "ntpd", "--listen", ntp); err != nil {
		return err
	}
	b, err := serve(backendIP, ntp)
	if err != nil {
		return err
	}
	f, err := serve(frontendIP, ntp)
	if err != nil {
		return err
	}
	pw := filepath.Join(*dir, "cluster.pw")
	os.WriteFile(pw, []byte("bench cluster password\n"), 0o600)
	id := filepath.Join(*dir, "clusterid.txt")
	if _, err := cli("cluster", "prepare", "--data", b.data, "--password-file", pw, "--out", id, "--allow", frontendIP); err != nil {
		return err
	}
	if _, err := cli("cluster", "frontend", "attach", "--data", f.data, "--id", id, "--password-file", pw, "--backend", b.cluster, "--self", f.cluster); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)
	if _, err := cli("wait", "--data", f.data); err != nil {
		return err
	}
	sinkAddr := port(sinkIP)
	if _, err := cli("domain", "add", "bench.test", "--deliver-to", sinkAddr, "--tls", "none", "--data", b.data); err != nil {
		return err
	}
	if err := visibility(b, f, sinkAddr); err != nil {
		return err
	}
	var rate [2]float64
	for i, target := range []member{b, f} {
		r, err := throughput(target.smtp, sinkAddr)
		if err != nil {
			return err
		}
		rate[i] = r
		fmt.Printf("measure=throughput system=%s messages_per_s=%.1f\n", []string{"backend", "frontend"}[i], r)
	}
	fmt.Printf("measure=throughput_ratio frontend_over_backend=%.2f\n", rate[1]/rate[0])
	return nil
}

// visibility adds -changes domains on the backend over LDAP, each timed
// until the frontend accepts a recipient in it.
func visibility(b, f member, sinkAddr string) error {
	l, err := ldap.DialURL("ldap://" + b.ldap)
	if err != nil {
		return err
	}
	defer l.Close()
	if err := l.Bind("cn=admin,"+suffix, adminPW); err != nil {
		return err
	}
	c, err := smtpSession(f.smtp)
	if err != nil {
		return err
	}
	defer c.Close()
	var lat []time.Duration
	for i := range *changes {
		name := fmt.Sprintf("v%d-%d.vis.test", i, time.Now().UnixNano())
		add := ldap.NewAddRequest("cn="+name+",ou=domains,"+suffix, nil)
		add.Attribute("objectClass", []string{"top", "posternDomain"})
		add.Attribute("cn", []string{name})
		add.Attribute("posternDeliverTo", []string{sinkAddr})
		add.Attribute("posternTLSPolicy", []string{"none"})
		t0 := time.Now()
		if err := l.Add(add); err != nil {
			return err
		}
		for {
			ok, err := accepts(c, "x@"+name)
			if err != nil {
				return err
			}
			if ok {
				break
			}
			if time.Since(t0) > 30*time.Second {
				return fmt.Errorf("%s not in force on the frontend after 30 s", name)
			}
			time.Sleep(200 * time.Microsecond)
		}
		lat = append(lat, time.Since(t0))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	fmt.Printf("measure=visibility changes=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", len(lat), pct(0.50), pct(0.99), float64(lat[len(lat)-1].Microseconds())/1000)
	return nil
}

func smtpSession(addr string) (*smtp.Client, error) {
	c, err := smtp.Dial(addr)
	if err != nil {
		return nil, err
	}
	return c, c.Hello("bench.test")
}

// accepts reports whether the gateway takes rcpt (250) or refuses it
// (5xx: not yet a managed domain).
func accepts(c *smtp.Client, rcpt string) (bool, error) {
	if err := c.Reset(); err != nil {
		return false, err
	}
	if err := c.Mail("bench@source.test"); err != nil {
		return false, err
	}
	err := c.Rcpt(rcpt)
	if err == nil {
		return true, nil
	}
	if strings.HasPrefix(err.Error(), "5") || strings.HasPrefix(err.Error(), "4") {
		return false, nil
	}
	return false, err
}

var mesg = regexp.MustCompile(`mesg=(\d+)`)

// throughput runs smtp-source into target (delivering to a fresh
// smtp-sink on sinkAddr) and returns messages/s until the sink counted
// every message.
func throughput(target, sinkAddr string) (float64, error) {
	sinkArgs := []string{"-c", sinkAddr, "1024"}
	if os.Geteuid() == 0 {
		sinkArgs = append([]string{"-u", "postfix"}, sinkArgs...)
	}
	sink := exec.Command(sbin("smtp-sink"), sinkArgs...)
	out, err := sink.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := sink.Start(); err != nil {
		return 0, err
	}
	defer func() { sink.Process.Kill(); sink.Wait() }()
	counted := make(chan int, 1024)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
			for i, ch := range data {
				if ch == '\r' || ch == '\n' {
					return i + 1, data[:i], nil
				}
			}
			if atEOF && len(data) > 0 {
				return len(data), data, nil
			}
			return 0, nil, nil
		})
		for sc.Scan() {
			if m := mesg.FindStringSubmatch(sc.Text()); m != nil {
				n, _ := strconv.Atoi(m[1])
				select {
				case counted <- n:
				default:
				}
			}
		}
	}()
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", sinkAddr); err == nil {
			c.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	t0 := time.Now()
	src := exec.CommandContext(ctx, sbin("smtp-source"), "-s", strconv.Itoa(*sessions), "-m", strconv.Itoa(*messages), "-l", strconv.Itoa(*size),
		"-f", "bench@source.test", "-t", "rcpt@bench.test", "-M", "source.test", target)
	if b, err := src.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("smtp-source: %v\n%s", err, b)
	}
	// the probe connection above counts as no message; smtp-sink's mesg
	// counter is cumulative
	for {
		select {
		case n := <-counted:
			if n >= *messages {
				return float64(*messages) / time.Since(t0).Seconds(), nil
			}
		case <-ctx.Done():
			return 0, fmt.Errorf("timeout: the sink did not count %d messages", *messages)
		}
	}
}

func sbin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return "/usr/sbin/" + name
}
