package replication

import (
	"context"
	"strings"
	"testing"
	"time"

	"postern/ldapstore"
)

// TestOptionsReplicate (issue 9, item 12): attribute descriptions with
// options (language tags, ";binary") reach another Postern member as
// themselves, in the refresh and in persist mode, and a change to one
// tagged attribute leaves the others alone.
func TestOptionsReplicate(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, 1, "")
	b := startNode(t, 2, "")
	seedTree(t, a.store)
	must(t, a.store.Add(ctx, person("greta", "cn;lang-de", "Greta Beispiel", "sn;lang-de;lang-fr", "Bei",
		"userCertificate;binary", "0\x82\x01\x02der"), rootDN))
	consume(t, b, 1, "a", a.addr)
	tree := waitEqual(t, 10*time.Second, a.store, b.store)
	for _, want := range []string{"cn;lang-de=Greta Beispiel", "sn;lang-de;lang-fr=Bei", "usercertificate;binary=0\x82\x01\x02der"} {
		if !strings.Contains(tree, strings.ToLower(want[:strings.IndexByte(want, '=')])+want[strings.IndexByte(want, '='):]) {
			t.Errorf("replicated tree lacks %q:\n%s", want, tree)
		}
	}
	must(t, a.store.Modify(ctx, person("greta").DN, []ldapstore.Modification{
		{Op: ldapstore.ModReplace, Attr: ldapstore.Attribute{Type: "cn;lang-en", Vals: []string{"Greta Example"}}},
		{Op: ldapstore.ModDelete, Attr: ldapstore.Attribute{Type: "sn;lang-fr;lang-de"}},
	}, rootDN))
	tree = waitEqual(t, 10*time.Second, a.store, b.store)
	if !strings.Contains(tree, "cn;lang-en=Greta Example") || !strings.Contains(tree, "cn;lang-de=Greta Beispiel") || strings.Contains(tree, "sn;lang-de") {
		t.Errorf("after the modify:\n%s", tree)
	}
	e, err := b.store.Get(ctx, person("greta").DN)
	must(t, err)
	if got := e.Get("cn;lang-de"); len(got) != 1 || got[0] != "Greta Beispiel" {
		t.Errorf("member B cn;lang-de = %q", got)
	}
}
