package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"postern/ldapstore"
	"postern/ldapstore/filter"
	"postern/ldapstore/server"
)

const (
	suffix = "dc=postern,dc=local"
	rootDN = "cn=admin,dc=postern,dc=local"
	rootPW = "replication test secret"
)

// node is one member: a store and its LDAP server with the provider.
type node struct {
	sid      int
	dir      string
	opts     ldapstore.Options
	store    *ldapstore.Store
	srv      *server.Server
	provider *Provider
	addr     string
	stop     func() // closes the server and the store, once
}

func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("REPL_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(tw{t}, &slog.HandlerOptions{Level: level})).With("t", t.Name())
}

type tw struct{ t testing.TB }

func (w tw) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

var rootHash = sync.OnceValue(func() string {
	h, err := ldapstore.HashPassword(rootPW)
	if err != nil {
		panic(err)
	}
	return h
})

// startNode opens a store in dir (a new temporary one when "") and serves
// it with the provider on a loopback port.
func startNode(t testing.TB, sid int, dir string) *node {
	t.Helper()
	return startNodeOpts(t, dir, ldapstore.Options{ServerID: sid})
}

func startNodeOpts(t testing.TB, dir string, opts ldapstore.Options) *node {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	return serveNode(t, dir, opts, "127.0.0.1:0")
}

// serveNode opens the store in dir and serves it on addr.
func serveNode(t testing.TB, dir string, opts ldapstore.Options, addr string) *node {
	t.Helper()
	sid := opts.ServerID
	opts.Logger = testLogger(t)
	st, err := ldapstore.Open(filepath.Join(dir, "ldap.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, RootDN: rootDN, RootPassword: rootHash(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	prov := NewProvider(st, ProviderOptions{Logger: testLogger(t), Replicators: []string{"cn=replicator,dc=postern,dc=local"}})
	prov.Register(srv)
	var l net.Listener
	for i := 0; ; i++ { // a restart takes the port back; the old socket may linger a moment
		if l, err = net.Listen("tcp", addr); err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	n := &node{sid: sid, dir: dir, opts: opts, store: st, srv: srv, provider: prov, addr: l.Addr().String()}
	var once sync.Once
	n.stop = func() {
		once.Do(func() {
			srv.Close()
			<-done
			st.Close()
		})
	}
	t.Cleanup(n.stop)
	return n
}

// restart stops n and serves its directory again on the same address.
func (n *node) restart(t testing.TB) *node {
	t.Helper()
	n.stop()
	return serveNode(t, n.dir, n.opts, n.addr)
}

// consume runs a consumer on to from addr until the test ends (or stop).
func consume(t testing.TB, to *node, rid int, provider, addr string, mods ...func(*ConsumerConfig)) (*Consumer, func()) {
	t.Helper()
	cfg := ConsumerConfig{
		RID: rid, Provider: provider, Store: to.store,
		Dial: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		},
		BindDN: rootDN, Password: rootPW,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond,
		CountInterval: 200 * time.Millisecond,
		Logger:        testLogger(t),
	}
	for _, m := range mods {
		m(&cfg)
	}
	c := NewConsumer(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.Run(ctx); err != nil {
			t.Errorf("consumer %d: %v", rid, err)
		}
	}()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return c, stop
}

func entry(dn string, pairs ...string) *ldapstore.Entry {
	e := &ldapstore.Entry{DN: dn}
	for i := 0; i+1 < len(pairs); i += 2 {
		e.Set(pairs[i], append(e.Get(pairs[i]), pairs[i+1])...)
	}
	return e
}

func seedTree(t testing.TB, st *ldapstore.Store) {
	t.Helper()
	ctx := context.Background()
	for _, e := range []*ldapstore.Entry{
		entry(suffix, "objectClass", "top", "objectClass", "dcObject", "objectClass", "organization", "dc", "postern", "o", "Postern"),
		entry("ou=people,"+suffix, "objectClass", "organizationalUnit", "ou", "people"),
		entry("ou=domains,"+suffix, "objectClass", "organizationalUnit", "ou", "domains"),
	} {
		if err := st.Add(ctx, e, rootDN); err != nil {
			t.Fatalf("seed %s: %v", e.DN, err)
		}
	}
}

func person(uid string, extra ...string) *ldapstore.Entry {
	return entry(fmt.Sprintf("uid=%s,ou=people,%s", uid, suffix), append([]string{
		"objectClass", "inetOrgPerson", "uid", uid, "cn", "User " + uid, "sn", uid,
		"mail", uid + "@example.com"}, extra...)...)
}

// dump renders every entry below the suffix, attributes sorted, entryCSN
// included; skip lists attribute types left out (lower case).
func dump(t testing.TB, st *ldapstore.Store, skip ...string) string {
	t.Helper()
	var lines []string
	err := st.Search(context.Background(), &ldapstore.SearchRequest{BaseDN: suffix, Scope: ldapstore.ScopeSub}, func(e *ldapstore.Entry) error {
		lines = append(lines, render(e, skip...))
		return nil
	})
	if ldapstore.CodeOf(err) == ldapstore.NoSuchObject {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func render(e *ldapstore.Entry, skip ...string) string {
	var attrs []string
next:
	for _, a := range e.Attributes {
		for _, s := range skip {
			if strings.EqualFold(a.Type, s) {
				continue next
			}
		}
		vals := append([]string(nil), a.Vals...)
		sort.Strings(vals)
		attrs = append(attrs, strings.ToLower(a.Type)+"="+strings.Join(vals, "|"))
	}
	sort.Strings(attrs)
	return strings.ToLower(e.DN) + ": " + strings.Join(attrs, " ")
}

// waitEqual waits until every store holds the same tree, or fails.
func waitEqual(t testing.TB, deadline time.Duration, stores ...*ldapstore.Store) string {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		want := dump(t, stores[0])
		same := true
		for _, s := range stores[1:] {
			if dump(t, s) != want {
				same = false
				break
			}
		}
		if same {
			return want
		}
		if time.Now().After(end) {
			for i, s := range stores {
				t.Logf("store %d (%d entries):\n%s", i, lineCount(dump(t, s)), diffHint(want, dump(t, s)))
			}
			t.Fatalf("trees did not converge within %v", deadline)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func lineCount(s string) int {
	if s == "" {
		return 0
	}
	return strings.Count(s, "\n") + 1
}

// diffHint lists the lines of b not in a and of a not in b (at most 10 each).
func diffHint(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for l := range mb {
		if !ma[l] && len(out) < 10 {
			out = append(out, "+ "+l)
		}
	}
	for l := range ma {
		if !mb[l] && len(out) < 20 {
			out = append(out, "- "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func isCode(err error, code ldapstore.ResultCode) bool {
	var le *ldapstore.Error
	return errors.As(err, &le) && le.Code == code
}

func mustParseFilter(t testing.TB, s string) *filter.Filter {
	t.Helper()
	f, err := filter.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
