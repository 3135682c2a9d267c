package integration

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestTestToolCapabilities runs `.ci/deps.sh --check`: every capability the
// tests need (swaks with STARTTLS, slapd with syncprov, ...) is present, as
// checked by the capability, not by a binary's presence.
func TestTestToolCapabilities(t *testing.T) {
	out, err := exec.Command("bash", "../.ci/deps.sh", "--check").CombinedOutput()
	if err != nil {
		t.Fatalf("deps.sh --check: %v\n%s", err, out)
	}
}

// TestTestToolsDeclared proves that .ci/deps.sh names every Debian package
// whose programs the tests run: it finds every program a test starts
// (exec.Command, exec.CommandContext, exec.LookPath and the tests' tool
// helpers, with string literals or constants), asks dpkg which package
// ships it, and requires that package in deps.sh's list unless Debian
// installs it on every system (Priority required or important).
func TestTestToolsDeclared(t *testing.T) {
	out, err := exec.Command("bash", "../.ci/deps.sh", "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if _, pkgs, ok := strings.Cut(line, "\t"); ok {
			for _, p := range strings.Fields(pkgs) {
				declared[p] = true
			}
		}
	}
	progs := map[string][]string{} // program -> files that run it
	err = filepath.WalkDir("..", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "var" || strings.HasPrefix(d.Name(), "var")) && p != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") {
			return nil
		}
		for _, prog := range programsRunBy(t, p) {
			progs[prog] = append(progs[prog], p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(progs) < 5 {
		t.Fatalf("found only %d programs run by tests: the scan is broken", len(progs))
	}
	var names []string
	for n := range progs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, prog := range names {
		path := prog
		if !filepath.IsAbs(path) {
			p, err := exec.LookPath(prog)
			if err != nil {
				for _, d := range []string{"/usr/sbin", "/sbin"} {
					if _, e := os.Stat(filepath.Join(d, prog)); e == nil {
						p, err = filepath.Join(d, prog), nil
					}
				}
			}
			if err != nil {
				t.Errorf("%s (run by %v) is not installed: add its package to .ci/deps.sh", prog, progs[prog])
				continue
			}
			path = p
		}
		if strings.HasPrefix(path, "/usr/local/go/") || filepath.Base(path) == "go" {
			continue // the toolchain, a prerequisite of make test
		}
		real, err := filepath.EvalSymlinks(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		pkg := ""
		for _, cand := range []string{path, real, "/usr" + real, strings.TrimPrefix(real, "/usr")} {
			if o, err := exec.Command("dpkg", "-S", cand).Output(); err == nil {
				pkg, _, _ = strings.Cut(strings.TrimSpace(string(o)), ":")
				break
			}
		}
		if pkg == "" {
			t.Errorf("%s (%s, run by %v) belongs to no Debian package", prog, real, progs[prog])
			continue
		}
		if declared[pkg] {
			continue
		}
		prio, _ := exec.Command("dpkg-query", "-W", "-f=${Priority}", pkg).Output()
		if p := string(prio); p == "required" || p == "important" {
			continue
		}
		t.Errorf("%s (package %s, priority %s, run by %v) is not in .ci/deps.sh", prog, pkg, prio, progs[prog])
	}
	t.Logf("programs run by tests: %v", names)
}

// programsRunBy returns the program names a Go file passes to exec.Command,
// exec.CommandContext or exec.LookPath, or as the program argument of a
// helper whose name ends in "tool" or "Tool" (integration's tool, mustTool).
func programsRunBy(t *testing.T, path string) []string {
	fs := token.NewFileSet()
	f, err := parser.ParseFile(fs, path, nil, 0)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	consts := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok {
			for i, name := range vs.Names {
				if i < len(vs.Values) {
					if bl, ok := vs.Values[i].(*ast.BasicLit); ok && bl.Kind == token.STRING {
						consts[name.Name], _ = strconv.Unquote(bl.Value)
					}
				}
			}
		}
		return true
	})
	str := func(e ast.Expr) string {
		switch v := e.(type) {
		case *ast.BasicLit:
			if v.Kind == token.STRING {
				s, _ := strconv.Unquote(v.Value)
				return s
			}
		case *ast.Ident:
			return consts[v.Name]
		}
		return ""
	}
	var progs []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		name := ""
		switch fn := call.Fun.(type) {
		case *ast.SelectorExpr:
			if x, ok := fn.X.(*ast.Ident); ok && x.Name == "exec" {
				name = "exec." + fn.Sel.Name
			}
		case *ast.Ident:
			name = fn.Name
		}
		var arg ast.Expr
		switch {
		case name == "exec.Command" || name == "exec.LookPath":
			if len(call.Args) > 0 {
				arg = call.Args[0]
			}
		case name == "exec.CommandContext":
			if len(call.Args) > 1 {
				arg = call.Args[1]
			}
		case strings.HasSuffix(name, "tool") || strings.HasSuffix(name, "Tool"):
			for _, a := range call.Args {
				if s := str(a); s != "" && !strings.ContainsAny(s, " \n=:") {
					arg = a
					break
				}
			}
		}
		if arg == nil {
			return true
		}
		if s := str(arg); s != "" && !strings.ContainsAny(s, " \n") {
			progs = append(progs, s)
		}
		return true
	})
	return progs
}
