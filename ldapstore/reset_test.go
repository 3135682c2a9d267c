package ldapstore

import (
	"context"
	"strings"
	"testing"
)

// TestReset: a reset store is empty (count, context CSN, search), takes new
// entries, and its new CSNs carry the new server ID.
func TestReset(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	for _, e := range []*Entry{
		entry("dc=postern,dc=local", "objectClass", "top", "objectClass", "dcObject", "objectClass", "organization", "dc", "postern", "o", "P"),
		entry("ou=people,dc=postern,dc=local", "objectClass", "organizationalUnit", "ou", "people"),
	} {
		if err := s.Add(ctx, e, "cn=admin"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Reset(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Count(ctx); n != 0 {
		t.Fatalf("count after reset = %d", n)
	}
	if v := s.ContextCSN(); len(v) != 0 {
		t.Fatalf("context CSN after reset = %v", v)
	}
	if _, err := s.Get(ctx, "ou=people,dc=postern,dc=local"); CodeOf(err) != NoSuchObject {
		t.Fatalf("entry survived reset: %v", err)
	}
	if s.ServerID() != 3 {
		t.Fatalf("server ID = %d", s.ServerID())
	}
	if err := s.Add(ctx, entry("dc=postern,dc=local", "objectClass", "top", "objectClass", "dcObject", "objectClass", "organization", "dc", "postern", "o", "P"), "cn=admin"); err != nil {
		t.Fatal(err)
	}
	e, err := s.Get(ctx, "dc=postern,dc=local")
	if err != nil {
		t.Fatal(err)
	}
	if c := e.First("entryCSN"); !strings.Contains(c, "#003#") {
		t.Fatalf("entryCSN %s does not carry server ID 3", c)
	}
	if n, _ := s.Count(ctx); n != 1 {
		t.Fatalf("count = %d", n)
	}
}
