package replication

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"postern/internal/testnet"
	"postern/ldapstore"
	"postern/ldapstore/schema"
)

const slapdBin = "/usr/sbin/slapd"

type slapd struct {
	addr string
}

// freePort returns a loopback address with a port nobody listens on now.
func freePort(t testing.TB) string {
	t.Helper()
	return testnet.FreePort(t, "127.0.0.1")
}

// startSlapd starts a stock slapd (back_mdb) holding the suffix, with
// Postern's schema loaded and extra appended to its database section.
func startSlapd(t testing.TB, extra string) *slapd {
	t.Helper()
	if _, err := os.Stat(slapdBin); err != nil {
		t.Fatalf("stock slapd is required (apt-get install slapd): %v", err)
	}
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "postern.schema"), []byte(SlapdSchema(schema.Default())), 0o644))
	must(t, os.Mkdir(filepath.Join(dir, "db"), 0o700))
	addr := freePort(t)
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include %[1]s/postern.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload syncprov
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
database mdb
maxsize 1073741824
suffix "%[2]s"
rootdn "%[3]s"
rootpw "%[4]s"
directory %[1]s/db
index objectClass,entryUUID,entryCSN eq
%[5]s
`, dir, suffix, rootDN, rootPW, extra)
	must(t, os.WriteFile(filepath.Join(dir, "slapd.conf"), []byte(conf), 0o600))
	cmd := exec.Command(slapdBin, "-f", filepath.Join(dir, "slapd.conf"), "-h", "ldap://"+addr+"/", "-d", "0")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	must(t, cmd.Start())
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
	deadline := time.Now().Add(15 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return &slapd{addr: addr}
		}
		select {
		case <-exited:
			t.Fatalf("slapd exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("slapd did not listen on %s: %s", addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *slapd) conn(t testing.TB) *ldap.Conn {
	t.Helper()
	l, err := ldap.DialURL("ldap://" + s.addr)
	must(t, err)
	must(t, l.Bind(rootDN, rootPW))
	t.Cleanup(func() { l.Close() })
	return l
}

// replicated are the attributes compared between Postern and slapd: user
// attributes and the operational ones syncrepl carries.
var replicated = map[string]bool{"entryuuid": true, "entrycsn": true, "createtimestamp": true,
	"modifytimestamp": true, "creatorsname": true, "modifiersname": true}

func renderLDAP(dn string, attrs map[string][]string) string {
	var parts []string
	for k, v := range attrs {
		k = strings.ToLower(k)
		if strings.HasPrefix(k, "structuralobjectclass") {
			continue
		}
		v = append([]string(nil), v...)
		sort.Strings(v)
		parts = append(parts, k+"="+strings.Join(v, "|"))
	}
	sort.Strings(parts)
	return strings.ToLower(dn) + ": " + strings.Join(parts, " ")
}

// slapdTree and posternTree render both trees the same way.
func slapdTree(t testing.TB, l *ldap.Conn) string {
	t.Helper()
	res, err := l.Search(ldap.NewSearchRequest(suffix, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=*)", []string{"*", "+"}, nil))
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return ""
	}
	must(t, err)
	var lines []string
	for _, e := range res.Entries {
		m := map[string][]string{}
		for _, a := range e.Attributes {
			if n := strings.ToLower(a.Name); replicated[n] || userAttr(n) {
				m[a.Name] = a.Values
			}
		}
		lines = append(lines, renderLDAP(e.DN, m))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func userAttr(n string) bool {
	at := schema.Default().Attr(n)
	return at != nil && !at.Operational()
}

func posternTree(t testing.TB, st *ldapstore.Store) string {
	t.Helper()
	var lines []string
	err := st.Search(context.Background(), &ldapstore.SearchRequest{BaseDN: suffix, Scope: ldapstore.ScopeSub}, func(e *ldapstore.Entry) error {
		m := map[string][]string{}
		for _, a := range e.Attributes {
			if n := strings.ToLower(a.Type); replicated[n] || userAttr(n) {
				m[a.Type] = a.Vals
			}
		}
		lines = append(lines, renderLDAP(e.DN, m))
		return nil
	})
	if ldapstore.CodeOf(err) == ldapstore.NoSuchObject {
		return ""
	}
	must(t, err)
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func waitTrees(t testing.TB, what string, a, b func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		x, y := a(), b()
		if x == y && x != "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: trees differ:\n%s", what, diffHint(x, y))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSlapdConsumesPostern: a stock slapd 2.5 with a syncrepl
// refreshAndPersist consumer replicates a Postern store completely,
// including later adds, modifies, modrdns (rename and move) and deletes.
func TestSlapdConsumesPostern(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, 1, "")
	seedTree(t, a.store)
	for i := range 20 {
		must(t, a.store.Add(ctx, person(fmt.Sprintf("s%02d", i), "userPassword", "{SSHA}h0LIjHn83aq+VH9rxi5xx9gha6NzZWNyZXRzYWx0", "description", "first"), rootDN))
	}
	must(t, a.store.Add(ctx, entry("cn=example.com,ou=domains,"+suffix, "objectClass", "posternDomain", "cn", "example.com",
		"posternDeliverTo", "127.0.0.1:25", "posternTLSPolicy", "may"), rootDN))
	s := startSlapd(t, fmt.Sprintf(`syncrepl rid=001 provider=ldap://%s bindmethod=simple binddn="%s" credentials="%s"
  searchbase="%s" type=refreshAndPersist retry="1 +" scope=sub attrs="*,+"`, a.addr, rootDN, rootPW, suffix))
	l := s.conn(t)
	pt := func() string { return posternTree(t, a.store) }
	st := func() string { return slapdTree(t, l) }
	waitTrees(t, "initial refresh", pt, st)

	must(t, a.store.Add(ctx, person("later"), rootDN))
	must(t, a.store.Modify(ctx, person("s01").DN, []ldapstore.Modification{{Op: ldapstore.ModReplace, Attr: ldapstore.Attribute{Type: "description", Vals: []string{"second", "third"}}}}, rootDN))
	must(t, a.store.ModifyDN(ctx, person("s02").DN, "uid=s02renamed", true, "", rootDN))
	must(t, a.store.ModifyDN(ctx, person("s03").DN, "uid=s03", true, "ou=domains,"+suffix, rootDN))
	must(t, a.store.Delete(ctx, person("s04").DN, rootDN))
	must(t, a.store.Modify(ctx, "cn=example.com,ou=domains,"+suffix, []ldapstore.Modification{{Op: ldapstore.ModReplace, Attr: ldapstore.Attribute{Type: "posternTLSPolicy", Vals: []string{"encrypt"}}}}, rootDN))
	waitTrees(t, "persist", pt, st)
}

// TestPosternConsumesSlapd: Postern consumes from a stock slapd syncprov
// provider the same way.
func TestPosternConsumesSlapd(t *testing.T) {
	s := startSlapd(t, "overlay syncprov\nsyncprov-checkpoint 100 1\nsyncprov-sessionlog 1000\n")
	l := s.conn(t)
	add := func(dn string, attrs ...string) {
		t.Helper()
		req := ldap.NewAddRequest(dn, nil)
		e := entry(dn, attrs...)
		for _, a := range e.Attributes {
			req.Attribute(a.Type, a.Vals)
		}
		must(t, l.Add(req))
	}
	add(suffix, "objectClass", "top", "objectClass", "dcObject", "objectClass", "organization", "dc", "postern", "o", "Postern")
	add("ou=people,"+suffix, "objectClass", "organizationalUnit", "ou", "people")
	add("ou=domains,"+suffix, "objectClass", "organizationalUnit", "ou", "domains")
	for i := range 20 {
		add(fmt.Sprintf("uid=p%02d,ou=people,%s", i, suffix), "objectClass", "inetOrgPerson", "uid", fmt.Sprintf("p%02d", i),
			"cn", "P", "sn", "p", "mail", fmt.Sprintf("p%02d@example.com", i))
	}
	add("cn=example.org,ou=domains,"+suffix, "objectClass", "posternDomain", "cn", "example.org", "posternTLSPolicy", "none")
	b := startNode(t, 2, "")
	c, _ := consume(t, b, 1, "slapd", s.addr)
	pt := func() string { return posternTree(t, b.store) }
	st := func() string { return slapdTree(t, l) }
	waitTrees(t, "initial refresh", st, pt)

	add("uid=later,ou=people,"+suffix, "objectClass", "inetOrgPerson", "uid", "later", "cn", "L", "sn", "l")
	mod := ldap.NewModifyRequest(fmt.Sprintf("uid=p01,ou=people,%s", suffix), nil)
	mod.Replace("description", []string{"changed"})
	must(t, l.Modify(mod))
	must(t, l.ModifyDN(ldap.NewModifyDNRequest(fmt.Sprintf("uid=p02,ou=people,%s", suffix), "uid=p02renamed", true, "")))
	must(t, l.ModifyDN(ldap.NewModifyDNRequest(fmt.Sprintf("uid=p03,ou=people,%s", suffix), "uid=p03", true, "ou=domains,"+suffix)))
	must(t, l.Del(ldap.NewDelRequest(fmt.Sprintf("uid=p04,ou=people,%s", suffix), nil)))
	waitTrees(t, "persist", st, pt)
	if s := c.Status(); s.Phase != PhasePersist || !s.Connected {
		t.Fatalf("status %+v", s)
	}
}
