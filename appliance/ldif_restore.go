package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/google/uuid"

	"postern/ldapstore"
	"postern/ldapstore/dn"
	"postern/ldapstore/ldif"
)

// RestorePlan is what `postern ldif restore` does, or did: the directory
// becomes the file's, as changes made now.
type RestorePlan struct {
	Entries   int `json:"entries"`   // entries in the file
	Add       int `json:"add"`       // in the file, not in the directory
	Change    int `json:"change"`    // in both, with other attributes or another DN
	Unchanged int `json:"unchanged"` // in both, alike
	Delete    int `json:"delete"`    // in the directory, not in the file
	Skipped   int `json:"skipped"`   // at or below ou=cluster: kept as they are
	// Members is how many cluster members the restore reaches (0: a
	// standalone appliance), Effect says in words what happens to them.
	Members int    `json:"members"`
	Effect  string `json:"effect"`
	Applied bool   `json:"applied"`
	Done    bool   `json:"done,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Restore makes the directory a point-in-time copy of an LDIF export:
// every entry of the file is added, or changed to the file's attributes and
// DN (matched by entryUUID, else by DN); every entry the file does not
// hold is deleted; ou=cluster stays as it is (membership, keys, revocations
// and ACLs are never restored). These are new changes of this member, so
// in a cluster they replicate and every member's directory becomes the
// file's: that is the point (a restore that the cluster undid at once
// would restore nothing), and the plan says so before anything is written.
// With apply false it only returns the plan. progress gets the plan as it
// grows, every restoreChunk entries.
func (a *Appliance) Restore(ctx context.Context, r io.Reader, apply bool, progress func(RestorePlan)) (RestorePlan, error) {
	var p RestorePlan
	sch := a.store.Schema()
	by := a.cfg.AdminDN()
	cluster, err := sch.NormalizeDN("ou=cluster," + a.cfg.Suffix)
	if err != nil {
		return p, err
	}
	below := func(d string) bool {
		n, err := sch.NormalizeDN(d)
		return err == nil && (n == cluster || strings.HasSuffix(n, ","+cluster))
	}
	if st, err := a.ClusterStatus(ctx); err == nil && st.Member {
		p.Members = len(st.Members)
	}
	kept := map[uuid.UUID]bool{}
	lr := ldif.NewReader(r)
	for {
		e, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return p, err
		}
		p.Entries++
		if below(e.DN) {
			p.Skipped++
			continue
		}
		if err := a.restoreEntry(ctx, e, apply, by, kept, &p); err != nil {
			return p, fmt.Errorf("restore %s: %w", e.DN, err)
		}
		if progress != nil && p.Entries%restoreChunk == 0 {
			progress(p)
		}
	}
	// what the file does not hold goes, subordinates first
	var gone []string
	err = a.store.Search(ctx, &ldapstore.SearchRequest{BaseDN: a.cfg.Suffix, Scope: ldapstore.ScopeSub}, func(e *ldapstore.Entry) error {
		id, err := uuid.Parse(e.First("entryUUID"))
		if err != nil || kept[id] || below(e.DN) || ldapstore.IsGlue(e) {
			return nil
		}
		gone = append(gone, e.DN)
		return nil
	})
	if err != nil {
		return p, err
	}
	depth := func(d string) int {
		parsed, _ := dn.Parse(d)
		return len(parsed)
	}
	sort.SliceStable(gone, func(i, j int) bool { return depth(gone[i]) > depth(gone[j]) })
	for _, d := range gone {
		p.Delete++
		if apply {
			if err := a.store.Delete(ctx, d, by); err != nil && ldapstore.CodeOf(err) != ldapstore.NoSuchObject {
				return p, fmt.Errorf("restore: delete %s: %w", d, err)
			}
		}
	}
	p.Effect = restoreEffect(p)
	p.Applied, p.Done = apply, true
	return p, nil
}

// restoreChunk is how often Restore reports progress (entries).
const restoreChunk = 1000

func restoreEffect(p RestorePlan) string {
	what := fmt.Sprintf("%d added, %d changed, %d deleted, %d unchanged; %d below ou=cluster kept as they are",
		p.Add, p.Change, p.Delete, p.Unchanged, p.Skipped)
	if p.Members > 1 {
		return fmt.Sprintf("this appliance is one of %d cluster members: the restore replicates, so every member's directory becomes the file's (%s); changes made anywhere in the cluster after the export are lost", p.Members, what)
	}
	return fmt.Sprintf("this appliance's directory becomes the file's (%s); changes made after the export are lost", what)
}

// restoreEntry plans (and with apply writes) one entry of the file.
func (a *Appliance) restoreEntry(ctx context.Context, e *ldapstore.Entry, apply bool, by string, kept map[uuid.UUID]bool, p *RestorePlan) error {
	var cur *ldapstore.Entry
	var err error
	if id, perr := uuid.Parse(e.First("entryUUID")); perr == nil {
		cur, err = a.store.GetByUUID(ctx, id.String())
	}
	if cur == nil {
		cur, err = a.store.Get(ctx, e.DN)
	}
	if err != nil && ldapstore.CodeOf(err) != ldapstore.NoSuchObject {
		return err
	}
	want := stripOperational(e)
	if cur == nil || ldapstore.IsGlue(cur) {
		p.Add++
		if !apply {
			return nil
		}
		if err := a.store.Add(ctx, want, by); err != nil {
			return err
		}
		added, err := a.store.Get(ctx, want.DN)
		if err != nil {
			return err
		}
		id, _ := uuid.Parse(added.First("entryUUID"))
		kept[id] = true
		return nil
	}
	id, _ := uuid.Parse(cur.First("entryUUID"))
	kept[id] = true
	sameDN := false
	if x, err := a.store.Schema().NormalizeDN(cur.DN); err == nil {
		if y, err := a.store.Schema().NormalizeDN(e.DN); err == nil && x == y {
			sameDN = true
		}
	}
	mods := userDiff(cur, want)
	if sameDN && len(mods) == 0 {
		p.Unchanged++
		return nil
	}
	p.Change++
	if !apply {
		return nil
	}
	if !sameDN {
		parsed, err := dn.Parse(e.DN)
		if err != nil || len(parsed) < 2 {
			return fmt.Errorf("invalid DN %q", e.DN)
		}
		if err := a.store.ModifyDN(ctx, cur.DN, parsed[:1].String(), true, parsed[1:].String(), by); err != nil {
			return err
		}
		mods = userDiff(mustGet(ctx, a.store, e.DN), want)
	}
	if len(mods) == 0 {
		return nil
	}
	return a.store.Modify(ctx, e.DN, mods, by)
}

func mustGet(ctx context.Context, st *ldapstore.Store, d string) *ldapstore.Entry {
	e, err := st.Get(ctx, d)
	if err != nil {
		return &ldapstore.Entry{DN: d}
	}
	return e
}

// userDiff returns the modifications that give cur the user attributes of
// want.
func userDiff(cur, want *ldapstore.Entry) []ldapstore.Modification {
	var mods []ldapstore.Modification
	for _, at := range want.Attributes {
		if !sameValues(cur.Get(at.Type), at.Vals) {
			mods = append(mods, ldapstore.Modification{Op: ldapstore.ModReplace, Attr: at})
		}
	}
	for _, at := range cur.Attributes {
		if !operational[strings.ToLower(at.Type)] && want.Get(at.Type) == nil {
			mods = append(mods, ldapstore.Modification{Op: ldapstore.ModDelete, Attr: ldapstore.Attribute{Type: at.Type}})
		}
	}
	return mods
}

// handleRestore serves POST /v1/ldif/restore?apply=true|false: the plan
// (or the result) as JSON lines, progress first.
func (a *Appliance) handleRestore(w http.ResponseWriter, r *http.Request) {
	if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)
	emit := func(p RestorePlan) {
		enc.Encode(p)
		if flusher != nil {
			flusher.Flush()
		}
	}
	apply := r.URL.Query().Get("apply") == "true"
	p, err := a.Restore(r.Context(), r.Body, apply, emit)
	if err != nil {
		p.Error = err.Error()
		p.Done = false
		a.log.Warn("ldif restore stopped", "err", err, "entries", p.Entries, "applied", apply)
	} else if apply {
		a.log.Warn("ldif restore applied", "effect", p.Effect)
	}
	emit(p)
}
