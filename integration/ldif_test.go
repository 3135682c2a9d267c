package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportIsNotARestore is issue 10's fifth fault: importing an export
// taken before a delete and a modify neither resurrects the deleted entry
// nor overwrites the newer change (entries keep their entryUUID and
// entryCSN and lose like older replicated changes); ou=cluster is never
// taken from the file. `ldif restore` is the explicit point-in-time copy:
// it prints its plan and writes nothing without --yes, then makes the
// directory the file's.
func TestImportIsNotARestore(t *testing.T) {
	a := startAppliance(t, "127.0.0.18")
	bind := []string{"-x", "-H", a.ldapURL(), "-D", adminDN, "-w", adminPassword}
	add := func(ldif string) {
		t.Helper()
		mustTool(t, nil, ldif, "ldapadd", bind...)
	}
	add("dn: uid=keep,ou=people," + suffix + "\nobjectClass: inetOrgPerson\nuid: keep\ncn: Keep\nsn: K\n")
	add("dn: uid=gone,ou=people," + suffix + "\nobjectClass: inetOrgPerson\nuid: gone\ncn: Gone\nsn: G\n")
	export, err := a.cli("ldif", "export")
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	file := filepath.Join(t.TempDir(), "backup.ldif")
	if err := os.WriteFile(file, []byte(export), 0o600); err != nil {
		t.Fatal(err)
	}
	mustTool(t, nil, "", "ldapdelete", append(bind, "uid=gone,ou=people,"+suffix)...)
	mustTool(t, nil, "dn: uid=keep,ou=people,"+suffix+"\nchangetype: modify\nreplace: sn\nsn: newer\n", "ldapmodify", bind...)
	add("dn: uid=after,ou=people," + suffix + "\nobjectClass: inetOrgPerson\nuid: after\ncn: After\nsn: A\n")

	out, err := a.cli("ldif", "import", file)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	t.Logf("import of the old export: %s", out)
	if !strings.Contains(out, "older than the directory's state") || !strings.Contains(out, "below ou=cluster skipped") {
		t.Errorf("import summary:\n%s", out)
	}
	tree := mustTool(t, nil, "", "ldapsearch", append(bind, "-LLL", "-b", "ou=people,"+suffix, "(uid=*)", "sn")...)
	if strings.Contains(tree, "uid=gone") || !strings.Contains(tree, "sn: newer") || !strings.Contains(tree, "uid=after") {
		t.Fatalf("an import of an older export changed the directory:\n%s", tree)
	}

	// restore: the plan first, nothing written without --yes
	out, err = a.cli("ldif", "restore", file)
	if exitCode(err) != 0 || !strings.Contains(out, "1 added, 1 changed, 1 deleted") || !strings.Contains(out, "run again with --yes") {
		t.Fatalf("restore without --yes: exit %d\n%s", exitCode(err), out)
	}
	t.Logf("restore plan: %s", out)
	if again := mustTool(t, nil, "", "ldapsearch", append(bind, "-LLL", "-b", "ou=people,"+suffix, "(uid=*)", "sn")...); again != tree {
		t.Fatalf("the plan changed the directory:\n%s", again)
	}
	out, err = a.cli("ldif", "restore", file, "--yes")
	if err != nil || !strings.Contains(out, "restored: 1 added, 1 changed, 1 deleted") {
		t.Fatalf("restore --yes: %v\n%s", err, out)
	}
	tree = mustTool(t, nil, "", "ldapsearch", append(bind, "-LLL", "-b", "ou=people,"+suffix, "(uid=*)", "sn")...)
	if !strings.Contains(tree, "uid=gone") || strings.Contains(tree, "sn: newer") || strings.Contains(tree, "uid=after") {
		t.Fatalf("after the restore the directory is not the file's:\n%s", tree)
	}
	// a second restore of the same file changes nothing
	out, err = a.cli("ldif", "restore", file)
	if !strings.Contains(out, "0 added, 0 changed, 0 deleted") {
		t.Fatalf("restore plan after the restore: %v\n%s", err, out)
	}
}
