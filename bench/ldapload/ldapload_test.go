package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample", ms(7), 99, 7 * time.Millisecond},
		{"p50 of 1..100", ms(hundred...), 50, 50 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p100 of 1..100", ms(hundred...), 100, 100 * time.Millisecond},
		{"p50 of four", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of four", ms(1, 2, 3, 4), 99, 4 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("percentile(p%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func TestMergeCountsEveryClient(t *testing.T) {
	a, b := newRecorder(4), newRecorder(4)
	a.ok(3 * time.Millisecond)
	a.ok(1 * time.Millisecond)
	b.ok(2 * time.Millisecond)
	b.fail(fmt.Errorf("boom"))
	res := merge("search-uid", 2, 2*time.Second, []*recorder{a, b})
	if res.Ops != 3 || res.Errors != 1 || res.OpsPerS != 1.5 || res.P50ms != 2 || res.Maxms != 3 {
		t.Errorf("merge = %+v, want 3 ops, 1 error, 1.5 ops/s, p50 2 ms, max 3 ms", res)
	}
	if res.firstErr == nil || res.firstErr.Error() != "boom" {
		t.Errorf("first error = %v, want boom", res.firstErr)
	}
}

// TestSSHAHash checks the {SSHA} layout servers verify: SHA-1(password || salt) || salt.
func TestSSHAHash(t *testing.T) {
	v := sshaHash("password7", 7)
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(v, "{SSHA}"))
	if !strings.HasPrefix(v, "{SSHA}") || err != nil || len(raw) != sha1.Size+8 {
		t.Fatalf("sshaHash = %q (decode err %v, %d bytes)", v, err, len(raw))
	}
	sum := sha1.Sum(append([]byte("password7"), raw[sha1.Size:]...))
	if !bytes.Equal(sum[:], raw[:sha1.Size]) {
		t.Errorf("sshaHash(password7) does not verify")
	}
	if sshaHash("password7", 7) != v || sshaHash("password8", 8) == v {
		t.Errorf("sshaHash is not deterministic per user or repeats across users")
	}
}

func TestLDIF(t *testing.T) {
	var buf bytes.Buffer
	if err := writeLDIF(&buf, "dc=postern,dc=local", 41, 2, true, "plain"); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"dn: dc=postern,dc=local\n", "dn: ou=people,dc=postern,dc=local\n",
		"dn: uid=user41,ou=people,dc=postern,dc=local\n", "mail: user42@example.com\n",
		"userPassword: password42\n", "objectClass: inetOrgPerson\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("LDIF lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n\n"); n != 4 {
		t.Errorf("LDIF has %d entries, want 4", n)
	}
	if _, _, err := baseEntries("ou=x,o=y"); err == nil {
		t.Errorf("baseEntries accepted a suffix that does not start with dc=")
	}
}

func TestProcessCPU(t *testing.T) {
	before, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Hash until the CPU time grows, bounded by 5 s: on a loaded machine
	// (make test runs packages in parallel on 2 cores) 100 ms of wall time
	// may bring less than one clock tick of CPU.
	sum := sha1.Sum(nil)
	after := before
	for deadline := time.Now().Add(5 * time.Second); after <= before && time.Now().Before(deadline); {
		for stop := time.Now().Add(50 * time.Millisecond); time.Now().Before(stop); {
			sum = sha1.Sum(sum[:])
		}
		if after, err = processCPU(os.Getpid()); err != nil {
			t.Fatal(err)
		}
	}
	if after <= before {
		t.Errorf("CPU time did not grow over 5 s of hashing: %v then %v", before, after)
	}
}

func TestTargetRefusesRemote(t *testing.T) {
	for url, ok := range map[string]bool{
		"ldap://127.0.0.1:389":   true,
		"ldaps://[::1]:636":      true,
		"ldap://localhost:389":   true,
		"ldap://192.0.2.1:389":   false,
		"http://127.0.0.1:389":   false,
		"ldap://example.com:389": false,
	} {
		err := (&target{URL: url}).check()
		if (err == nil) != ok {
			t.Errorf("check(%s) = %v, want ok=%v", url, err, ok)
		}
	}
}

// TestAgainstSlapd loads a stock slapd over LDAP and runs every workload against it
// for a moment: the path bench/ldap.sh takes, on a small directory.
func TestAgainstSlapd(t *testing.T) {
	const slapd = "/usr/sbin/slapd"
	if _, err := os.Stat(slapd); err != nil {
		t.Fatalf("needs %s: make test installs it (apt-get install slapd): %v", slapd, err)
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	conf := filepath.Join(dir, "slapd.conf")
	err = os.WriteFile(conf, []byte(fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile %[1]s/slapd.pid
loglevel none
database mdb
maxsize 104857600
suffix "dc=postern,dc=local"
rootdn "cn=admin,dc=postern,dc=local"
rootpw secret
directory %[1]s/db
index objectClass,cn,uid,mail eq
`, dir)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(slapd, "-f", conf, "-h", "ldap://"+addr+"/", "-d", "0")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	tg := target{URL: "ldap://" + addr, BindDN: "cn=admin,dc=postern,dc=local", Password: "secret",
		Suffix: "dc=postern,dc=local", OpTimeout: 5 * time.Second}
	for i := 0; ; i++ {
		c, err := tg.dial()
		if err == nil {
			c.Close()
			break
		}
		if i == 100 {
			t.Fatalf("slapd never answered: %v\n%s", err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	ctx := context.Background()
	res, existing, err := load(ctx, &tg, 0, 50, 4, "ssha")
	if err != nil || res.Ops != 50 || res.Errors != 0 || existing != 0 {
		t.Fatalf("load 50: %+v existing %d err %v", res, existing, err)
	}
	res, existing, err = load(ctx, &tg, 45, 10, 2, "ssha")
	if err != nil || res.Ops != 5 || existing != 5 || res.Errors != 0 {
		t.Fatalf("load 45..54 over 0..49: %+v existing %d err %v, want 5 added, 5 existing", res, existing, err)
	}
	for _, w := range []string{"search-uid", "search-mail", "modify"} {
		res, err := run(ctx, runConfig{target: tg, Workload: w, Clients: 3, Duration: 5 * time.Second,
			MaxOps: 100, Users: 55, Seed: 1, ServerPID: cmd.Process.Pid})
		if err != nil || res.Errors != 0 || res.Ops != 100 || res.P99ms <= 0 {
			t.Errorf("%s: %+v err %v first %v, want 100 ops without errors", w, res, err, res.firstErr)
		}
	}
	// A user that does not exist must count as an error, not as a fast success.
	res, err = run(ctx, runConfig{target: tg, Workload: "search-uid", Clients: 1, Duration: time.Second,
		MaxOps: 20, Users: 1000, Seed: 3})
	if err != nil || res.Errors == 0 {
		t.Errorf("searches for users 0..999 of 55: %+v err %v, want errors", res, err)
	}
}
