package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"postern/ldapstore"
	"postern/ldapstore/ldif"
)

// A join replaces this device's replicated tree by the base's. Whatever it
// holds that the cluster does not — entries added or changed here while it
// was standalone or cut off — would vanish without a word; instead they
// are listed and saved as an LDIF file in the data directory, from which an
// admin imports what should stay (`postern ldif import FILE` on a member).

// savedChanges is what saveLocalChanges found and wrote.
type savedChanges struct {
	File    string
	Entries []string // DNs
	Deletes int      // local deletes the cluster does not have (not kept)
}

// structural are the base tree's containers every appliance makes on its
// first start: they are nobody's change while unmodified since.
var structural = []string{"", "ou=people,", "ou=domains,", "ou=config,", "ou=cluster,"}

// saveLocalChanges saves every local entry the base does not hold in the
// same version, ou=cluster and the untouched structural entries left out.
// It lists this device's tree first (entryUUID and entryCSN of each local
// entry, and its tombstones), then reads the base's listing through cl as
// a stream, keeping nothing of it but what concerns a local entry: its
// memory is this device's tree's, not the cluster's (a fresh appliance
// joining a cluster of a million entries holds a handful of them).
func (a *Agent) saveLocalChanges(ctx context.Context, cl *ssh.Client) (*savedChanges, error) {
	st := a.cfg.Store
	suffix := strings.ToLower(st.Suffix())
	cluster := "ou=cluster," + suffix
	mine := map[string]string{} // entryUUID → entryCSN of the local entries that may be changes
	err := st.Search(ctx, &ldapstore.SearchRequest{BaseDN: st.Suffix(), Scope: ldapstore.ScopeSub}, func(e *ldapstore.Entry) error {
		dnl := strings.ToLower(e.DN)
		if ldapstore.IsGlue(e) || dnl == cluster || strings.HasSuffix(dnl, ","+cluster) {
			return nil
		}
		for _, s := range structural {
			if dnl == s+suffix && e.First("createTimestamp") == e.First("modifyTimestamp") {
				return nil
			}
		}
		mine[strings.ToLower(e.First("entryUUID"))] = e.First("entryCSN")
		return nil
	})
	if err != nil {
		return nil, err
	}
	deletedHere := map[string]bool{} // local tombstones
	if deleted, err := st.Tombstones(ctx); err == nil {
		for _, d := range deleted {
			deletedHere[d.EntryUUID.String()] = true
		}
	}
	out := &savedChanges{}
	ch, reqs, err := cl.OpenChannel(ControlChannel, nil)
	if err != nil {
		return nil, err
	}
	go ssh.DiscardRequests(reqs)
	defer ch.Close()
	if err := WriteMessage(ch, &Message{Type: msgCompare, Compare: &CompareRequest{Tombstones: true}}); err != nil {
		return nil, err
	}
	for {
		ans, err := ReadMessage(ch)
		if err != nil {
			return nil, fmt.Errorf("cluster: list the base's tree: %w", err)
		}
		if ans.Type == msgError {
			return nil, fmt.Errorf("cluster: list the base's tree: %s", ans.Error)
		}
		for _, it := range ans.Items {
			id := strings.ToLower(it.UUID)
			if !it.Deleted && deletedHere[id] {
				out.Deletes++ // deleted here, still in the cluster
			}
			// CSN strings order as CSNs (fixed-width fields): the
			// cluster has the entry as it is here or newer, or deleted
			// it after this version
			if c, ok := mine[id]; ok && it.CSN >= c {
				delete(mine, id)
			}
		}
		if ans.Done {
			break
		}
	}
	var keep []*ldapstore.Entry
	if len(mine) > 0 {
		err = st.Search(ctx, &ldapstore.SearchRequest{BaseDN: st.Suffix(), Scope: ldapstore.ScopeSub}, func(e *ldapstore.Entry) error {
			if _, ok := mine[strings.ToLower(e.First("entryUUID"))]; ok {
				keep = append(keep, e)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(keep) == 0 {
		return out, nil
	}
	out.File = filepath.Join(a.cfg.DataDir, "join-saved-"+time.Now().UTC().Format("20060102T150405Z")+".ldif")
	f, err := os.OpenFile(out.File, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	w := ldif.NewWriter(f)
	for _, e := range keep {
		clean := &ldapstore.Entry{DN: e.DN}
		for _, at := range e.Attributes {
			switch strings.ToLower(at.Type) {
			case "hassubordinates", "subschemasubentry", "entrydn":
				continue
			}
			clean.Attributes = append(clean.Attributes, at)
		}
		if err := w.Write(clean); err != nil {
			f.Close()
			return nil, err
		}
		out.Entries = append(out.Entries, e.DN)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return out, f.Close()
}

// report says what was saved, for the join's progress.
func (s *savedChanges) report(progress func(string)) {
	if s.Deletes > 0 {
		progress(fmt.Sprintf("%d entries deleted on this device while apart are still in the cluster: those deletes are not kept (repeat them after the join if they should stand)", s.Deletes))
	}
	if len(s.Entries) == 0 {
		return
	}
	progress(fmt.Sprintf("this device holds %d entries the cluster does not have (added or changed here): saved to %s before its tree is replaced; `postern ldif import` that file on a member to keep them", len(s.Entries), s.File))
	for i, d := range s.Entries {
		if i == 20 {
			progress(fmt.Sprintf("  ... and %d more", len(s.Entries)-20))
			break
		}
		progress("  " + d)
	}
}
