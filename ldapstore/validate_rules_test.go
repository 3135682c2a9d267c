package ldapstore

import (
	"context"
	"testing"
)

// TestClassRulesCache: the cached rules of an objectClass list are those
// of that list: a list that shares a cache key with no other is checked
// on its own, and a write refused once is refused again.
func TestClassRulesCache(t *testing.T) {
	s := openTest(t, Options{})
	seed(t, s)
	ctx := context.Background()
	p := person("cached")
	must(t, s.Add(ctx, p, admin))
	// ["inetOrgPerson", "top"] is cached under the names joined by a NUL;
	// the one name that spells the same key is no class
	if _, err := s.classRules([]string{"inetOrgPerson", "top"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.classRules([]string{"inetOrgPerson\x00top"}); err == nil {
		t.Fatal("a class named with a NUL got the rules of another list")
	}
	for range 2 {
		err := s.Modify(ctx, p.DN, []Modification{{Op: ModAdd, Attr: Attribute{Type: "member", Vals: []string{"cn=x"}}}}, admin)
		if CodeOf(err) != ObjectClassViolation {
			t.Fatalf("modify adding an attribute no class allows: %v, want objectClassViolation", err)
		}
	}
	must(t, s.Modify(ctx, p.DN, []Modification{{Op: ModReplace, Attr: Attribute{Type: "description", Vals: []string{"ok"}}}}, admin))
}
