package main

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// attr is one attribute of a generated entry, in the order it is written.
type attr struct {
	Name   string
	Values []string
}

// userEntry returns the attributes of benchmark user n. scheme is "ssha" (the value
// is hashed here, with a salt derived from n so that the data set is reproducible)
// or "plain" (the server sees the clear text "passwordN" and hashes it its own way).
func userEntry(n int, scheme string) []attr {
	id := strconv.Itoa(n)
	pw := "password" + id
	if scheme == "ssha" {
		pw = sshaHash(pw, n)
	}
	return []attr{
		{"objectClass", []string{"top", "person", "organizationalPerson", "inetOrgPerson"}},
		{"uid", []string{"user" + id}},
		{"cn", []string{"User " + id}},
		{"sn", []string{"User" + id}},
		{"mail", []string{"user" + id + "@example.com"}},
		{"userPassword", []string{pw}},
		{"description", []string{"benchmark user " + id}},
	}
}

// sshaHash is RFC 2307-style {SSHA}: base64(SHA-1(password || salt) || salt), with an
// 8-byte salt derived from n. Both slapd and Postern store a value that already
// carries a {SCHEME} prefix as is.
func sshaHash(password string, n int) string {
	seed := sha1.Sum([]byte("postern-bench-salt-" + strconv.Itoa(n)))
	salt := seed[:8]
	h := sha1.New()
	h.Write([]byte(password))
	h.Write(salt)
	sum := h.Sum(nil)
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(sum, salt...))
}

// baseEntries returns the suffix entry and ou=people, which the users need as
// parents. Only a suffix whose first RDN is dc=... is supported.
func baseEntries(suffix string) ([]string, [][]attr, error) {
	first, _, _ := strings.Cut(suffix, ",")
	name, value, ok := strings.Cut(first, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(name), "dc") {
		return nil, nil, fmt.Errorf("suffix %q: the first RDN must be dc=...", suffix)
	}
	value = strings.TrimSpace(value)
	dns := []string{suffix, "ou=people," + suffix}
	entries := [][]attr{
		{
			{"objectClass", []string{"top", "dcObject", "organization"}},
			{"dc", []string{value}},
			{"o", []string{value}},
		},
		{
			{"objectClass", []string{"top", "organizationalUnit"}},
			{"ou", []string{"people"}},
		},
	}
	return dns, entries, nil
}

// ---- ldapload ldif ----

func cmdLDIF(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ldapload ldif", flag.ContinueOnError)
	fs.SetOutput(stderr)
	suffix := fs.String("base", "dc=postern,dc=local", "directory suffix; users live in ou=people below it")
	n := fs.Int("n", 10_000, "number of users")
	start := fs.Int("start", 0, "number of the first user")
	out := fs.String("o", "-", "output `file` (- for stdout)")
	withBase := fs.Bool("with-base", true, "also write the suffix entry and ou=people first")
	scheme := fs.String("password-scheme", "ssha", "userPassword as ssha (pre-hashed) or plain")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if err := checkLoadFlags(*n, *start, *scheme); err != nil {
		return err
	}
	w := stdout
	var f *os.File
	if *out != "-" {
		var err error
		if f, err = os.Create(*out); err != nil {
			return err
		}
		w = f
	}
	err := writeLDIF(w, *suffix, *start, *n, *withBase, *scheme)
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

func writeLDIF(w io.Writer, suffix string, start, n int, withBase bool, scheme string) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	entry := func(dn string, attrs []attr) {
		fmt.Fprintf(bw, "dn: %s\n", dn)
		for _, a := range attrs {
			for _, v := range a.Values {
				fmt.Fprintf(bw, "%s: %s\n", a.Name, v)
			}
		}
		bw.WriteString("\n")
	}
	if withBase {
		dns, entries, err := baseEntries(suffix)
		if err != nil {
			return err
		}
		for i := range dns {
			entry(dns[i], entries[i])
		}
	}
	t := target{Suffix: suffix}
	for i := start; i < start+n; i++ {
		entry(t.userDN(i), userEntry(i, scheme))
	}
	return bw.Flush()
}

func checkLoadFlags(n, start int, scheme string) error {
	switch {
	case n < 0 || n > 10_000_000:
		return fmt.Errorf("-n %d: want 0..10000000", n)
	case start < 0:
		return fmt.Errorf("-start %d: want at least 0", start)
	case scheme != "ssha" && scheme != "plain":
		return fmt.Errorf("-password-scheme %q: want ssha or plain", scheme)
	}
	return nil
}

// ---- ldapload load ----

func cmdLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var t target
	fs := flag.NewFlagSet("ldapload load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	t.register(fs)
	n := fs.Int("n", 10_000, "number of users to add")
	start := fs.Int("start", 0, "number of the first user")
	clients := fs.Int("clients", 8, "parallel connections")
	scheme := fs.String("password-scheme", "ssha", "userPassword as ssha (pre-hashed) or plain")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	serverPID := fs.Int("server-pid", 0, "`pid` of the server on this machine: report its CPU time per add")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if err := checkLoadFlags(*n, *start, *scheme); err != nil {
		return err
	}
	if *clients < 1 || *clients > 1024 {
		return fmt.Errorf("-clients %d: want 1..1024", *clients)
	}
	if err := t.check(); err != nil {
		return err
	}
	var cpu0 time.Duration
	if *serverPID != 0 {
		var err error
		if cpu0, err = processCPU(*serverPID); err != nil {
			return err
		}
	}
	res, existing, err := load(ctx, &t, *start, *n, *clients, *scheme)
	if err != nil {
		return err
	}
	if *serverPID != 0 && res.Ops > 0 {
		cpu1, err := processCPU(*serverPID)
		if err != nil {
			return err
		}
		res.CPUus = float64(cpu1-cpu0) / float64(time.Microsecond) / float64(res.Ops)
	}
	if err := res.print(stdout, *asJSON); err != nil {
		return err
	}
	if existing > 0 {
		fmt.Fprintf(stderr, "ldapload load: %d of %d users already existed and were left as they were\n", existing, *n)
	}
	if res.Errors > 0 {
		return fmt.Errorf("load: %d errors, first: %v", res.Errors, res.firstErr)
	}
	return nil
}

// load adds users start..start+n-1 over clients parallel connections, after making
// sure the suffix and ou=people exist. A user that already exists is skipped and
// counted in existing, so that an interrupted load can be resumed. The result is
// reported as workload "add"; its ops are the users actually added.
func load(ctx context.Context, t *target, start, n, clients int, scheme string) (result, int, error) {
	conns, err := t.dialAll(clients)
	if err != nil {
		return result{}, 0, err
	}
	defer func() { closeAll(conns) }()
	if err := ensureBase(conns[0], t.Suffix); err != nil {
		return result{}, 0, err
	}

	recs := make([]*recorder, clients)
	for i := range recs {
		recs[i] = newRecorder(n/clients + 1)
	}
	var next, existing atomic.Int64
	next.Store(int64(start))
	end := int64(start + n)
	var wg sync.WaitGroup
	begin := time.Now()
	for i := range conns {
		wg.Add(1)
		go func(c *ldap.Conn, rec *recorder) {
			defer wg.Done()
			for ctx.Err() == nil && !c.IsClosing() {
				u := next.Add(1) - 1
				if u >= end {
					return
				}
				req := addRequest(t.userDN(int(u)), userEntry(int(u), scheme))
				t0 := time.Now()
				err := c.Add(req)
				switch {
				case err == nil:
					rec.ok(time.Since(t0))
				case ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists):
					existing.Add(1)
				default:
					rec.fail(fmt.Errorf("add %s: %w", req.DN, err))
				}
			}
		}(conns[i], recs[i])
	}
	wg.Wait()
	elapsed := time.Since(begin)
	if err := ctx.Err(); err != nil {
		return result{}, 0, err
	}
	res := merge("add", clients, elapsed, recs)
	if added, ex := res.Ops+res.Errors, int(existing.Load()); added+ex < n {
		res.Errors += n - added - ex
		if res.firstErr == nil {
			res.firstErr = errors.New("connections closed before every user was sent")
		}
	}
	return res, int(existing.Load()), nil
}

func addRequest(dn string, attrs []attr) *ldap.AddRequest {
	req := ldap.NewAddRequest(dn, nil)
	for _, a := range attrs {
		req.Attribute(a.Name, a.Values)
	}
	return req
}

// ensureBase adds the suffix entry and ou=people where they are missing.
func ensureBase(c *ldap.Conn, suffix string) error {
	dns, entries, err := baseEntries(suffix)
	if err != nil {
		return err
	}
	for i, dn := range dns {
		err := c.Add(addRequest(dn, entries[i]))
		if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists) {
			return fmt.Errorf("add %s: %w", dn, err)
		}
	}
	return nil
}
