package appliance

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// What the command line says when it is used wrongly: every usage error
// exits 2 with one message (and a suggestion for a misspelt command),
// every failure exits 1 with one message, `--help` on any command prints
// its options and exits 0.

// commands are the top-level commands, subcommands their subcommands (for
// suggestions and help).
var (
	commands    = []string{"serve", "version", "status", "system", "ldif", "domain", "relay", "queue", "cluster", "keys", "ca", "policy", "admin", "wait", "stop", "ntpd", "help"}
	subcommands = map[string][]string{
		"system":  {"show", "set"},
		"ldif":    {"export", "import", "restore"},
		"domain":  {"add", "list", "remove"},
		"relay":   {"show", "networks", "smarthost"},
		"queue":   {"list", "show", "flush", "delete"},
		"cluster": {"prepare", "join", "check", "status", "leave", "remove", "forget", "protect", "inject", "compare", "readdress", "rekey", "password", "frontend", "backend"},
		"admin":   {"password", "token"},
		"keys":    {"generate", "import", "export", "list", "delete"},
		"ca":      {"init"},
		"policy":  {"set", "show"},
	}
)

// groups are the commands whose words are followed by a subcommand, not
// options (`postern cluster frontend attach …`).
var groups = []string{"system", "ldif", "domain", "relay", "queue", "cluster", "admin", "keys", "ca", "policy", "cluster frontend", "cluster backend", "admin token"}

// groupHelp prints the usage lines of a command group when it is asked for
// help in place of a subcommand (`postern cluster --help`, `postern cluster
// frontend --help`) and reports whether it did; a subcommand's own --help
// is its FlagSet's.
func groupHelp(cmd string, rest []string, w io.Writer) bool {
	path := []string{cmd}
	for _, word := range rest {
		switch word {
		case "-h", "-help", "--help", "help":
			name := strings.Join(path, " ")
			if !slices.Contains(groups, name) {
				return false
			}
			var b strings.Builder
			usage(&b)
			fmt.Fprintf(w, "usage of postern %s:\n", name)
			for _, l := range strings.Split(b.String(), "\n") {
				if t := strings.TrimSpace(l); strings.HasPrefix(t, name+" ") {
					fmt.Fprintf(w, "  postern %s\n", t)
				}
			}
			fmt.Fprintf(w, "run `postern %s SUBCOMMAND --help` for a subcommand's options\n", name)
			return true
		}
		if strings.HasPrefix(word, "-") {
			return false
		}
		path = append(path, word)
	}
	return false
}

// helpRequest is returned when a command was asked for --help: Main prints
// the FlagSet's options and exits 0.
type helpRequest struct{ fs *flag.FlagSet }

func (helpRequest) Error() string { return "help requested" }

// printHelp prints a FlagSet's usage line and options.
func printHelp(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: postern %s [options]\n", fs.Name())
	if line := usageLine(fs.Name()); line != "" {
		fmt.Fprintf(w, "  %s\n", line)
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w, "\noptions:")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}

// usageLine returns the line of the overview that starts with name.
func usageLine(name string) string {
	var b strings.Builder
	usage(&b)
	for _, l := range strings.Split(b.String(), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, name) {
			return l
		}
	}
	return ""
}

// unknown is the usage error for a word that is not one of choices, with
// a suggestion when one is close.
func unknown(what, word string, choices []string) error {
	msg := fmt.Sprintf("unknown %s %q", what, word)
	if s := suggest(word, choices); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return usageError{msg + "; want " + strings.Join(choices, ", ")}
}

// suggest returns the choice closest to word: a unique prefix match, or an
// edit distance of at most 2 ("" when none is that close).
func suggest(word string, choices []string) string {
	best, bestD := "", 3
	for _, c := range choices {
		if d := editDistance(strings.ToLower(word), c); d < bestD {
			best, bestD = c, d
		}
	}
	if best != "" {
		return best
	}
	var pre []string
	for _, c := range choices {
		if len(word) >= 2 && strings.HasPrefix(c, strings.ToLower(word)) {
			pre = append(pre, c)
		}
	}
	if len(pre) == 1 {
		return pre[0]
	}
	return ""
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// cleanMessage drops a package prefix the command name already says
// ("postern cluster: cluster: …").
func cleanMessage(cmd, msg string) string {
	for _, p := range []string{cmd + ": ", "appliance: ", "cluster: ", "ldapstore: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}

// flagError turns a flag parse error into a usage error naming the help.
func flagError(fs *flag.FlagSet, err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return helpRequest{fs}
	}
	return usageError{fmt.Sprintf("%v (see postern %s --help)", err, fs.Name())}
}
