package ldapstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"postern/ldapstore/csn"
)

// pull copies every change of from that to has not seen (by the cookie to
// keeps for from) into to, the way package replication's delta refresh
// does: the current state of changed entries, and deletes.
func pull(t *testing.T, from, to *Store) ApplyResult {
	t.Helper()
	ctx := context.Background()
	key := fmt.Sprintf("sid=%d", from.ServerID())
	ck, err := to.Cookie(key)
	must(t, err)
	since, err := csn.ParseVector(ck)
	must(t, err)
	var chs []ReplChange
	seen := map[string]bool{}
	err = from.ChangesSince(ctx, since, func(c Change) error {
		if c.Kind == ChangeDelete {
			chs = append(chs, ReplChange{EntryUUID: c.EntryUUID, CSN: c.CSN})
			return nil
		}
		if seen[c.EntryUUID] {
			return nil
		}
		e, parent, err := from.GetForSync(ctx, c.EntryUUID)
		if CodeOf(err) == NoSuchObject {
			return nil
		}
		if err != nil {
			return err
		}
		seen[c.EntryUUID] = true
		chs = append(chs, ReplChange{Entry: e, ParentUUID: parent})
		return nil
	})
	must(t, err)
	res, err := to.ApplyBatch(ctx, chs, key, from.ContextCSN().String())
	must(t, err)
	if res.Rejected > 0 {
		t.Fatalf("rejected: %v", res.Errors)
	}
	return res
}

func dump(t *testing.T, s *Store) string {
	t.Helper()
	var lines []string
	err := s.Search(context.Background(), &SearchRequest{BaseDN: s.Suffix(), Scope: ScopeSub}, func(e *Entry) error {
		var attrs []string
		for _, a := range e.Attributes {
			attrs = append(attrs, a.Type+"="+strings.Join(a.Vals, "|"))
		}
		sort.Strings(attrs)
		lines = append(lines, strings.ToLower(e.DN)+": "+strings.Join(attrs, " "))
		return nil
	})
	must(t, err)
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func converge(t *testing.T, stores ...*Store) {
	t.Helper()
	for range 3 {
		for _, a := range stores {
			for _, b := range stores {
				if a != b {
					pull(t, a, b)
				}
			}
		}
	}
	want := dump(t, stores[0])
	for _, s := range stores[1:] {
		if got := dump(t, s); got != want {
			t.Fatalf("trees differ:\n--- sid %d\n%s\n--- sid %d\n%s", stores[0].ServerID(), want, s.ServerID(), got)
		}
	}
}

func TestApplyBatchRules(t *testing.T) {
	ctx := context.Background()
	a := openTest(t, Options{ServerID: 1})
	b := openTest(t, Options{ServerID: 2})
	seed(t, a)
	must(t, a.Add(ctx, person("alice"), admin))
	converge(t, a, b)

	t.Run("modify LWW", func(t *testing.T) {
		d := person("alice").DN
		must(t, a.Modify(ctx, d, []Modification{{Op: ModReplace, Attr: Attribute{Type: "sn", Vals: []string{"A"}}}}, admin))
		must(t, b.Modify(ctx, d, []Modification{{Op: ModReplace, Attr: Attribute{Type: "sn", Vals: []string{"B"}}}}, admin))
		converge(t, a, b)
		e, err := a.Get(ctx, d)
		must(t, err)
		if e.First("sn") != "B" {
			t.Fatalf("sn = %q, want the later write B", e.First("sn"))
		}
	})
	t.Run("same DN added twice", func(t *testing.T) {
		must(t, a.Add(ctx, person("twin"), admin))
		must(t, b.Add(ctx, person("twin"), admin))
		converge(t, a, b)
		n := 0
		err := a.Search(ctx, &SearchRequest{BaseDN: "ou=people,dc=postern,dc=local", Scope: ScopeOne}, func(e *Entry) error {
			if e.First("uid") == "twin" {
				n++
				if strings.HasPrefix(strings.ToLower(e.DN), "entryuuid=") != (e.First("posternReplConflict") != "") {
					t.Errorf("conflict entry not marked: %s", e.DN)
				}
			}
			return nil
		})
		must(t, err)
		if n != 2 {
			t.Fatalf("%d twins, want 2 (winner and conflict entry)", n)
		}
	})
	t.Run("add below deleted parent", func(t *testing.T) {
		must(t, a.Add(ctx, entry("ou=tmp,dc=postern,dc=local", "objectClass", "organizationalUnit", "ou", "tmp"), admin))
		converge(t, a, b)
		must(t, a.Delete(ctx, "ou=tmp,dc=postern,dc=local", admin))
		must(t, b.Add(ctx, entry("cn=orphan,ou=tmp,dc=postern,dc=local", "objectClass", "organizationalUnit", "objectClass", "extensibleObject", "ou", "x", "cn", "orphan"), admin))
		must(t, b.Add(ctx, entry("cn=grand,cn=orphan,ou=tmp,dc=postern,dc=local", "objectClass", "organizationalUnit", "objectClass", "extensibleObject", "ou", "y", "cn", "grand"), admin))
		converge(t, a, b)
		n := 0
		err := a.Search(ctx, &SearchRequest{BaseDN: LostFoundRDN + ",dc=postern,dc=local", Scope: ScopeOne}, func(e *Entry) error {
			n++
			return nil
		})
		must(t, err)
		if n != 2 {
			t.Fatalf("%d entries in lost+found, want 2", n)
		}
		if _, err := a.Get(ctx, "ou=tmp,dc=postern,dc=local"); CodeOf(err) != NoSuchObject {
			t.Fatalf("deleted parent came back: %v", err)
		}
	})
	t.Run("rename subtree", func(t *testing.T) {
		must(t, a.ModifyDN(ctx, "ou=people,dc=postern,dc=local", "ou=staff", true, "", admin))
		converge(t, a, b)
		if _, err := b.Get(ctx, "uid=alice,ou=staff,dc=postern,dc=local"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("delete beats newer modify", func(t *testing.T) {
		d := "uid=alice,ou=staff,dc=postern,dc=local"
		must(t, a.Delete(ctx, d, admin))
		must(t, b.Modify(ctx, d, []Modification{{Op: ModReplace, Attr: Attribute{Type: "sn", Vals: []string{"late"}}}}, admin))
		converge(t, a, b)
		if _, err := b.Get(ctx, d); CodeOf(err) != NoSuchObject {
			t.Fatalf("deleted entry resurrected: %v", err)
		}
	})
	t.Run("stale", func(t *testing.T) {
		e, err := a.Get(ctx, "ou=domains,dc=postern,dc=local")
		must(t, err)
		res, err := a.ApplyBatch(ctx, []ReplChange{{Entry: e}}, "", "")
		must(t, err)
		if res.Stale != 1 || res.Applied != 0 {
			t.Fatalf("result %+v, want one stale", res)
		}
	})
	t.Run("cookie", func(t *testing.T) {
		if _, err := a.ApplyBatch(ctx, nil, "rid=001", "csn=x"); err != nil {
			t.Fatal(err)
		}
		if c, err := a.Cookie("rid=001"); err != nil || c != "csn=x" {
			t.Fatalf("cookie %q, %v", c, err)
		}
	})
	t.Run("rejected", func(t *testing.T) {
		res, err := a.ApplyBatch(ctx, []ReplChange{{Entry: entry("cn=bad,dc=postern,dc=local", "objectClass", "nosuchclass", "cn", "bad",
			"entryUUID", "0190a2b0-0000-7000-8000-000000000001", "entryCSN", "20260101000000.000000Z#000000#003#000000")}}, "", "")
		if err != nil || res.Rejected != 1 || !errors.As(res.Errors[0], new(*Error)) {
			t.Fatalf("res %+v err %v", res, err)
		}
	})
}

// TestApplyHeldStates: a state the store already holds (sent back, or sent
// again) is stale and leaves the entry as it is, even when it would not
// pass the schema; a newer state of the same entry in the same batch
// still applies.
func TestApplyHeldStates(t *testing.T) {
	ctx := context.Background()
	a := openTest(t, Options{ServerID: 1})
	b := openTest(t, Options{ServerID: 2})
	seed(t, a)
	loadPeople(t, a, 100)
	pull(t, a, b)
	want := dump(t, b)
	// every entry again, as a provider echoing b's copy would send it
	var again []ReplChange
	must(t, a.Search(ctx, &SearchRequest{BaseDN: a.Suffix(), Scope: ScopeSub}, func(e *Entry) error {
		again = append(again, ReplChange{Entry: e})
		return nil
	}))
	bad := again[len(again)-1].Entry.Clone()
	bad.Set("objectClass", "noSuchClass") // refused by the schema, were it applied
	again[len(again)-1].Entry = bad
	res, err := b.ApplyBatch(ctx, again, "", "")
	must(t, err)
	if res.Stale != len(again) || res.Rejected != 0 || res.Applied != 0 {
		t.Fatalf("result %+v, want %d stale", res, len(again))
	}
	if got := dump(t, b); got != want {
		t.Fatalf("tree changed by states it held:\n%s\nwant\n%s", got, want)
	}
	// a newer state among held ones applies
	must(t, a.Modify(ctx, "uid=user00007,ou=people,dc=postern,dc=local", []Modification{{Op: ModReplace, Attr: Attribute{Type: "description", Vals: []string{"newer"}}}}, admin))
	e, err := a.Get(ctx, "uid=user00007,ou=people,dc=postern,dc=local")
	must(t, err)
	res, err = b.ApplyBatch(ctx, append(again[:len(again)-1:len(again)-1], ReplChange{Entry: e}), "", "")
	must(t, err)
	if res.Applied != 1 {
		t.Fatalf("result %+v, want the newer state applied", res)
	}
	got, err := b.Get(ctx, "uid=user00007,ou=people,dc=postern,dc=local")
	must(t, err)
	if got.First("description") != "newer" {
		t.Fatalf("description %q, want newer", got.First("description"))
	}
}
