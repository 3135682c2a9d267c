package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"postern/ldapstore"
	"postern/ldapstore/ldif"
)

// Operational attributes an export carries (like slapcat) for the record,
// and that an import through the ordinary write path leaves to the store.
var operational = map[string]bool{
	"entryuuid": true, "entrycsn": true, "createtimestamp": true, "modifytimestamp": true,
	"creatorsname": true, "modifiersname": true, "structuralobjectclass": true,
	"hassubordinates": true, "subschemasubentry": true,
}

// Export writes the whole tree as LDIF, parents before children.
func (a *Appliance) Export(ctx context.Context, w io.Writer) (int, error) {
	lw := ldif.NewWriter(w)
	n := 0
	var walk func(dn string, scope ldapstore.Scope) error
	walk = func(dn string, scope ldapstore.Scope) error {
		var children []string
		err := a.store.Search(ctx, &ldapstore.SearchRequest{BaseDN: dn, Scope: scope}, func(e *ldapstore.Entry) error {
			out := &ldapstore.Entry{DN: e.DN}
			for _, at := range e.Attributes {
				if l := strings.ToLower(at.Type); l != "hassubordinates" && l != "subschemasubentry" {
					out.Attributes = append(out.Attributes, at)
				}
			}
			n++
			if e.First("hasSubordinates") == "TRUE" {
				children = append(children, e.DN)
			}
			return lw.Write(out)
		})
		if err != nil {
			return err
		}
		for _, c := range children {
			if err := walk(c, ldapstore.ScopeOne); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(a.cfg.Suffix, ldapstore.ScopeBase); err != nil {
		return n, err
	}
	return n, lw.Flush()
}

func (a *Appliance) handleExport(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if _, err := a.Export(r.Context(), w); err != nil {
		// Headers are gone; an LDIF comment makes the failure visible and
		// the truncated file unmistakable.
		fmt.Fprintf(w, "\n# EXPORT FAILED: %v\n", err)
		a.log.Error("ldif export failed", "err", err)
	}
}

// ImportProgress is one line of an import's progress stream.
type ImportProgress struct {
	Entries int     `json:"entries"`
	Added   int     `json:"added"`
	Updated int     `json:"updated"`
	Rate    float64 `json:"rate"`
	Done    bool    `json:"done,omitempty"`
	Error   string  `json:"error,omitempty"`
}

// importChunk is how many entries go to the store in one transaction.
const importChunk = 1000

// Import reads LDIF and writes every entry: new DNs are added, existing
// ones get the imported user attributes (so export → import is
// idempotent). It stops at the first bad record and says which; entries
// before it stay imported. progress is called after every chunk.
func (a *Appliance) Import(ctx context.Context, r io.Reader, progress func(ImportProgress)) (ImportProgress, error) {
	lr := ldif.NewReader(r)
	by := a.cfg.AdminDN()
	var p ImportProgress
	start := time.Now()
	var chunk []*ldapstore.Entry
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		added, updated, err := a.writeChunk(ctx, chunk, by)
		p.Added += added
		p.Updated += updated
		chunk = chunk[:0]
		p.Rate = float64(p.Added+p.Updated) / time.Since(start).Seconds()
		if err == nil && progress != nil {
			progress(p)
		}
		return err
	}
	for {
		e, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			flush()
			return p, err
		}
		p.Entries++
		chunk = append(chunk, stripOperational(e))
		if len(chunk) == importChunk {
			if err := flush(); err != nil {
				return p, err
			}
		}
	}
	if err := flush(); err != nil {
		return p, err
	}
	p.Done = true
	return p, nil
}

func stripOperational(e *ldapstore.Entry) *ldapstore.Entry {
	out := &ldapstore.Entry{DN: e.DN}
	for _, at := range e.Attributes {
		if !operational[strings.ToLower(at.Type)] {
			out.Attributes = append(out.Attributes, at)
		}
	}
	return out
}

// writeChunk adds a chunk in one transaction when none of it exists yet;
// otherwise it goes entry by entry, updating the ones that exist.
func (a *Appliance) writeChunk(ctx context.Context, chunk []*ldapstore.Entry, by string) (added, updated int, err error) {
	if err := a.store.AddBatch(ctx, chunk, by); err == nil {
		return len(chunk), 0, nil
	}
	// AddBatch is all or nothing: go entry by entry to update the entries
	// that exist and to name the one that is wrong.
	for _, e := range chunk {
		err := a.store.Add(ctx, e, by)
		switch ldapstore.CodeOf(err) {
		case ldapstore.Success:
			added++
			continue
		case ldapstore.EntryAlreadyExists:
			if err = a.replaceEntry(ctx, e, by); err == nil {
				updated++
				continue
			}
		}
		return added, updated, fmt.Errorf("import %s: %w", e.DN, err)
	}
	return added, updated, nil
}

// replaceEntry makes the user attributes of the stored entry equal to e's.
func (a *Appliance) replaceEntry(ctx context.Context, e *ldapstore.Entry, by string) error {
	cur, err := a.store.Get(ctx, e.DN)
	if err != nil {
		return err
	}
	var mods []ldapstore.Modification
	for _, at := range e.Attributes {
		if strings.EqualFold(at.Type, "objectClass") && sameValues(cur.Get("objectClass"), at.Vals) {
			continue
		}
		mods = append(mods, ldapstore.Modification{Op: ldapstore.ModReplace, Attr: at})
	}
	for _, at := range cur.Attributes {
		if !operational[strings.ToLower(at.Type)] && e.Get(at.Type) == nil {
			mods = append(mods, ldapstore.Modification{Op: ldapstore.ModDelete, Attr: ldapstore.Attribute{Type: at.Type}})
		}
	}
	if len(mods) == 0 {
		return nil
	}
	return a.store.Modify(ctx, e.DN, mods, by)
}

func sameValues(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, v := range a {
		seen[strings.ToLower(v)]++
	}
	for _, v := range b {
		if seen[strings.ToLower(v)]--; seen[strings.ToLower(v)] < 0 {
			return false
		}
	}
	return true
}

func (a *Appliance) handleImport(w http.ResponseWriter, r *http.Request) {
	// Progress goes out while the body still comes in.
	if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)
	emit := func(p ImportProgress) {
		enc.Encode(p)
		if flusher != nil {
			flusher.Flush()
		}
	}
	p, err := a.Import(r.Context(), r.Body, emit)
	if err != nil {
		var le *ldif.Error
		if errors.As(err, &le) {
			p.Error = err.Error()
		} else {
			p.Error = "ldif: " + err.Error()
		}
		a.log.Warn("ldif import stopped", "err", err, "entries", p.Entries)
	}
	emit(p)
}
