package ldapstore

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"postern/ldapstore/csn"
)

// changesOf returns from's changes since the cookie to keeps for it, in
// changelog (CSN) order, as a Postern provider sends them: the current
// state with the parent's entryUUID, or a delete; noParents leaves the
// parents out, as a slapd provider does.
func changesOf(t *testing.T, from, to *Store, noParents bool) []ReplChange {
	t.Helper()
	ctx := context.Background()
	key := fmt.Sprintf("sid=%d", from.ServerID())
	ck, err := to.Cookie(key)
	must(t, err)
	since, err := csn.ParseVector(ck)
	must(t, err)
	var chs []ReplChange
	err = from.ChangesSince(ctx, since, func(c Change) error {
		if c.Kind == ChangeDelete {
			chs = append(chs, ReplChange{EntryUUID: c.EntryUUID, CSN: c.CSN})
			return nil
		}
		e, parent, err := from.GetForSync(ctx, c.EntryUUID)
		if CodeOf(err) == NoSuchObject {
			return nil
		}
		must(t, err)
		if e.First("entryCSN") != c.CSN.String() {
			return nil // changed later: sent at its newest record
		}
		if noParents {
			parent = ""
		}
		chs = append(chs, ReplChange{Entry: e, ParentUUID: parent})
		return nil
	})
	must(t, err)
	return chs
}

func apply(t *testing.T, to *Store, from *Store, chs []ReplChange) ApplyResult {
	t.Helper()
	res, err := to.ApplyBatch(context.Background(), chs, fmt.Sprintf("sid=%d", from.ServerID()), from.ContextCSN().String())
	must(t, err)
	if res.Rejected > 0 {
		t.Fatalf("rejected: %v", res.Errors)
	}
	return res
}

func lostFoundCount(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	err := s.Search(context.Background(), &SearchRequest{BaseDN: LostFoundRDN + ",dc=postern,dc=local", Scope: ScopeOne}, func(*Entry) error { n++; return nil })
	if CodeOf(err) == NoSuchObject {
		return 0
	}
	must(t, err)
	return n
}

// TestRenameOfParentVsAddBelowOldDN is issue 10's first fault: a renames
// ou=dept to ou=dept2 while b, not having seen it, adds cn=k2 below
// ou=dept. Whatever order the changes reach a third member in, every
// member ends with k2 below ou=dept2, unmarked, nothing in lost+found.
func TestRenameOfParentVsAddBelowOldDN(t *testing.T) {
	ctx := context.Background()
	for _, order := range []string{"rename first", "add first"} {
		t.Run(order, func(t *testing.T) {
			a := openTest(t, Options{ServerID: 1})
			b := openTest(t, Options{ServerID: 2})
			c := openTest(t, Options{ServerID: 3})
			seed(t, a)
			must(t, a.Add(ctx, entry("ou=dept,dc=postern,dc=local", "objectClass", "organizationalUnit", "ou", "dept"), admin))
			must(t, a.Add(ctx, entry("cn=k1,ou=dept,dc=postern,dc=local", "objectClass", "organizationalUnit", "objectClass", "extensibleObject", "ou", "x", "cn", "k1"), admin))
			converge(t, a, b, c)
			// partition: each side writes without the other's change
			must(t, a.ModifyDN(ctx, "ou=dept,dc=postern,dc=local", "ou=dept2", true, "", admin))
			must(t, b.Add(ctx, entry("cn=k2,ou=dept,dc=postern,dc=local", "objectClass", "organizationalUnit", "objectClass", "extensibleObject", "ou", "y", "cn", "k2"), admin))
			fromA, fromB := changesOf(t, a, c, false), changesOf(t, b, c, false)
			toA := changesOf(t, b, a, false)
			apply(t, a, b, toA) // a gets the add after its rename
			if order == "rename first" {
				apply(t, c, a, fromA)
				apply(t, c, b, fromB)
			} else {
				apply(t, c, b, fromB)
				apply(t, c, a, fromA)
			}
			converge(t, a, b, c)
			for _, s := range []*Store{a, b, c} {
				e, err := s.Get(ctx, "cn=k2,ou=dept2,dc=postern,dc=local")
				if err != nil {
					t.Fatalf("sid %d: k2 not below ou=dept2: %v\n%s", s.ServerID(), err, dump(t, s))
				}
				if e.First("posternReplConflict") != "" {
					t.Errorf("sid %d: k2 marked as a conflict: %s", s.ServerID(), e.First("posternReplConflict"))
				}
				if n := lostFoundCount(t, s); n != 0 {
					t.Errorf("sid %d: %d entries in lost+found", s.ServerID(), n)
				}
			}
		})
	}
}

// TestChildBeforeParent is issue 11's third fault: a stream in CSN order
// sends children before a parent that was modified after them. A missing
// parent is not a deleted parent: the children are kept below glue and
// end where the provider has them; only a tombstone sends them to
// lost+found.
func TestChildBeforeParent(t *testing.T) {
	ctx := context.Background()
	for _, noParents := range []bool{false, true} {
		t.Run(fmt.Sprintf("without parent uuid=%v", noParents), func(t *testing.T) {
			a := openTest(t, Options{ServerID: 1})
			b := openTest(t, Options{ServerID: 2})
			seed(t, a)
			converge(t, a, b)
			must(t, a.Add(ctx, entry("ou=staff,dc=postern,dc=local", "objectClass", "organizationalUnit", "ou", "staff"), admin))
			must(t, a.Add(ctx, entry("ou=team,ou=staff,dc=postern,dc=local", "objectClass", "organizationalUnit", "ou", "team"), admin))
			for i := range 3 {
				must(t, a.Add(ctx, entry(fmt.Sprintf("cn=m%d,ou=team,ou=staff,dc=postern,dc=local", i), "objectClass", "organizationalUnit", "objectClass", "extensibleObject", "ou", "m", "cn", fmt.Sprintf("m%d", i)), admin))
			}
			// the parents change after their children: the stream sends them last
			must(t, a.Modify(ctx, "ou=staff,dc=postern,dc=local", []Modification{{Op: ModReplace, Attr: Attribute{Type: "description", Vals: []string{"later"}}}}, admin))
			must(t, a.Modify(ctx, "ou=team,ou=staff,dc=postern,dc=local", []Modification{{Op: ModReplace, Attr: Attribute{Type: "description", Vals: []string{"later"}}}}, admin))
			chs := changesOf(t, a, b, noParents)
			if len(chs) != 5 || chs[0].Entry == nil || !strings.HasPrefix(chs[0].Entry.DN, "cn=m0") {
				t.Fatalf("stream does not send a child first: %d changes, first %+v", len(chs), chs[0])
			}
			// the children alone first: glue stands in for their parents
			res := apply(t, b, a, chs[:3])
			if res.Glue != 2 || res.LostFound != 0 {
				t.Fatalf("children before parents: %+v, want 2 glue entries and nothing in lost+found", res)
			}
			g, err := b.Get(ctx, "ou=team,ou=staff,dc=postern,dc=local")
			must(t, err)
			if !IsGlue(g) {
				t.Fatalf("placeholder parent is not glue: %v", g.Attributes)
			}
			snap, err := b.Snapshot(ctx, "dc=postern,dc=local")
			must(t, err)
			if snap.Glue != 2 {
				t.Errorf("snapshot counts %d glue entries, want 2 (left out of Items)", snap.Glue)
			}
			res = apply(t, b, a, chs[3:])
			if res.LostFound != 0 {
				t.Fatalf("parents' arrival: %+v", res)
			}
			if got, want := dump(t, b), dump(t, a); got != want {
				t.Fatalf("trees differ after the parents arrived:\n--- a\n%s\n--- b\n%s", want, got)
			}
			if n := lostFoundCount(t, b); n != 0 {
				t.Errorf("%d entries in lost+found", n)
			}
		})
	}
	t.Run("deleted parent", func(t *testing.T) {
		a := openTest(t, Options{ServerID: 1})
		b := openTest(t, Options{ServerID: 2})
		seed(t, a)
		must(t, a.Add(ctx, entry("ou=tmp,dc=postern,dc=local", "objectClass", "organizationalUnit", "ou", "tmp"), admin))
		converge(t, a, b)
		must(t, a.Delete(ctx, "ou=tmp,dc=postern,dc=local", admin))
		must(t, b.Add(ctx, entry("cn=orphan,ou=tmp,dc=postern,dc=local", "objectClass", "organizationalUnit", "objectClass", "extensibleObject", "ou", "x", "cn", "orphan"), admin))
		apply(t, a, b, changesOf(t, b, a, false)) // a has the parent's tombstone
		if n := lostFoundCount(t, a); n != 1 {
			t.Fatalf("%d entries in lost+found, want the orphan", n)
		}
		converge(t, a, b)
	})
}
