package integration

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

const (
	suffix  = "dc=postern,dc=local"
	adminDN = "cn=admin," + suffix
)

// TestOpenLDAPClients drives a running appliance with OpenLDAP's own
// command-line clients, over plain LDAP, StartTLS and LDAPS.
func TestOpenLDAPClients(t *testing.T) {
	a := startAppliance(t, "127.0.0.2")
	bind := []string{"-x", "-H", a.ldapURL(), "-D", adminDN, "-w", adminPassword}
	tlsEnv := []string{"LDAPTLS_CACERT=" + filepath.Join(a.data, "tls.crt"), "LDAPTLS_REQCERT=demand"}

	// The embedded default tree is there on the first start.
	out := mustTool(t, nil, "", "ldapsearch", append(bind, "-LLL", "-b", suffix, "dn")...)
	for _, dn := range []string{"dn: " + suffix, "dn: ou=people," + suffix, "dn: ou=domains," + suffix, "dn: ou=config," + suffix, "dn: ou=cluster," + suffix} {
		if !strings.Contains(out, dn+"\n") {
			t.Fatalf("tree lacks %q:\n%s", dn, out)
		}
	}

	people := "ou=people," + suffix
	mustTool(t, nil, fmt.Sprintf(`dn: uid=alice,%[1]s
objectClass: inetOrgPerson
uid: alice
cn: Alice Example
sn: Example
mail: alice@example.com
userPassword: alice-pw-1

dn: uid=bob,%[1]s
objectClass: inetOrgPerson
uid: bob
cn: Bob Example
sn: Example
mail: bob@example.com
`, people), "ldapadd", bind...)

	// Equality search by uid and by mail, attribute selection.
	out = mustTool(t, nil, "", "ldapsearch", append(bind, "-LLL", "-b", suffix, "(uid=alice)", "mail")...)
	if !strings.Contains(out, "dn: uid=alice,"+people) || !strings.Contains(out, "mail: alice@example.com") || strings.Contains(out, "cn:") {
		t.Fatalf("search by uid:\n%s", out)
	}
	out = mustTool(t, nil, "", "ldapsearch", append(bind, "-LLL", "-b", suffix, "(&(objectClass=person)(mail=BOB@example.com))", "1.1")...)
	if strings.TrimSpace(out) != "dn: uid=bob,"+people {
		t.Fatalf("search by mail, 1.1:\n%s", out)
	}
	// Operational attributes only on request.
	out = mustTool(t, nil, "", "ldapsearch", append(bind, "-LLL", "-b", "uid=bob,"+people, "-s", "base", "+")...)
	for _, at := range []string{"entryUUID: ", "entryCSN: ", "createTimestamp: ", "modifyTimestamp: ", "creatorsName: " + adminDN, "modifiersName: ", "structuralObjectClass: inetOrgPerson", "hasSubordinates: FALSE", "subschemaSubentry: cn=Subschema"} {
		if !strings.Contains(out, at) {
			t.Fatalf("operational attribute %q missing:\n%s", at, out)
		}
	}
	if !strings.Contains(out, "#001#") {
		t.Fatalf("entryCSN not from server ID 001:\n%s", out)
	}

	// ldapmodify: replace, add a value, increment-free change of description.
	mustTool(t, nil, fmt.Sprintf(`dn: uid=bob,%s
changetype: modify
replace: mail
mail: robert@example.com
-
add: description
description: renamed soon
`, people), "ldapmodify", bind...)
	out = mustTool(t, nil, "", "ldapsearch", append(bind, "-LLL", "-b", suffix, "(uid=bob)", "mail", "description")...)
	if !strings.Contains(out, "mail: robert@example.com") || !strings.Contains(out, "description: renamed soon") {
		t.Fatalf("after modify:\n%s", out)
	}
	// A modify that breaks the schema is refused with objectClassViolation.
	out, err := tool(t, nil, fmt.Sprintf("dn: uid=bob,%s\nchangetype: modify\ndelete: sn\n", people), "ldapmodify", bind...)
	if exitCode(err) != 65 {
		t.Fatalf("deleting a MUST attribute: exit %d, want 65 (objectClassViolation):\n%s", exitCode(err), out)
	}

	// ldapcompare: exit 6 is compareTrue, 5 compareFalse.
	out, err = tool(t, nil, "", "ldapcompare", append(bind, "uid=alice,"+people, "mail:alice@example.com")...)
	if exitCode(err) != 6 || !strings.Contains(out, "TRUE") {
		t.Fatalf("compare true: exit %d\n%s", exitCode(err), out)
	}
	out, err = tool(t, nil, "", "ldapcompare", append(bind, "uid=alice,"+people, "mail:nobody@example.com")...)
	if exitCode(err) != 5 || !strings.Contains(out, "FALSE") {
		t.Fatalf("compare false: exit %d\n%s", exitCode(err), out)
	}

	// A user binds with its own password; wrong passwords get 49.
	aliceDN := "uid=alice," + people
	out = mustTool(t, nil, "", "ldapwhoami", "-x", "-H", a.ldapURL(), "-D", aliceDN, "-w", "alice-pw-1")
	if strings.TrimSpace(out) != "dn:"+aliceDN {
		t.Fatalf("whoami as alice: %q", out)
	}
	out, err = tool(t, nil, "", "ldapwhoami", "-x", "-H", a.ldapURL(), "-D", aliceDN, "-w", "wrong")
	if exitCode(err) != 49 {
		t.Fatalf("wrong password: exit %d, want 49\n%s", exitCode(err), out)
	}
	// The stored userPassword is hashed, never the plain text.
	out = mustTool(t, nil, "", "ldapsearch", append(bind, "-LLL", "-b", aliceDN, "-s", "base", "userPassword")...)
	if strings.Contains(out, "alice-pw-1") || !strings.Contains(out, "userPassword:: ") {
		t.Fatalf("userPassword not hashed:\n%s", out)
	}
	// A user reads the tree but may not write it.
	out = mustTool(t, nil, "", "ldapsearch", "-x", "-H", a.ldapURL(), "-D", aliceDN, "-w", "alice-pw-1", "-LLL", "-b", suffix, "(uid=bob)", "uid")
	if !strings.Contains(out, "uid: bob") {
		t.Fatalf("user read:\n%s", out)
	}
	out, err = tool(t, nil, "dn: uid=bob,"+people+"\nchangetype: delete\n", "ldapmodify", "-x", "-H", a.ldapURL(), "-D", aliceDN, "-w", "alice-pw-1")
	if exitCode(err) != 50 {
		t.Fatalf("user write: exit %d, want 50 (insufficientAccessRights)\n%s", exitCode(err), out)
	}

	// ldappasswd over StartTLS (-ZZ demands it): alice changes her own.
	mustTool(t, tlsEnv, "", "ldappasswd", "-x", "-ZZ", "-H", a.ldapURL(), "-D", aliceDN, "-w", "alice-pw-1", "-a", "alice-pw-1", "-s", "alice-pw-2")
	out, err = tool(t, nil, "", "ldapwhoami", "-x", "-H", a.ldapURL(), "-D", aliceDN, "-w", "alice-pw-1")
	if exitCode(err) != 49 {
		t.Fatalf("old password after change: exit %d\n%s", exitCode(err), out)
	}
	out = mustTool(t, tlsEnv, "", "ldapwhoami", "-x", "-H", a.ldapsURL(), "-D", aliceDN, "-w", "alice-pw-2")
	if strings.TrimSpace(out) != "dn:"+aliceDN {
		t.Fatalf("whoami over LDAPS with new password: %q", out)
	}
	// The admin sets a password and gets a generated one back.
	out = mustTool(t, tlsEnv, "", "ldappasswd", "-x", "-ZZ", "-H", a.ldapURL(), "-D", adminDN, "-w", adminPassword, "uid=bob,"+people)
	if !strings.Contains(out, "New password: ") {
		t.Fatalf("generated password: %q", out)
	}

	// ldapmodrdn: rename, then move below another parent.
	mustTool(t, nil, "", "ldapmodrdn", append(bind, "-r", "uid=bob,"+people, "uid=robert")...)
	mustTool(t, nil, "", "ldapmodrdn", append(bind, "-r", "-s", "ou=config,"+suffix, "uid=robert,"+people, "uid=robert")...)
	out = mustTool(t, nil, "", "ldapsearch", append(bind, "-LLL", "-b", suffix, "(mail=robert@example.com)", "uid")...)
	if !strings.Contains(out, "dn: uid=robert,ou=config,"+suffix) || strings.Contains(out, "uid: bob") {
		t.Fatalf("after rename and move:\n%s", out)
	}

	// ldapdelete: a non-leaf is refused (66), a leaf goes.
	out, err = tool(t, nil, "", "ldapdelete", append(bind, "ou=people,"+suffix)...)
	if exitCode(err) != 66 {
		t.Fatalf("delete non-leaf: exit %d, want 66\n%s", exitCode(err), out)
	}
	mustTool(t, nil, "", "ldapdelete", append(bind, "uid=robert,ou=config,"+suffix)...)
	out, err = tool(t, nil, "", "ldapsearch", append(bind, "-LLL", "-b", "uid=robert,ou=config,"+suffix, "-s", "base")...)
	if exitCode(err) != 32 {
		t.Fatalf("deleted entry: exit %d, want 32 (noSuchObject)\n%s", exitCode(err), out)
	}

	// Anonymous: the root DSE and the schema, nothing of the tree.
	out = mustTool(t, nil, "", "ldapsearch", "-x", "-H", a.ldapURL(), "-LLL", "-b", "", "-s", "base", "+")
	for _, want := range []string{"namingContexts: " + suffix, "supportedLDAPVersion: 3", "supportedExtension: 1.3.6.1.4.1.1466.20037", "supportedExtension: 1.3.6.1.4.1.4203.1.11.1", "supportedExtension: 1.3.6.1.4.1.4203.1.11.3", "supportedControl: 1.2.840.113556.1.4.319", "contextCSN: "} {
		if !strings.Contains(out, want) {
			t.Fatalf("root DSE lacks %q:\n%s", want, out)
		}
	}
	out = mustTool(t, nil, "", "ldapsearch", "-x", "-o", "ldif-wrap=no", "-H", a.ldapURL(), "-LLL", "-b", "cn=Subschema", "-s", "base", "objectClasses")
	if !strings.Contains(out, "NAME 'inetOrgPerson'") || !strings.Contains(out, "NAME 'posternDomain'") {
		t.Fatalf("subschema lacks classes:\n%.2000s", out)
	}
	out, err = tool(t, nil, "", "ldapsearch", "-x", "-H", a.ldapURL(), "-LLL", "-b", suffix, "(uid=alice)")
	if strings.Contains(out, "uid=alice") {
		t.Fatalf("anonymous read the tree (exit %d):\n%s", exitCode(err), out)
	}

	// Paged results (RFC 2696) through ldapsearch -E pr=.
	for i := 0; i < 25; i++ {
		mustTool(t, nil, fmt.Sprintf("dn: cn=p%02d,%s\nobjectClass: person\ncn: p%02d\nsn: P\n", i, people, i), "ldapadd", bind...)
	}
	out = mustTool(t, nil, "", "ldapsearch", append(bind, "-LLL", "-E", "pr=10/noprompt", "-b", people, "(objectClass=person)", "1.1")...)
	if n := strings.Count(out, "dn: "); n != 26 {
		t.Fatalf("paged search returned %d entries, want 26:\n%s", n, out)
	}
	// An unknown critical control is refused with unavailableCriticalExtension.
	out, err = tool(t, nil, "", "ldapsearch", append(bind, "-LLL", "-e", "!1.2.3.4.5.6.7", "-b", suffix, "-s", "base")...)
	if exitCode(err) != 12 {
		t.Fatalf("unknown critical control: exit %d, want 12\n%s", exitCode(err), out)
	}
	// Size limit: entries up to the limit, then sizeLimitExceeded (4).
	out, err = tool(t, nil, "", "ldapsearch", append(bind, "-LLL", "-z", "5", "-b", people, "(objectClass=person)", "1.1")...)
	if exitCode(err) != 4 || strings.Count(out, "dn: ") != 5 {
		t.Fatalf("size limit: exit %d, %d entries\n%s", exitCode(err), strings.Count(out, "dn: "), out)
	}
}
