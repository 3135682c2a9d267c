package replication

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"postern/ldapstore"
)

// TestRefreshAndPersist: a consumer gets the provider's tree (present
// phase), then every add, modify, rename, move and delete (persist), then,
// after a restart, only what changed while it was away (delta refresh with
// deletes as a syncIdSet); its status says OK with both counts.
func TestRefreshAndPersist(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, 1, "")
	b := startNode(t, 2, "")
	seedTree(t, a.store)
	for i := range 50 {
		must(t, a.store.Add(ctx, person(fmt.Sprintf("u%02d", i)), rootDN))
	}
	c, stop := consume(t, b, 1, "a", a.addr)
	waitEqual(t, 10*time.Second, a.store, b.store)

	must(t, a.store.Add(ctx, person("new"), rootDN))
	must(t, a.store.Modify(ctx, person("u01").DN, []ldapstore.Modification{{Op: ldapstore.ModReplace, Attr: ldapstore.Attribute{Type: "sn", Vals: []string{"changed"}}}}, rootDN))
	must(t, a.store.ModifyDN(ctx, person("u02").DN, "uid=u02b", false, "", rootDN))
	must(t, a.store.ModifyDN(ctx, person("u03").DN, "uid=u03", true, "ou=domains,"+suffix, rootDN))
	must(t, a.store.Delete(ctx, person("u04").DN, rootDN))
	must(t, a.store.ModifyDN(ctx, "ou=people,"+suffix, "ou=staff", true, "", rootDN))
	waitEqual(t, 10*time.Second, a.store, b.store)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.HasPrefix(c.Status().Text, "OK (") || c.Status().RemoteEntries != c.Status().LocalEntries {
		if time.Now().After(deadline) {
			t.Fatalf("status %+v", c.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s := c.Status(); s.Text != fmt.Sprintf("OK (%d entries in remote database, %d entries in local database)", 53, 53) {
		t.Fatalf("status text %q", s.Text)
	}

	stop()
	for i := range 5 {
		must(t, a.store.Delete(ctx, fmt.Sprintf("uid=u%02d,ou=staff,%s", 10+i, suffix), rootDN))
	}
	must(t, a.store.Add(ctx, entry("uid=late,ou=staff,"+suffix, "objectClass", "inetOrgPerson", "uid", "late", "cn", "Late", "sn", "L"), rootDN))
	c2, _ := consume(t, b, 1, "a", a.addr)
	waitEqual(t, 10*time.Second, a.store, b.store)
	if s := c2.Status(); s.Applied > 10 {
		t.Fatalf("restart applied %d changes, want only the 6 made meanwhile (a delta refresh)", s.Applied)
	}
	if got := ContextStatus(b.store); len(got) != 1 || got[0].SID != 1 || got[0].CSN != a.store.ContextCSN()[1].String() {
		t.Fatalf("context status %+v", got)
	}
}

// TestProviderAccess: only the root DN or a configured replicator may run
// a sync search; a refreshOnly search ends with a Sync Done control.
func TestProviderAccess(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, 1, "")
	seedTree(t, a.store)
	must(t, a.store.Add(ctx, person("alice", "userPassword", "alice pw"), rootDN))
	must(t, a.store.Add(ctx, entry("cn=replicator,"+suffix, "objectClass", "person", "cn", "replicator", "sn", "r", "userPassword", "repl pw"), rootDN))
	sync := func(dn, pw string) (*ldap.SearchResult, error) {
		l, err := ldap.DialURL("ldap://" + a.addr)
		must(t, err)
		defer l.Close()
		must(t, l.Bind(dn, pw))
		req := ldap.NewSearchRequest(suffix, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=*)", nil,
			[]ldap.Control{ldap.NewControlSyncRequest(ldap.SyncRequestModeRefreshOnly, nil, false)})
		return l.Search(req)
	}
	_, err := sync(person("alice").DN, "alice pw")
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights) {
		t.Fatalf("user sync search: %v, want insufficientAccessRights", err)
	}
	for _, who := range [][2]string{{rootDN, rootPW}, {"cn=replicator," + suffix, "repl pw"}} {
		res, err := sync(who[0], who[1])
		if err != nil {
			t.Fatalf("%s: %v", who[0], err)
		}
		if len(res.Entries) != 5 {
			t.Fatalf("%s: %d entries", who[0], len(res.Entries))
		}
		var done *ldap.ControlSyncDone
		for _, c := range res.Controls {
			if d, ok := c.(*ldap.ControlSyncDone); ok {
				done = d
			}
		}
		if done == nil || done.RefreshDeletes {
			t.Fatalf("%s: sync done %+v, want a present-phase Sync Done", who[0], done)
		}
		ck, err := ParseCookie(string(done.Cookie))
		if err != nil || ck.SID != 1 || ck.CSNs[1] != a.store.ContextCSN()[1] {
			t.Fatalf("cookie %q: %+v %v", done.Cookie, ck, err)
		}
	}
}

// TestTrimmedChangelogPresentPhase: a consumer whose cookie is older than
// the provider's pruned changelog and tombstones gets a present phase and
// converges by itself (deletes included), never "may need to be
// reinitialized".
func TestTrimmedChangelogPresentPhase(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	a := startNodeOpts(t, "", ldapstore.Options{ServerID: 1, Now: clock, TombstoneRetention: time.Hour})
	b := startNode(t, 2, "")
	seedTree(t, a.store)
	for i := range 30 {
		must(t, a.store.Add(ctx, person(fmt.Sprintf("t%02d", i)), rootDN))
	}
	c, stop := consume(t, b, 1, "a", a.addr)
	waitEqual(t, 10*time.Second, a.store, b.store)
	stop()
	for i := range 10 {
		must(t, a.store.Delete(ctx, person(fmt.Sprintf("t%02d", i)).DN, rootDN))
	}
	must(t, a.store.Modify(ctx, person("t20").DN, []ldapstore.Modification{{Op: ldapstore.ModReplace, Attr: ldapstore.Attribute{Type: "sn", Vals: []string{"x"}}}}, rootDN))
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	must(t, a.store.Add(ctx, person("after"), rootDN))
	if n, err := a.store.Prune(); err != nil || n == 0 {
		t.Fatalf("prune: %d, %v", n, err)
	}
	c, _ = consume(t, b, 1, "a", a.addr)
	waitEqual(t, 10*time.Second, a.store, b.store)
	if s := c.Status(); s.Applied == 0 {
		t.Fatalf("status %+v", s)
	}
}

// TestPresentPhaseNamesTheConsumersOwnEntries: in a present phase the
// provider names the entries the consumer made itself (their entryCSN
// carries the consumer's sid) instead of sending them whole, so a member's
// first session with a peer that has just copied its tree costs a few
// syncIdSets, not the tree; entries made elsewhere still come whole, and
// the consumer converges.
func TestPresentPhaseNamesTheConsumersOwnEntries(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, 1, "")
	b := startNode(t, 2, "")
	seedTree(t, a.store)
	for i := range 40 {
		must(t, a.store.Add(ctx, person(fmt.Sprintf("a%02d", i)), rootDN))
	}
	_, stop := consume(t, b, 1, "a", a.addr)
	waitEqual(t, 10*time.Second, a.store, b.store)
	stop()
	for i := range 3 {
		must(t, b.store.Add(ctx, person(fmt.Sprintf("b%02d", i)), rootDN))
	}

	// a's first sync search on b, as a's consumer sends it: rid and sid, no CSNs
	l, err := ldap.DialURL("ldap://" + b.addr)
	must(t, err)
	defer l.Close()
	must(t, l.Bind(rootDN, rootPW))
	req := ldap.NewSearchRequest(suffix, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=*)", []string{"*", "+"},
		[]ldap.Control{ldap.NewControlSyncRequest(ldap.SyncRequestModeRefreshOnly, []byte("rid=002,sid=001"), false)})
	res, err := l.Search(req)
	must(t, err)
	var whole []string
	for _, e := range res.Entries {
		whole = append(whole, e.DN)
	}
	if len(whole) != 3 {
		t.Fatalf("whole entries %v, want only the 3 made on b", whole)
	}
	for _, d := range whole {
		if !strings.HasPrefix(d, "uid=b") {
			t.Fatalf("entry %s sent whole to the member that made it", d)
		}
	}

	// and a's consumer converges through it
	_, stop = consume(t, a, 2, "b", b.addr)
	defer stop()
	waitEqual(t, 10*time.Second, a.store, b.store)
}
