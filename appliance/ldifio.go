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

// Export writes the whole tree as LDIF, parents before children, without
// the private keys of secure mail.
func (a *Appliance) Export(ctx context.Context, w io.Writer) (int, error) {
	return a.ExportWith(ctx, w, false)
}

// ExportWith writes the whole tree as LDIF; privateKeys keeps the
// posternPrivateKey values, which are sealed under the cluster's KEK and
// stay so (kek.go): a backup restores them on a cluster that has the KEK.
func (a *Appliance) ExportWith(ctx context.Context, w io.Writer, privateKeys bool) (int, error) {
	lw := ldif.NewWriter(w)
	n := 0
	var walk func(dn string, scope ldapstore.Scope) error
	walk = func(dn string, scope ldapstore.Scope) error {
		var children []string
		err := a.store.Search(ctx, &ldapstore.SearchRequest{BaseDN: dn, Scope: scope}, func(e *ldapstore.Entry) error {
			out := &ldapstore.Entry{DN: e.DN}
			for _, at := range e.Attributes {
				if l := strings.ToLower(at.Type); l != "hassubordinates" && l != "subschemasubentry" && (privateKeys || l != "posternprivatekey") {
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
	if _, err := a.ExportWith(r.Context(), w, r.URL.Query().Get("private_keys") == "true"); err != nil {
		// Headers are gone; an LDIF comment makes the failure visible and
		// the truncated file unmistakable.
		fmt.Fprintf(w, "\n# EXPORT FAILED: %v\n", err)
		a.log.Error("ldif export failed", "err", err)
	}
}

// ImportProgress is one line of an import's progress stream.
type ImportProgress struct {
	Entries int `json:"entries"`
	Added   int `json:"added"`
	Updated int `json:"updated"`
	// Applied counts entries that carried entryUUID and entryCSN (an
	// export) and were newer than the directory's state; Stale those that
	// were not (the directory changed or deleted them since the export:
	// an older change loses, as a replicated one would).
	Applied int `json:"applied"`
	Stale   int `json:"stale"`
	// Skipped counts entries at or below ou=cluster: cluster membership,
	// keys, revocations, allowed IPs and the injection ACL are never taken
	// from an LDIF file.
	Skipped int     `json:"skipped"`
	Rate    float64 `json:"rate"`
	Done    bool    `json:"done,omitempty"`
	Error   string  `json:"error,omitempty"`
}

// importChunk is how many entries go to the store in one transaction.
const importChunk = 1000

// Import reads LDIF and writes every entry, in the file's order:
//
//   - an entry with entryUUID and entryCSN (an export of a Postern or
//     slapd directory) is applied as a replicated change would be: it keeps
//     its identity and CSN, is written only where it is newer than the
//     directory's state, and never undoes a delete (a tombstone beats it),
//     so importing an old export neither resurrects deleted entries nor
//     overwrites newer changes;
//   - an entry without them is added, or its user attributes replace the
//     stored ones (export → import is idempotent);
//   - entries at or below ou=cluster are skipped and counted.
//
// It stops at the first bad record and says which; entries before it stay
// imported. progress is called after every chunk.
func (a *Appliance) Import(ctx context.Context, r io.Reader, progress func(ImportProgress)) (ImportProgress, error) {
	lr := ldif.NewReader(r)
	by := a.cfg.AdminDN()
	var p ImportProgress
	start := time.Now()
	var plain []*ldapstore.Entry
	var repl []ldapstore.ReplChange
	cluster, err := a.store.Schema().NormalizeDN("ou=cluster," + a.cfg.Suffix)
	if err != nil {
		return p, err
	}
	flush := func() error {
		if len(plain) == 0 && len(repl) == 0 {
			return nil
		}
		var err error
		if len(plain) > 0 {
			var added, updated int
			added, updated, err = a.writeChunk(ctx, plain, by)
			p.Added += added
			p.Updated += updated
			plain = plain[:0]
		} else {
			err = a.applyChunk(ctx, repl, &p)
			repl = repl[:0]
		}
		p.Rate = float64(p.Added+p.Updated+p.Applied+p.Stale) / time.Since(start).Seconds()
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
		if n, err := a.store.Schema().NormalizeDN(e.DN); err == nil && (n == cluster || strings.HasSuffix(n, ","+cluster)) {
			if p.Skipped == 0 {
				a.log.Warn("ldif import: entries below ou=cluster are skipped: cluster membership is never taken from LDIF", "dn", e.DN)
			}
			p.Skipped++
			continue
		}
		if e.First("entryUUID") != "" && e.First("entryCSN") != "" {
			if len(plain) > 0 {
				if err := flush(); err != nil {
					return p, err
				}
			}
			repl = append(repl, ldapstore.ReplChange{Entry: withoutComputed(e), Restamp: true})
		} else {
			if len(repl) > 0 {
				if err := flush(); err != nil {
					return p, err
				}
			}
			plain = append(plain, stripOperational(e))
		}
		if len(plain)+len(repl) == importChunk {
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

// applyChunk writes entries that carry their entryUUID and entryCSN through
// the replication apply path (last writer wins, deletes win).
func (a *Appliance) applyChunk(ctx context.Context, chunk []ldapstore.ReplChange, p *ImportProgress) error {
	res, err := a.store.ApplyBatch(ctx, chunk, "", "")
	if err != nil {
		return err
	}
	p.Applied += res.Applied
	p.Stale += res.Stale
	if res.Rejected > 0 {
		return fmt.Errorf("import: %w", res.Errors[0])
	}
	return nil
}

// withoutComputed drops what the store computes on read.
func withoutComputed(e *ldapstore.Entry) *ldapstore.Entry {
	out := &ldapstore.Entry{DN: e.DN}
	for _, at := range e.Attributes {
		if l := strings.ToLower(at.Type); l != "hassubordinates" && l != "subschemasubentry" && l != "entrydn" {
			out.Attributes = append(out.Attributes, at)
		}
	}
	return out
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
