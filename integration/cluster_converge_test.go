package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Issue 10's sequences on real member processes, compared the way the
// issue compared them: ldapsearch dumps of every member (DN, attributes,
// entryUUID, entryCSN), equal entry by entry. ou=cluster is left out (the
// member records change with every heartbeat).

// tree returns x's directory below the suffix, ou=cluster left out, one
// line per entry (attributes sorted), entries sorted.
func (x *appliance) tree(t *testing.T) string {
	t.Helper()
	out, err := tool(t, nil, "", "ldapsearch", "-x", "-LLL", "-o", "ldif-wrap=no", "-H", x.ldapURL(), "-D", adminDN, "-w", adminPassword,
		"-b", suffix, "(objectClass=*)", "*", "entryUUID", "entryCSN", "createTimestamp", "modifyTimestamp")
	if err != nil {
		return "ERROR " + err.Error() + ": " + out
	}
	var entries []string
	for _, block := range strings.Split(strings.TrimSpace(out), "\n\n") {
		lines := strings.Split(strings.TrimSpace(block), "\n")
		if len(lines) == 0 || strings.HasSuffix(strings.ToLower(lines[0]), "ou=cluster,"+suffix) || strings.Contains(strings.ToLower(lines[0]), ",ou=cluster,"+suffix) {
			continue
		}
		head, rest := strings.ToLower(lines[0]), lines[1:]
		sort.Strings(rest)
		entries = append(entries, head+" | "+strings.Join(rest, " | "))
	}
	sort.Strings(entries)
	return strings.Join(entries, "\n")
}

// waitEqualTrees waits until every member's tree is the same and returns it.
func waitEqualTrees(t *testing.T, within time.Duration, xs ...*appliance) string {
	t.Helper()
	var trees []string
	deadline := time.Now().Add(within)
	for {
		trees = trees[:0]
		same := true
		for _, x := range xs {
			trees = append(trees, x.tree(t))
			if trees[len(trees)-1] != trees[0] {
				same = false
			}
		}
		if same && !strings.HasPrefix(trees[0], "ERROR") {
			return trees[0]
		}
		if time.Now().After(deadline) {
			for i, x := range xs {
				t.Logf("%s:\n%s", x.ip, trees[i])
			}
			t.Fatalf("trees not equal within %s", within)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// logTree logs that n members hold tree alike, and its entries whose DN
// contains one of the words (DN and the attributes that tell the story).
func logTree(t *testing.T, tree string, n int, words ...string) {
	t.Helper()
	lines := strings.Split(tree, "\n")
	var shown []string
	for _, l := range lines {
		dn, rest, _ := strings.Cut(l, " | ")
		for _, w := range words {
			if strings.Contains(dn, w) {
				keep := []string{dn}
				for _, a := range strings.Split(rest, " | ") {
					if strings.HasPrefix(a, "sn: ") || strings.HasPrefix(a, "entryCSN: ") {
						keep = append(keep, a)
					}
				}
				shown = append(shown, strings.Join(keep, " | "))
				break
			}
		}
	}
	t.Logf("%d members hold the same %d entries; among them:\n%s", n, len(lines), strings.Join(shown, "\n"))
}

func (x *appliance) ldapModify(t *testing.T, ldif string) {
	t.Helper()
	mustTool(t, nil, ldif, "ldapmodify", "-x", "-H", x.ldapURL(), "-D", adminDN, "-w", adminPassword)
}

func (x *appliance) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := x.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

func copyTo(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestConvergenceScenarios replays issue 10's sequences on a three-member
// cluster of processes. A partition is: stop Y; write on X; SIGSTOP the
// others; start Y; write on Y; SIGCONT them.
func TestConvergenceScenarios(t *testing.T) {
	f := newClusterFixture(t)
	xs := f.formCluster("127.0.0.21", "127.0.0.22", "127.0.0.23")
	a, b, c := xs[0], xs[1], xs[2]
	ou := func(name string) string {
		return fmt.Sprintf("dn: ou=%s,%s\nchangetype: add\nobjectClass: organizationalUnit\nou: %s\n", name, suffix, name)
	}
	person := func(uid, parent string) string {
		return fmt.Sprintf("dn: uid=%s,%s\nchangetype: add\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\n", uid, parent, uid, uid, uid)
	}
	dept := "ou=dept," + suffix
	a.ldapModify(t, ou("dept")+"\n"+person("k1", dept)+"\n"+person("pre1", "ou=people,"+suffix)+"\n"+person("pre2", "ou=people,"+suffix))
	waitEqualTrees(t, 20*time.Second, xs...)

	t.Run("rename of a parent vs an add below its old DN", func(t *testing.T) {
		b.stop()
		a.ldapModify(t, "dn: "+dept+"\nchangetype: modrdn\nnewrdn: ou=dept2\ndeleteoldrdn: 1\n")
		time.Sleep(500 * time.Millisecond) // c gets the rename
		a.signal(t, syscall.SIGSTOP)
		c.signal(t, syscall.SIGSTOP)
		b.restart()
		b.ldapModify(t, person("k2", dept)) // b has not seen the rename
		a.signal(t, syscall.SIGCONT)
		c.signal(t, syscall.SIGCONT)
		tree := waitEqualTrees(t, 30*time.Second, xs...)
		if !strings.Contains(tree, "dn: uid=k2,ou=dept2,"+suffix) || strings.Contains(tree, "lost+found") || strings.Contains(tree, "posternreplconflict") {
			t.Fatalf("k2 must end below ou=dept2 on every member, unmarked:\n%s", tree)
		}
		logTree(t, tree, len(xs), "k", "dept")
	})

	t.Run("a member restored from an older ldap.db", func(t *testing.T) {
		b.stop()
		backup := filepath.Join(t.TempDir(), "ldap.db")
		copyTo(t, filepath.Join(b.data, "ldap.db"), backup)
		b.restart()
		b.ldapModify(t, person("postB", "ou=people,"+suffix)+"\ndn: uid=pre1,ou=people,"+suffix+"\nchangetype: delete\n\ndn: uid=pre2,ou=people,"+suffix+"\nchangetype: modify\nreplace: sn\nsn: changed on b\n")
		waitEqualTrees(t, 20*time.Second, xs...)
		b.stop()
		copyTo(t, backup, filepath.Join(b.data, "ldap.db"))
		b.restart()
		b.ldapModify(t, person("afterRestore", "ou=people,"+suffix))
		tree := waitEqualTrees(t, 30*time.Second, xs...)
		if !strings.Contains(tree, "dn: uid=postb,ou=people") || strings.Contains(tree, "dn: uid=pre1,") || !strings.Contains(tree, "sn: changed on b") || !strings.Contains(tree, "dn: uid=afterrestore,") {
			t.Fatalf("b's own changes must come back and stay everywhere:\n%s", tree)
		}
		logTree(t, tree, len(xs), "uid=pre", "uid=postb", "uid=afterrestore")
	})

	t.Run("a delete right after a join", func(t *testing.T) {
		a.ldapModify(t, person("x1", "ou=people,"+suffix)+"\n"+person("x2", "ou=people,"+suffix))
		waitEqualTrees(t, 20*time.Second, xs...)
		d := f.start("127.0.0.24")
		id := f.prepare(a, d.ip)
		if out, err := f.join(d, a, id); err != nil {
			t.Fatalf("join: %v\n%s", err, out)
		}
		a.signal(t, syscall.SIGSTOP)
		d.ldapModify(t, "dn: uid=x1,ou=people,"+suffix+"\nchangetype: delete\n\ndn: uid=x2,ou=people,"+suffix+"\nchangetype: modify\nreplace: sn\nsn: after join\n")
		time.Sleep(time.Second)
		a.signal(t, syscall.SIGCONT)
		tree := waitEqualTrees(t, 30*time.Second, a, b, c, d)
		if strings.Contains(tree, "dn: uid=x1,") || !strings.Contains(tree, "sn: after join") {
			t.Fatalf("the delete made right after the join must reach every member:\n%s", tree)
		}
		logTree(t, tree, 4, "uid=x")
		for _, x := range []*appliance{a, b, c, d} {
			x.waitAllOK(t, 4)
		}
	})
}
