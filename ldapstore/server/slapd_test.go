package server

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"postern/ldapstore"
)

// The reference for an LDAP answer is a stock slapd 2.5 given the same data
// (issue 9). slapdRef is one, started by the test on its own 127.0.30.x
// address with the suffix, the base DIT and the two users of newTestServer,
// and ACLs that say what Postern's access rules say (bind.go): the root DN
// may do anything, a user reads the tree and its own userPassword but not
// other users', anonymous reads the Root DSE and cn=Subschema only.
const slapdBin = "/usr/sbin/slapd"

type slapdRef struct {
	t    testing.TB
	addr string
}

// refAddrs hands out one 127.0.30.x address per reference server of a test
// binary (127.0.30.0/24 is the range new tests use for fixed addresses).
var refAddrs atomic.Int32

// startSlapd starts slapd with the base DIT of newTestServer loaded, and
// the pw-sha2 and argon2 modules so that it verifies {SSHA256}, {SSHA512}
// and {ARGON2} values.
func startSlapd(t testing.TB) *slapdRef {
	t.Helper()
	if _, err := os.Stat(slapdBin); err != nil {
		t.Fatalf("stock slapd is required (make test installs it: .ci/deps.sh): %v", err)
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	ip := fmt.Sprintf("127.0.30.%d", 10+refAddrs.Add(1)%200)
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload pw-sha2
moduleload argon2
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
loglevel none
database mdb
maxsize 104857600
suffix "%[2]s"
rootdn "%[3]s"
rootpw "%[4]s"
directory %[1]s/db
index objectClass,cn,uid,mail eq
access to dn.base="" by * read
access to dn.base="cn=Subschema" by * read
access to attrs=userPassword by self read by anonymous auth by * none
access to * by users read by * none
`, dir, testSuffix, testRootDN, testRootPW)
	if err := os.WriteFile(filepath.Join(dir, "slapd.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(slapdBin, "-f", filepath.Join(dir, "slapd.conf"), "-h", "ldap://"+addr+"/", "-d", "0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	s := &slapdRef{t: t, addr: addr}
	for i := 0; ; i++ {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("slapd exited: %s", out.String())
		default:
		}
		if i == 300 {
			t.Fatalf("slapd did not listen on %s: %s", addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	root := s.root()
	for _, e := range baseEntries() {
		if err := root.Add(addReq(e.DN, pairs(e)...)); err != nil {
			t.Fatalf("slapd: add %s: %v", e.DN, err)
		}
	}
	return s
}

// baseEntries is the tree newTestServer loads.
func baseEntries() []*ldapstore.Entry {
	return []*ldapstore.Entry{
		entry(testSuffix, "objectClass", "top", "objectClass", "dcObject", "objectClass", "organization", "dc", "postern", "o", "Postern"),
		entry("ou=people,"+testSuffix, "objectClass", "organizationalUnit", "ou", "people"),
		entry("ou=domains,"+testSuffix, "objectClass", "organizationalUnit", "ou", "domains"),
		entry(testUserDN, "objectClass", "inetOrgPerson", "uid", "alice", "cn", "Alice Liddell", "sn", "Liddell",
			"mail", "alice@example.com", "userPassword", testUserPW, "employeeNumber", "10"),
		entry(testOtherDN, "objectClass", "inetOrgPerson", "uid", "bob", "cn", "Bob Dylan", "sn", "Dylan",
			"mail", "bob@example.com", "userPassword", testOtherPW, "employeeNumber", "20"),
	}
}

// pairs flattens an entry's attributes into type/value pairs.
func pairs(e *ldapstore.Entry) []string {
	var out []string
	for _, a := range e.Attributes {
		for _, v := range a.Vals {
			out = append(out, a.Type, v)
		}
	}
	return out
}

func (s *slapdRef) dial() *ldap.Conn {
	s.t.Helper()
	l, err := ldap.DialURL("ldap://" + s.addr)
	if err != nil {
		s.t.Fatalf("dial slapd: %v", err)
	}
	l.SetTimeout(10 * time.Second)
	s.t.Cleanup(func() { l.Close() })
	return l
}

func (s *slapdRef) bind(dn, password string) *ldap.Conn {
	s.t.Helper()
	l := s.dial()
	if err := l.Bind(dn, password); err != nil {
		s.t.Fatalf("slapd: bind %s: %v", dn, err)
	}
	return l
}

func (s *slapdRef) root() *ldap.Conn { return s.bind(testRootDN, testRootPW) }

// directory is what the comparison tests need of a server: Postern's
// testServer and slapdRef both are one.
type directory interface {
	dial() *ldap.Conn
	bind(dn, password string) *ldap.Conn
	root() *ldap.Conn
}

// refPair is a Postern test server and a slapd holding the same tree.
type refPair struct {
	postern *testServer
	slapd   *slapdRef
}

func newRefPair(t *testing.T, opts ...any) *refPair {
	t.Helper()
	return &refPair{postern: newTestServer(t, opts...), slapd: startSlapd(t)}
}

// each runs fn against Postern and then slapd.
func (p *refPair) each(fn func(name string, d directory)) {
	fn("postern", p.postern)
	fn("slapd", p.slapd)
}

// addBoth adds e to both as the root DN and fails on an error.
func (p *refPair) addBoth(t *testing.T, e *ldapstore.Entry) {
	t.Helper()
	p.each(func(name string, d directory) {
		if err := d.root().Add(addReq(e.DN, pairs(e)...)); err != nil {
			t.Fatalf("%s: add %s: %v", name, e.DN, err)
		}
	})
}

// code returns the LDAP result code of err (0 for nil, 80 for a non-LDAP
// error).
func code(err error) uint16 {
	if err == nil {
		return 0
	}
	var le *ldap.Error
	if errors.As(err, &le) {
		return le.ResultCode
	}
	return ldap.LDAPResultOther
}

// sortedDNs returns the lower-cased DNs of es, sorted, joined by ";".
func sortedDNs(es []*ldap.Entry) string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = strings.ToLower(e.DN)
	}
	sort.Strings(out)
	return strings.Join(out, ";")
}
