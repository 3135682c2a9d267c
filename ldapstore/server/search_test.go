package server

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

func TestSearchScopes(t *testing.T) {
	ts := newTestServer(t)
	l := ts.root()
	people := "ou=people," + testSuffix
	tests := []struct {
		name  string
		base  string
		scope int
		want  []string
	}{
		{"base", people, ldap.ScopeBaseObject, []string{people}},
		{"one", people, ldap.ScopeSingleLevel, []string{testUserDN, testOtherDN}},
		{"sub", people, ldap.ScopeWholeSubtree, []string{people, testUserDN, testOtherDN}},
		{"one of suffix", testSuffix, ldap.ScopeSingleLevel, []string{"ou=domains," + testSuffix, people}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := dns(search(t, l, tc.base, tc.scope, "(objectClass=*)"))
			sort.Strings(got)
			sort.Strings(tc.want)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	_, err := l.Search(ldap.NewSearchRequest("ou=nowhere,"+testSuffix, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", nil, nil))
	wantCode(t, err, ldap.LDAPResultNoSuchObject)
}

func TestSearchFilters(t *testing.T) {
	ts := newTestServer(t)
	l := ts.root()
	m1, m2 := memberDN(1), memberDN(5)
	addMember(t, l, 1)
	addMember(t, l, 5)
	tests := []struct {
		filter string
		want   []string
	}{
		{"(uid=alice)", []string{testUserDN}},
		{"(mail=BOB@example.com)", []string{testOtherDN}},
		{"(cn=Ali*)", []string{testUserDN}},
		{"(cn=*Dyl*)", []string{testOtherDN}},
		{"(cn=*an)", []string{testOtherDN}},
		{"(posternClusterNo>=3)", []string{m2}},
		{"(posternClusterNo<=3)", []string{m1}},
		{"(mail=*)", []string{testUserDN, testOtherDN}},
		{"(sn~=Liddell)", []string{testUserDN}},
		{"(&(objectClass=inetOrgPerson)(uid=bob))", []string{testOtherDN}},
		{"(|(uid=alice)(uid=bob))", []string{testUserDN, testOtherDN}},
		{"(&(objectClass=inetOrgPerson)(!(uid=alice)))", []string{testOtherDN}},
		{"(uid:caseExactMatch:=alice)", []string{testUserDN}},
		{"(&(objectClass=inetOrgPerson)(ou:dn:=people))", []string{testUserDN, testOtherDN}},
		{"(uid=nobody)", nil},
	}
	for _, tc := range tests {
		t.Run(tc.filter, func(t *testing.T) {
			got := dns(search(t, l, testSuffix, ldap.ScopeWholeSubtree, tc.filter))
			sort.Strings(got)
			sort.Strings(tc.want)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSearchAttributeSelection(t *testing.T) {
	ts := newTestServer(t)
	l := ts.root()
	has := func(e *ldap.Entry, name string) bool {
		return len(e.GetAttributeValues(name)) > 0 || slices.ContainsFunc(attrNames(e), func(n string) bool { return strings.EqualFold(n, name) })
	}
	tests := []struct {
		name      string
		attrs     []string
		want, not []string
	}{
		{"default", nil, []string{"uid", "mail", "cn", "objectClass"}, []string{"entryUUID", "createTimestamp"}},
		{"star", []string{"*"}, []string{"uid", "mail"}, []string{"entryUUID"}},
		{"plus", []string{"+"}, []string{"entryUUID", "entryCSN", "createTimestamp", "modifiersName"}, []string{"uid", "mail"}},
		{"star and plus", []string{"*", "+"}, []string{"uid", "entryUUID"}, nil},
		{"explicit", []string{"mail", "entryUUID"}, []string{"mail", "entryUUID"}, []string{"uid", "cn"}},
		{"alias", []string{"commonName"}, []string{"cn"}, []string{"uid"}},
		{"supertype", []string{"name"}, []string{"cn", "sn"}, []string{"uid"}},
		{"no attributes", []string{"1.1"}, nil, []string{"uid", "objectClass"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			es := search(t, l, testUserDN, ldap.ScopeBaseObject, "(objectClass=*)", tc.attrs...)
			if len(es) != 1 {
				t.Fatalf("%d entries", len(es))
			}
			for _, a := range tc.want {
				if !has(es[0], a) {
					t.Errorf("missing %s in %v", a, attrNames(es[0]))
				}
			}
			for _, a := range tc.not {
				if has(es[0], a) {
					t.Errorf("unexpected %s in %v", a, attrNames(es[0]))
				}
			}
		})
	}
	if es := search(t, l, testUserDN, ldap.ScopeBaseObject, "(objectClass=*)", "1.1"); len(es[0].Attributes) != 0 {
		t.Fatalf("1.1 returned %v", attrNames(es[0]))
	}
}

func TestSearchTypesOnly(t *testing.T) {
	ts := newTestServer(t)
	l := ts.root()
	res, err := l.Search(ldap.NewSearchRequest(testUserDN, ldap.ScopeBaseObject, 0, 0, 0, true, "(objectClass=*)", []string{"mail", "uid"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	e := res.Entries[0]
	if len(e.Attributes) != 2 {
		t.Fatalf("attributes %v", attrNames(e))
	}
	for _, a := range e.Attributes {
		if len(a.Values) != 0 {
			t.Fatalf("typesOnly returned values for %s: %v", a.Name, a.Values)
		}
	}
}

func TestSearchSizeLimit(t *testing.T) {
	ts := newTestServer(t)
	l := ts.root()
	res, err := l.Search(ldap.NewSearchRequest(testSuffix, ldap.ScopeWholeSubtree, 0, 2, 0, false, "(objectClass=*)", []string{"1.1"}, nil))
	wantCode(t, err, ldap.LDAPResultSizeLimitExceeded)
	if res == nil || len(res.Entries) != 2 {
		t.Fatalf("got %v entries with sizeLimitExceeded, want 2", res)
	}
}

func TestSearchTimeLimit(t *testing.T) {
	// A time limit of one "second" lasts one nanosecond here, so the store
	// finds its deadline already passed.
	ts := newTestServer(t, serverHook(func(s *Server) { s.timeUnit = 1 }))
	l := ts.root()
	_, err := l.Search(ldap.NewSearchRequest(testSuffix, ldap.ScopeWholeSubtree, 0, 0, 1, false, "(objectClass=*)", nil, nil))
	wantCode(t, err, ldap.LDAPResultTimeLimitExceeded)
}

func TestSearchAccess(t *testing.T) {
	ts := newTestServer(t)
	anon := ts.dial()
	_, err := anon.Search(ldap.NewSearchRequest(testSuffix, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(uid=alice)", nil, nil))
	wantCode(t, err, ldap.LDAPResultInsufficientAccessRights)
	_, err = anon.Compare(testUserDN, "uid", "alice")
	wantCode(t, err, ldap.LDAPResultInsufficientAccessRights)
	// Anonymous reads the Root DSE and the subschema subentry.
	if es := search(t, anon, "", ldap.ScopeBaseObject, "(objectClass=*)"); len(es) != 1 {
		t.Fatalf("anonymous root DSE: %d entries", len(es))
	}
	if es := search(t, anon, "cn=Subschema", ldap.ScopeBaseObject, "(objectClass=*)"); len(es) != 1 {
		t.Fatalf("anonymous subschema: %d entries", len(es))
	}

	// A user reads the tree, its own userPassword but not other users'.
	user := ts.bind(testUserDN, testUserPW)
	es := search(t, user, "ou=people,"+testSuffix, ldap.ScopeSingleLevel, "(objectClass=inetOrgPerson)", "uid", "userPassword")
	if len(es) != 2 {
		t.Fatalf("user search: %d entries", len(es))
	}
	for _, e := range es {
		pw := e.GetAttributeValue("userPassword")
		if e.DN == testUserDN && !strings.HasPrefix(pw, "{") {
			t.Errorf("own userPassword not shown: %q", pw)
		}
		if e.DN == testOtherDN && pw != "" {
			t.Errorf("other user's userPassword shown: %q", pw)
		}
	}
	_, err = user.Compare(testOtherDN, "userPassword", testOtherPW)
	wantCode(t, err, ldap.LDAPResultInsufficientAccessRights)
	_, err = user.Compare(testOtherDN, "2.5.4.35", testOtherPW)
	wantCode(t, err, ldap.LDAPResultInsufficientAccessRights)
	// A filter on another user's userPassword is Undefined for a user, in
	// every form and in paged searches too (TestFilterAccessLikeSlapd
	// compares the forms with slapd): it finds nothing, negated or not.
	for _, f := range []string{"(&(uid=bob)(userPassword={ARGON2}*))", "(&(uid=bob)(!(userPassword=x)))", "(&(uid=bob)(!(userPassword:2.5.13.18:=~)))"} {
		if es := search(t, user, testSuffix, ldap.ScopeWholeSubtree, f); len(es) != 0 {
			t.Errorf("%s found %v", f, dns(es))
		}
		res, err := user.SearchWithPaging(ldap.NewSearchRequest(testSuffix, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(|(uid=alice)"+f+")", nil, nil), 1)
		if err != nil || len(res.Entries) != 1 || res.Entries[0].DN != testUserDN {
			t.Errorf("paged %s: %v %v", f, err, res)
		}
	}
	// its own userPassword is the user's to filter on
	if es := search(t, user, testSuffix, ldap.ScopeWholeSubtree, "(userPassword=*)"); len(es) != 1 || es[0].DN != testUserDN {
		t.Errorf("(userPassword=*) as alice: %v", dns(es))
	}

	// The root DN sees every userPassword.
	root := ts.root()
	if es := search(t, root, testOtherDN, ldap.ScopeBaseObject, "(objectClass=*)", "userPassword"); es[0].GetAttributeValue("userPassword") == "" {
		t.Fatal("root does not see userPassword")
	}
}

func TestRootDSE(t *testing.T) {
	ts := newTestServer(t)
	ts.srv.HandleSearchControl(testHandlerOID, SearchHandlerFunc(func(context.Context, *SearchRequest, SearchWriter) error { return nil }))
	l := ts.dial()
	// Operational attributes only when asked for, like slapd.
	es := search(t, l, "", ldap.ScopeBaseObject, "(objectClass=*)")
	if len(es) != 1 || es[0].DN != "" {
		t.Fatalf("root DSE: %v", dns(es))
	}
	if got := attrNames(es[0]); !slices.Equal(got, []string{"objectClass"}) {
		t.Fatalf("default attributes %v, want objectClass only", got)
	}
	// contextCSN appears after a write.
	root := ts.root()
	if err := root.Add(addReq("cn=x.example,ou=domains,"+testSuffix, "objectClass", "posternDomain", "cn", "x.example")); err != nil {
		t.Fatal(err)
	}
	e := search(t, l, "", ldap.ScopeBaseObject, "(objectClass=*)", "+")[0]
	want := map[string][]string{
		"namingContexts":       {testSuffix},
		"supportedLDAPVersion": {"3"},
		"subschemaSubentry":    {"cn=Subschema"},
		"vendorName":           {"Postern"},
		"vendorVersion":        {testVersion},
	}
	for a, v := range want {
		if got := e.GetAttributeValues(a); !slices.Equal(got, v) {
			t.Errorf("%s = %v, want %v", a, got, v)
		}
	}
	for a, vals := range map[string][]string{
		"supportedControl":   {OIDPagedResults, OIDManageDsaIT, testHandlerOID},
		"supportedExtension": {OIDStartTLS, OIDWhoAmI, OIDPasswordModify},
		"supportedFeatures":  {OIDAllOperational},
	} {
		for _, v := range vals {
			if !slices.Contains(e.GetAttributeValues(a), v) {
				t.Errorf("%s %v lacks %s", a, e.GetAttributeValues(a), v)
			}
		}
	}
	csns := e.GetAttributeValues("contextCSN")
	if len(csns) != 1 || !strings.HasSuffix(csns[0], "#001#000000") {
		t.Errorf("contextCSN %v, want one CSN of server 001", csns)
	}
	// The entry count is for bound clients only; this connection is anonymous.
	if v := e.GetAttributeValues("posternEntryCount"); len(v) != 0 {
		t.Errorf("anonymous sees posternEntryCount %v", v)
	}
	n, err := ts.store.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := search(t, root, "", ldap.ScopeBaseObject, "(objectClass=*)", "posternEntryCount")[0].GetAttributeValue("posternEntryCount"); got != strconv.Itoa(n) {
		t.Errorf("posternEntryCount = %q, want %d", got, n)
	}
	// Explicit names select single attributes.
	e = search(t, l, "", ldap.ScopeBaseObject, "(objectClass=*)", "namingContexts")[0]
	if got := attrNames(e); !slices.Equal(got, []string{"namingContexts"}) {
		t.Fatalf("explicit namingContexts gave %v", got)
	}
	// Compare works on the Root DSE, for anonymous clients too.
	// supportedLDAPVersion has no equality rule (RFC 4512 §5.1.7).
	_, err = l.Compare("", "supportedLDAPVersion", "3")
	wantCode(t, err, ldap.LDAPResultInappropriateMatching)
	if ok, err := l.Compare("", "subschemaSubentry", "CN=SUBSCHEMA"); err != nil || !ok {
		t.Fatalf("compare subschemaSubentry: %v %v", ok, err)
	}
	if ok, err := l.Compare("", "objectClass", "person"); err != nil || ok {
		t.Fatalf("compare objectClass: %v %v", ok, err)
	}
	_, err = l.Compare("", "description", "x")
	wantCode(t, err, ldap.LDAPResultNoSuchAttribute)
	// A filter that does not match returns nothing.
	if es := search(t, l, "", ldap.ScopeBaseObject, "(objectClass=person)"); len(es) != 0 {
		t.Fatalf("non-matching filter returned the root DSE")
	}
	// Subtree and one-level searches of "" search the suffix, the Root
	// DSE's only child (ldapsearch without -b).
	if es := search(t, root, "", ldap.ScopeWholeSubtree, "(uid=alice)"); len(es) != 1 || es[0].DN != testUserDN {
		t.Fatalf("subtree search of \"\": %v", dns(es))
	}
	if es := search(t, root, "", ldap.ScopeSingleLevel, "(objectClass=*)"); len(es) != 1 || es[0].DN != testSuffix {
		t.Fatalf("one-level search of \"\": %v", dns(es))
	}
	_, err = l.Search(ldap.NewSearchRequest("", ldap.ScopeWholeSubtree, 0, 0, 0, false, "(uid=alice)", nil, nil))
	wantCode(t, err, ldap.LDAPResultInsufficientAccessRights)
}

func TestSubschema(t *testing.T) {
	ts := newTestServer(t)
	l := ts.dial()
	e := search(t, l, "cn=Subschema", ldap.ScopeBaseObject, "(objectClass=*)")[0]
	if e.DN != "cn=Subschema" {
		t.Fatalf("DN %q", e.DN)
	}
	if got := attrNames(e); !slices.Equal(got, []string{"objectClass", "cn"}) {
		t.Fatalf("default attributes %v, want objectClass and cn", got)
	}
	if oc := e.GetAttributeValues("objectClass"); !slices.Contains(oc, "subschema") || !slices.Contains(oc, "subentry") {
		t.Fatalf("objectClass %v", oc)
	}
	e = search(t, l, "cn=subschema", ldap.ScopeBaseObject, "(objectClass=subschema)", "+")[0]
	for _, a := range []string{"attributeTypes", "objectClasses", "ldapSyntaxes", "matchingRules"} {
		if len(e.GetAttributeValues(a)) == 0 {
			t.Errorf("no %s with +", a)
		}
	}
	if !slices.ContainsFunc(e.GetAttributeValues("objectClasses"), func(v string) bool { return strings.Contains(v, "'posternDomain'") }) {
		t.Errorf("objectClasses lacks posternDomain")
	}
	e = search(t, l, "cn=Subschema", ldap.ScopeBaseObject, "(objectClass=*)", "attributeTypes")[0]
	if got := attrNames(e); !slices.Equal(got, []string{"attributeTypes"}) {
		t.Fatalf("explicit attributeTypes gave %v", got)
	}
}

func TestPagedResults(t *testing.T) {
	ts := newTestServer(t)
	l := ts.root()
	for i := range 23 {
		if err := l.Add(addReq(fmt.Sprintf("cn=d%02d.example,ou=domains,%s", i, testSuffix), "objectClass", "posternDomain", "cn", fmt.Sprintf("d%02d.example", i))); err != nil {
			t.Fatal(err)
		}
	}
	req := ldap.NewSearchRequest("ou=domains,"+testSuffix, ldap.ScopeSingleLevel, 0, 0, 0, false, "(objectClass=posternDomain)", []string{"cn"}, nil)
	res, err := l.SearchWithPaging(req, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) != 23 {
		t.Fatalf("paged search returned %d entries, want 23", len(res.Entries))
	}
	seen := map[string]bool{}
	for _, e := range res.Entries {
		if seen[e.DN] {
			t.Fatalf("%s returned twice", e.DN)
		}
		seen[e.DN] = true
	}

	// By hand: a page of 5; an entry deleted before its page is skipped.
	paging := ldap.NewControlPaging(5)
	req.Controls = []ldap.Control{paging}
	res, err = l.Search(req)
	if err != nil || len(res.Entries) != 5 {
		t.Fatalf("first page: %v, %d entries", err, len(res.Entries))
	}
	first := map[string]bool{}
	for _, e := range res.Entries {
		first[e.DN] = true
	}
	for i := range 23 {
		dn := fmt.Sprintf("cn=d%02d.example,ou=domains,%s", i, testSuffix)
		if !first[dn] {
			if err := l.Del(ldap.NewDelRequest(dn, nil)); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	cookie := ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging).Cookie
	if len(cookie) == 0 {
		t.Fatal("no cookie after the first page")
	}
	paging.SetCookie(cookie)
	paging.PagingSize = 100
	res, err = l.Search(req)
	if err != nil || len(res.Entries) != 17 {
		t.Fatalf("second page: %v, %d entries, want 17", err, len(res.Entries))
	}
	if c := ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging); len(c.Cookie) != 0 {
		t.Fatal("cookie after the last page")
	}

	// A size of 0 abandons the paged search.
	paging.SetCookie(nil)
	paging.PagingSize = 5
	res, err = l.Search(req)
	if err != nil {
		t.Fatal(err)
	}
	paging.SetCookie(ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging).Cookie)
	paging.PagingSize = 0
	res, err = l.Search(req)
	if err != nil || len(res.Entries) != 0 {
		t.Fatalf("abandoning page: %v, %d entries", err, len(res.Entries))
	}
	if c := ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging); len(c.Cookie) != 0 {
		t.Fatal("cookie after size 0")
	}
	// The abandoned cookie is gone.
	paging.PagingSize = 5
	_, err = l.Search(req)
	wantCode(t, err, ldap.LDAPResultProtocolError)

	// Cookies belong to their connection.
	paging.SetCookie(nil)
	res, err = l.Search(req)
	if err != nil {
		t.Fatal(err)
	}
	cookie = ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging).Cookie
	other := ts.root()
	paging.SetCookie(cookie)
	_, err = other.Search(req)
	wantCode(t, err, ldap.LDAPResultProtocolError)
}

func TestConcurrentOperationsOnOneConnection(t *testing.T) {
	ts := newTestServer(t)
	l := ts.root()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			uid := []string{"alice", "bob"}[i%2]
			res, err := l.Search(ldap.NewSearchRequest(testSuffix, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(uid="+uid+")", []string{"uid"}, nil))
			if err != nil {
				errs <- err
				return
			}
			if len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("uid") != uid {
				errs <- fmt.Errorf("search uid=%s got %v", uid, dns(res.Entries))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func memberDN(n int) string { return fmt.Sprintf("cn=m%d,ou=domains,%s", n, testSuffix) }

// addMember adds a posternMember entry with Cluster No. n.
func addMember(t *testing.T, l *ldap.Conn, n int) {
	t.Helper()
	err := l.Add(addReq(memberDN(n), "objectClass", "posternMember", "cn", fmt.Sprintf("m%d", n),
		"posternDeviceID", fmt.Sprintf("dev%d", n), "posternUUID", fmt.Sprintf("00000000-0000-4000-8000-00000000000%d", n),
		"posternClusterNo", fmt.Sprint(n)))
	if err != nil {
		t.Fatalf("add member %d: %v", n, err)
	}
}

// addReq builds a go-ldap AddRequest from type/value pairs.
func addReq(dn string, pairs ...string) *ldap.AddRequest {
	r := ldap.NewAddRequest(dn, nil)
	e := entry(dn, pairs...)
	for _, a := range e.Attributes {
		r.Attribute(a.Type, a.Vals)
	}
	return r
}
