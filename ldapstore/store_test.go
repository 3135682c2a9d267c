package ldapstore

import (
	"context"
	"strings"
	"testing"

	"postern/ldapstore/filter"
)

func TestAddGetDelete(t *testing.T) {
	s := openTest(t, Options{})
	seed(t, s)
	ctx := context.Background()
	must(t, s.Add(ctx, person("alice"), admin))
	e, err := s.Get(ctx, "UID=Alice, OU=People,DC=postern,DC=local")
	must(t, err)
	if e.DN != "uid=alice,ou=people,dc=postern,dc=local" || e.First("mail") != "alice@example.com" {
		t.Fatalf("got %+v", e)
	}
	for _, a := range []string{"entryUUID", "entryCSN", "createTimestamp", "modifyTimestamp", "creatorsName", "modifiersName", "structuralObjectClass", "hasSubordinates", "subschemaSubentry"} {
		if e.First(a) == "" {
			t.Errorf("missing %s", a)
		}
	}
	if e.First("structuralObjectClass") != "inetOrgPerson" || e.First("hasSubordinates") != "FALSE" || e.First("creatorsName") != admin {
		t.Fatalf("operational: %+v", e)
	}
	if n, _ := s.Count(ctx); n != 6 {
		t.Fatalf("count %d", n)
	}
	ou, _ := s.Get(ctx, "ou=people,dc=postern,dc=local")
	if ou.First("hasSubordinates") != "TRUE" {
		t.Fatal("ou has no subordinates")
	}
	wantCode(t, s.Delete(ctx, "ou=people,dc=postern,dc=local", admin), NotAllowedOnNonLeaf)
	must(t, s.Delete(ctx, e.DN, admin))
	_, err = s.Get(ctx, e.DN)
	wantCode(t, err, NoSuchObject)
	if err.(*Error).MatchedDN != "ou=people,dc=postern,dc=local" {
		t.Fatalf("matched %q", err.(*Error).MatchedDN)
	}
	var found []string
	f, _ := filter.Parse("(uid=alice)")
	must(t, s.Search(ctx, &SearchRequest{BaseDN: "dc=postern,dc=local", Scope: ScopeSub, Filter: f}, func(e *Entry) error {
		found = append(found, e.DN)
		return nil
	}))
	if len(found) != 0 {
		t.Fatal(found)
	}
	if !strings.HasPrefix(s.ContextCSN()[1].String(), "20") {
		t.Fatal("context CSN")
	}
}
