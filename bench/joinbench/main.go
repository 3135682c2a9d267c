// Command joinbench measures a cluster join of a large tree (issue 16):
// the built postern binary as processes, a base member holding -entries
// users and an empty appliance that joins it with `postern cluster join`.
// It prints the join's time (from the command's start until it returns,
// the copy and the first replication sessions both ways included), the
// joiner's peak resident memory (VmHWM of its process: the Go heap and the
// pages of its store file it touched) and the serving member's.
//
// The base's users are written straight into its store file with the
// store's own batch add before its first start (loading a million entries
// over LDAP would take longer than the join); `serve` then adds what a new
// appliance adds. Everything listens on 127.0.3.0/24, and every process
// started here is stopped on exit. Output: one "measure=... key=value" line
// per figure.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"postern/ldapstore"
)

var (
	bin     = flag.String("postern", "bin/postern", "the postern binary")
	dir     = flag.String("dir", "", "work directory (required)")
	entries = flag.Int("entries", 1000000, "users in the base's tree")
	timeout = flag.Duration("timeout", 15*time.Minute, "bound of the join")
)

const (
	baseIP   = "127.0.3.1"
	joinerIP = "127.0.3.2"
	adminPW  = "bench-admin-pw"
	suffix   = "dc=postern,dc=local"
	rootDN   = "cn=admin," + suffix
	// one user's password, hashed once (as an import would carry it)
	userPW = "{SSHA}1G904nLkTkGWjKNnQuB/hpWXC/hzYWx0c2FsdA=="
)

var procs []*exec.Cmd

func main() {
	flag.Parse()
	if *dir == "" {
		log.Fatal("joinbench: -dir is required")
	}
	err := run()
	stopAll()
	if err != nil {
		log.Fatalf("joinbench: %v", err)
	}
}

// stopAll stops the processes started here, by their PIDs: SIGTERM, then
// SIGKILL after 30 s.
func stopAll() {
	for _, p := range procs {
		p.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		done := make(chan struct{})
		go func() { p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			p.Process.Kill()
			<-done
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

func start(name string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "POSTERN_ADMIN_PASSWORD="+adminPW)
	logf, err := os.Create(filepath.Join(*dir, filepath.Base(name)+"-"+strconv.Itoa(len(procs))+".log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
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

type member struct {
	data, ldap, smtp, cluster string
	cmd                       *exec.Cmd
}

func serve(ip, ntp string) (*member, error) {
	m := &member{data: filepath.Join(*dir, ip), ldap: port(ip), smtp: port(ip), cluster: port(ip)}
	var err error
	m.cmd, err = start(*bin, "serve", "--data", m.data, "--hostname", "h"+strings.ReplaceAll(ip, ".", "-"),
		"--ldap", m.ldap, "--ldaps", "off", "--smtp", m.smtp, "--admin", "off", "--metrics", "off", "--cluster", m.cluster,
		"--ntp-server", ntp)
	if err != nil {
		return nil, err
	}
	_, err = cli("wait", "--data", m.data, "--timeout", "5m")
	return m, err
}

func run() error {
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	t0 := time.Now()
	if err := populate(filepath.Join(*dir, baseIP, "ldap.db"), *entries); err != nil {
		return fmt.Errorf("populate: %w", err)
	}
	fmt.Printf("measure=populate entries=%d seconds=%.1f\n", *entries, time.Since(t0).Seconds())
	ntp := port(baseIP) // a free TCP port; ntpd takes it in UDP
	if _, err := start(*bin, "ntpd", "--listen", ntp); err != nil {
		return err
	}
	base, err := serve(baseIP, ntp)
	if err != nil {
		return err
	}
	joiner, err := serve(joinerIP, ntp)
	if err != nil {
		return err
	}
	pw := filepath.Join(*dir, "cluster.pw")
	if err := os.WriteFile(pw, []byte("bench cluster password\n"), 0o600); err != nil {
		return err
	}
	id := filepath.Join(*dir, "clusterid.txt")
	if _, err := cli("cluster", "prepare", "--data", base.data, "--password-file", pw, "--out", id, "--allow", joinerIP); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	t0 = time.Now()
	cmd := exec.CommandContext(ctx, *bin, "cluster", "join", "--data", joiner.data, "--id", id, "--password-file", pw,
		"--member", base.cluster, "--self", joiner.cluster)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	// the joiner's resident memory by kind, sampled during the join: its
	// own (anonymous: the Go heap and stacks) and its store file's pages
	// mapped in (file-backed; the kernel may take them back at any time)
	sampled := make(chan [4]float64, 1)
	stopSampling := make(chan struct{})
	go func() {
		var top [4]float64
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if st, err := procStatus(joiner.cmd.Process.Pid); err == nil {
				top[0], top[1] = max(top[0], st["RssAnon"]), max(top[1], st["RssFile"])
			}
			if st, err := procStatus(base.cmd.Process.Pid); err == nil {
				top[2], top[3] = max(top[2], st["RssAnon"]), max(top[3], st["RssFile"])
			}
			select {
			case <-stopSampling:
				sampled <- top
				return
			case <-tick.C:
			}
		}
	}()
	// the progress lines, each with when it came: the copy ends with its
	// last "copied N/M entries"
	var out strings.Builder
	var copied string
	var copyTook time.Duration
	copiedRe := regexp.MustCompile(`copied (\d+)/(\d+) entries`)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		fmt.Fprintf(&out, "%6.1fs %s\n", time.Since(t0).Seconds(), sc.Text())
		if m := copiedRe.FindStringSubmatch(sc.Text()); m != nil {
			copied, copyTook = m[1], time.Since(t0)
		}
	}
	err = cmd.Wait()
	took := time.Since(t0)
	close(stopSampling)
	byKind := <-sampled
	os.WriteFile(filepath.Join(*dir, "join.out"), []byte(out.String()), 0o600)
	if err != nil {
		return fmt.Errorf("cluster join after %s: %v\n%s", took, err, tail(out.String(), 20))
	}
	if copied == "" {
		return fmt.Errorf("cluster join printed no copy progress:\n%s", tail(out.String(), 20))
	}
	joinerRSS, err := peakRSS(joiner.cmd.Process.Pid)
	if err != nil {
		return err
	}
	baseRSS, err := peakRSS(base.cmd.Process.Pid)
	if err != nil {
		return err
	}
	n, err := count(joiner.data)
	if err != nil {
		return fmt.Errorf("count the joiner's entries: %w", err)
	}
	fmt.Printf("measure=join entries=%d copied=%s seconds=%.1f copy_seconds=%.1f joiner_peak_rss_mb=%.0f joiner_peak_anon_mb=%.0f joiner_peak_file_mb=%.0f base_peak_rss_mb=%.0f base_peak_anon_mb=%.0f base_peak_file_mb=%.0f joiner_entries=%d\n",
		*entries, copied, took.Seconds(), copyTook.Seconds(), joinerRSS, byKind[0], byKind[1], baseRSS, byKind[2], byKind[3], n)
	return nil
}

// populate writes n users below ou=people into a new store file, in
// batches (one transaction each), as the appliance's first start would
// find an imported directory.
func populate(path string, n int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	st, err := ldapstore.Open(path, ldapstore.Options{ServerID: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	top := &ldapstore.Entry{DN: suffix}
	top.Set("objectClass", "top", "dcObject", "organization")
	top.Set("dc", "postern")
	top.Set("o", "Postern")
	people := &ldapstore.Entry{DN: "ou=people," + suffix}
	people.Set("objectClass", "organizationalUnit")
	people.Set("ou", "people")
	if err := st.AddBatch(ctx, []*ldapstore.Entry{top, people}, rootDN); err != nil {
		return err
	}
	const batch = 5000
	for i := 0; i < n; i += batch {
		es := make([]*ldapstore.Entry, 0, batch)
		for j := i; j < min(i+batch, n); j++ {
			uid := fmt.Sprintf("u%07d", j)
			e := &ldapstore.Entry{DN: "uid=" + uid + ",ou=people," + suffix}
			e.Set("objectClass", "inetOrgPerson")
			e.Set("uid", uid)
			e.Set("cn", "User "+uid)
			e.Set("sn", uid)
			e.Set("mail", uid+"@example.com")
			e.Set("userPassword", userPW)
			es = append(es, e)
		}
		if err := st.AddBatch(ctx, es, rootDN); err != nil {
			return err
		}
	}
	return nil
}

// peakRSS reads a process's peak resident set size (VmHWM) in MB.
func peakRSS(pid int) (float64, error) {
	st, err := procStatus(pid)
	if err != nil {
		return 0, err
	}
	if v, ok := st["VmHWM"]; ok {
		return v, nil
	}
	return 0, fmt.Errorf("no VmHWM for process %d", pid)
}

// procStatus reads the sizes (kB fields, in MB) of /proc/PID/status.
func procStatus(pid int) (map[string]float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	st := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		if !ok || !strings.HasSuffix(v, " kB") {
			continue
		}
		if kb, err := strconv.ParseFloat(strings.TrimSuffix(v, " kB"), 64); err == nil {
			st[k] = kb / 1024
		}
	}
	return st, nil
}

// count returns the entries of an appliance's directory (postern status).
func count(data string) (int, error) {
	out, err := cli("status", "--data", data, "--json")
	if err != nil {
		return 0, err
	}
	var st struct {
		Entries int `json:"entries"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return 0, fmt.Errorf("postern status: %w", err)
	}
	return st.Entries, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
