package server

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenLDAPClients drives the server with OpenLDAP's command-line
// clients, as admins and scripts do. They are required in CI.
func TestOpenLDAPClients(t *testing.T) {
	for _, tool := range []string{"ldapsearch", "ldapadd", "ldapmodify", "ldapwhoami", "ldappasswd", "ldapcompare", "ldapmodrdn", "ldapdelete"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install the OpenLDAP client tools (ldap-utils): %v", tool, err)
		}
	}
	ts := newTestServer(t)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, ts.caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	uri := "ldap://" + ts.addr
	env := append(os.Environ(), "HOME="+dir, "LDAPCONF=/dev/null", "LDAPTLS_CACERT="+ca, "LDAPTLS_REQCERT=demand")
	run := func(wantExit int, stdin string, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = env
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if code != wantExit {
			t.Fatalf("%s %v: exit %d, want %d\nstdout: %s\nstderr: %s", name, args, code, wantExit, out.String(), errb.String())
		}
		return out.String() + errb.String()
	}
	root := []string{"-x", "-H", uri, "-D", testRootDN, "-w", testRootPW}
	rootTLS := []string{"-x", "-ZZ", "-H", uri, "-D", testRootDN, "-w", testRootPW}
	withArgs := func(base []string, more ...string) []string { return append(append([]string{}, base...), more...) }

	// Root DSE and subschema, anonymously, like `ldapsearch -s base +`.
	out := run(0, "", "ldapsearch", "-x", "-LLL", "-H", uri, "-b", "", "-s", "base", "+")
	for _, want := range []string{"namingContexts: " + testSuffix, "supportedLDAPVersion: 3", "vendorName: Postern", "supportedExtension: " + OIDWhoAmI} {
		if !strings.Contains(out, want) {
			t.Errorf("root DSE lacks %q:\n%s", want, out)
		}
	}
	out = run(0, "", "ldapsearch", "-x", "-LLL", "-H", uri, "-b", "cn=Subschema", "-s", "base", "+")
	if !strings.Contains(out, "attributeTypes: ( 0.9.2342.19200300.100.1.1 ") && !strings.Contains(out, "NAME ( 'uid'") && !strings.Contains(out, "NAME 'uid'") {
		t.Errorf("subschema lacks uid:\n%.2000s", out)
	}
	// Anonymous reads of the tree are refused: exit code = result code 50.
	run(50, "", "ldapsearch", "-x", "-LLL", "-H", uri, "-b", testSuffix, "(uid=alice)")

	// Search over StartTLS, equality on uid and mail.
	out = run(0, "", "ldapsearch", withArgs(rootTLS, "-LLL", "-b", testSuffix, "(uid=alice)", "mail")...)
	if !strings.Contains(out, "dn: "+testUserDN) || !strings.Contains(out, "mail: alice@example.com") {
		t.Errorf("uid search:\n%s", out)
	}
	out = run(0, "", "ldapsearch", withArgs(root, "-LLL", "-b", testSuffix, "(mail=bob@example.com)", "1.1")...)
	if strings.TrimSpace(out) != "dn: "+testOtherDN {
		t.Errorf("mail search:\n%s", out)
	}
	// Paged results with the -E extension: ldapsearch pages through all.
	out = run(0, "", "ldapsearch", withArgs(root, "-LLL", "-E", "pr=1/noprompt", "-b", testSuffix, "(objectClass=*)", "1.1")...)
	if n := strings.Count(out, "dn: "); n != 5 {
		t.Errorf("paged search returned %d entries:\n%s", n, out)
	}
	// RFC 4526 absolute true and false filters.
	out = run(0, "", "ldapsearch", withArgs(root, "-LLL", "-b", testSuffix, "-s", "base", "(&)", "1.1")...)
	if strings.TrimSpace(out) != "dn: "+testSuffix {
		t.Errorf("(&) search:\n%s", out)
	}
	out = run(0, "", "ldapsearch", withArgs(root, "-LLL", "-b", testSuffix, "-s", "base", "(|)", "1.1")...)
	if strings.TrimSpace(out) != "" {
		t.Errorf("(|) search:\n%s", out)
	}
	// Size limit: exit code 4 with the entries.
	out = run(4, "", "ldapsearch", withArgs(root, "-LLL", "-z", "2", "-b", testSuffix, "(objectClass=*)", "1.1")...)
	if n := strings.Count(out, "dn: "); n != 2 {
		t.Errorf("size-limited search returned %d entries:\n%s", n, out)
	}

	// Add, modify, compare, rename, delete.
	run(0, "dn: cn=example.com,ou=domains,"+testSuffix+"\nobjectClass: posternDomain\ncn: example.com\nposternDeliverTo: mx.example.com:25\n",
		"ldapadd", root...)
	run(68, "dn: cn=example.com,ou=domains,"+testSuffix+"\nobjectClass: posternDomain\ncn: example.com\n", "ldapadd", root...)
	run(0, "dn: cn=example.com,ou=domains,"+testSuffix+"\nchangetype: modify\nreplace: posternTLSPolicy\nposternTLSPolicy: encrypt\n-\nadd: description\ndescription: test\n",
		"ldapmodify", root...)
	run(6, "", "ldapcompare", withArgs(root, "cn=example.com,ou=domains,"+testSuffix, "posternTLSPolicy:encrypt")...)
	run(5, "", "ldapcompare", withArgs(root, "cn=example.com,ou=domains,"+testSuffix, "posternTLSPolicy:none")...)
	run(0, "", "ldapmodrdn", withArgs(root, "-r", "cn=example.com,ou=domains,"+testSuffix, "cn=example.org")...)
	out = run(0, "", "ldapsearch", withArgs(root, "-LLL", "-b", "cn=example.org,ou=domains,"+testSuffix, "-s", "base", "(objectClass=*)", "cn", "posternTLSPolicy")...)
	if !strings.Contains(out, "posternTLSPolicy: encrypt") || strings.Contains(out, "cn: example.com") {
		t.Errorf("after modify and modrdn:\n%s", out)
	}
	run(66, "", "ldapdelete", withArgs(root, "ou=people,"+testSuffix)...)
	run(0, "", "ldapdelete", withArgs(root, "cn=example.org,ou=domains,"+testSuffix)...)
	run(32, "", "ldapdelete", withArgs(root, "cn=example.org,ou=domains,"+testSuffix)...)
	// A user may not write.
	run(50, "dn: cn=x.example,ou=domains,"+testSuffix+"\nobjectClass: posternDomain\ncn: x.example\n",
		"ldapadd", "-x", "-H", uri, "-D", testUserDN, "-w", testUserPW)

	// WhoAmI and Password Modify.
	out = run(0, "", "ldapwhoami", "-x", "-H", uri, "-D", testUserDN, "-w", testUserPW)
	if strings.TrimSpace(out) != "dn:"+testUserDN {
		t.Errorf("ldapwhoami: %q", out)
	}
	out = run(0, "", "ldapwhoami", "-x", "-H", uri)
	if strings.TrimSpace(out) != "anonymous" {
		t.Errorf("anonymous ldapwhoami: %q", out)
	}
	run(0, "", "ldappasswd", "-x", "-H", uri, "-D", testUserDN, "-w", testUserPW, "-a", testUserPW, "-s", "changed")
	run(49, "", "ldapwhoami", "-x", "-H", uri, "-D", testUserDN, "-w", testUserPW)
	run(0, "", "ldapwhoami", "-x", "-H", uri, "-D", testUserDN, "-w", "changed")
	out = run(0, "", "ldappasswd", withArgs(root, testOtherDN)...)
	gen := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "New password:"))
	if gen == "" || strings.Contains(gen, "\n") {
		t.Fatalf("ldappasswd generated password output %q", out)
	}
	run(0, "", "ldapwhoami", "-x", "-H", uri, "-D", testOtherDN, "-w", gen)
}
