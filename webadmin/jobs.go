package webadmin

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"
)

// A job is a long action started from a page (a join, an LDIF import):
// it runs in the background while its progress page shows the lines so
// far, refreshed live (or by a meta refresh without script).
type job struct {
	ID      string
	Kind    string // "join", "attach", "detach", "import"
	Title   string
	Started time.Time

	mu     sync.Mutex
	lines  []string
	done   bool
	err    string
	result string
}

// jobView is a job's state for a template.
type jobView struct {
	ID, Kind, Title string
	Started         time.Time
	Lines           []string
	Done            bool
	Err             string
	Result          string
}

func (j *job) add(line string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if n := len(j.lines); n > 0 && isProgress(line) && isProgress(j.lines[n-1]) {
		j.lines[n-1] = line // "copied N/M entries" updates in place
		return
	}
	if len(j.lines) < 10000 {
		j.lines = append(j.lines, line)
	}
}

// isProgress reports a progress line that replaces the previous one.
func isProgress(l string) bool {
	return strings.HasPrefix(l, "copied ") || strings.HasPrefix(l, "imported ")
}

func (j *job) finish(result, err string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.done, j.result, j.err = true, result, err
}

func (j *job) view() jobView {
	j.mu.Lock()
	defer j.mu.Unlock()
	return jobView{ID: j.ID, Kind: j.Kind, Title: j.Title, Started: j.Started, Lines: append([]string{}, j.lines...), Done: j.done, Err: j.err, Result: j.result}
}

// jobs are the menu's jobs, the last maxJobs kept.
type jobs struct {
	mu   sync.Mutex
	list []*job
}

const maxJobs = 20

func newJobs() *jobs { return &jobs{} }

// start registers a new job of kind unless one of its group still runs
// (then it returns the running one and false).
func (js *jobs) start(kind, title string, now time.Time) (*job, bool) {
	js.mu.Lock()
	defer js.mu.Unlock()
	for _, j := range js.list {
		if jobGroup(j.Kind) == jobGroup(kind) && !j.view().Done {
			return j, false
		}
	}
	b := make([]byte, 8)
	rand.Read(b)
	j := &job{ID: hex.EncodeToString(b), Kind: kind, Title: title, Started: now}
	js.list = append(js.list, j)
	if len(js.list) > maxJobs {
		js.list = js.list[1:]
	}
	return j, true
}

// jobGroup is what a job changes: a join, an attach and a detach all
// change what this appliance is, so one runs at a time.
func jobGroup(kind string) string {
	switch kind {
	case "join", "attach", "detach":
		return "role"
	}
	return kind
}

// busy is the refusal of a job while j (of its group) still runs.
func busy(j *job) error {
	what := map[string]string{"join": "a join", "attach": "an attach as a frontend server", "detach": "a detach from the LDAP server", "import": "an import"}[j.Kind]
	return fmt.Errorf("busy: %s started from this menu at %s is still running: wait for its result", what, j.Started.UTC().Format(time.RFC3339))
}

// path is the job's progress page.
func (j *job) path() string {
	if j.Kind == "import" {
		return "/directory/import/" + j.ID
	}
	return "/cluster/" + j.Kind + "/" + j.ID
}

// get returns the job with this ID, or nil.
func (js *jobs) get(id string) *job {
	js.mu.Lock()
	defer js.mu.Unlock()
	for _, j := range js.list {
		if j.ID == id {
			return j
		}
	}
	return nil
}
