package ldapstore

import (
	"context"
	"strings"
	"testing"
)

func TestAddErrors(t *testing.T) {
	s := openTest(t, Options{})
	seed(t, s)
	ctx := context.Background()
	must(t, s.Add(ctx, person("bob"), admin))
	p := "ou=people,dc=postern,dc=local"
	for _, tc := range []struct {
		name    string
		e       *Entry
		code    ResultCode
		matched string
	}{
		{"bad DN", entry("uid=x,,dc=postern", "objectClass", "top"), InvalidDNSyntax, ""},
		{"unknown RDN type", entry("foo=x,"+p, "objectClass", "top"), InvalidDNSyntax, ""},
		{"outside suffix", entry("dc=example,dc=com", "objectClass", "dcObject", "dc", "example"), UnwillingToPerform, ""},
		{"exists", person("bob"), EntryAlreadyExists, ""},
		{"exists other case", entry("UID=BOB,"+p, "objectClass", "inetOrgPerson", "uid", "BOB", "cn", "b", "sn", "b"), EntryAlreadyExists, ""},
		{"no parent", entry("uid=x,ou=nope,ou=people,dc=postern,dc=local", "objectClass", "inetOrgPerson", "uid", "x", "cn", "x", "sn", "x"), NoSuchObject, p},
		{"missing MUST", entry("uid=x,"+p, "objectClass", "inetOrgPerson", "uid", "x", "cn", "x"), ObjectClassViolation, ""},
		{"unknown class", entry("uid=x,"+p, "objectClass", "inetOrgPerson", "objectClass", "wizard", "uid", "x", "cn", "x", "sn", "x"), ObjectClassViolation, ""},
		{"no objectClass", entry("uid=x,"+p, "uid", "x"), ObjectClassViolation, ""},
		{"no structural", entry("uid=x,"+p, "objectClass", "uidObject", "uid", "x"), ObjectClassViolation, ""},
		{"two structural chains", entry("cn=x,"+p, "objectClass", "person", "objectClass", "groupOfNames", "cn", "x", "sn", "x", "member", "cn=a"), ObjectClassViolation, ""},
		{"attr not allowed", entry("cn=x,"+p, "objectClass", "person", "cn", "x", "sn", "x", "mail", "x@y"), ObjectClassViolation, ""},
		{"single value", entry("uid=x,"+p, "objectClass", "inetOrgPerson", "uid", "x", "cn", "x", "sn", "x", "displayName", "a", "displayName", "b"), ConstraintViolation, ""},
		{"undefined type", entry("uid=x,"+p, "objectClass", "inetOrgPerson", "uid", "x", "cn", "x", "sn", "x", "shoeSize", "9"), UndefinedAttributeType, ""},
		{"operational", entry("uid=x,"+p, "objectClass", "inetOrgPerson", "uid", "x", "cn", "x", "sn", "x", "entryUUID", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"), ConstraintViolation, ""},
		{"computed", entry("uid=x,"+p, "objectClass", "inetOrgPerson", "uid", "x", "cn", "x", "sn", "x", "hasSubordinates", "TRUE"), ConstraintViolation, ""},
		// RFC 4511 §4.7: a missing RDN value is added (TestAddRDNValues), but
		// a single-valued attribute holding another value conflicts
		{"RDN value conflicts", entry("dc=x,dc=postern,dc=local", "objectClass", "organization", "objectClass", "dcObject", "o", "x", "dc", "y"), NamingViolation, ""},
		{"duplicate value", entry("uid=x,"+p, "objectClass", "inetOrgPerson", "uid", "x", "cn", "x", "cn", "X", "sn", "x"), AttributeOrValueExists, ""},
		{"bad syntax", entry("cn=x,ou=cluster,dc=postern,dc=local", "objectClass", "posternMember", "cn", "x", "posternDeviceID", "d", "posternUUID", "u", "posternClusterNo", "one"), InvalidAttributeSyntax, ""},
		{"empty values", &Entry{DN: "uid=x," + p, Attributes: []Attribute{{Type: "objectClass", Vals: []string{"inetOrgPerson"}}, {Type: "uid", Vals: []string{"x"}}, {Type: "cn"}}}, ProtocolError, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Add(ctx, tc.e, admin)
			wantCode(t, err, tc.code)
			if tc.code == NoSuchObject && err.(*Error).MatchedDN != tc.matched {
				t.Fatalf("matchedDN %q, want %q", err.(*Error).MatchedDN, tc.matched)
			}
		})
	}
	// extensibleObject allows any user attribute
	must(t, s.Add(ctx, entry("cn=x,"+p, "objectClass", "person", "objectClass", "extensibleObject", "cn", "x", "sn", "x", "mail", "x@y"), admin))
	// an alias in the DN and attribute names resolves to the same type
	must(t, s.Add(ctx, entry("commonName=y,"+p, "objectClass", "person", "commonName", "y", "surname", "y"), admin))
	e, err := s.Get(ctx, "cn=Y,"+p)
	must(t, err)
	if e.First("cn") != "y" || e.First("sn") != "y" {
		t.Fatalf("aliases not canonicalised: %+v", e.Attributes)
	}
	// nothing refused above was counted
	if n, _ := s.Count(ctx); n != 8 {
		t.Fatalf("count %d", n)
	}
}

func TestModify(t *testing.T) {
	s := openTest(t, Options{})
	seed(t, s)
	ctx := context.Background()
	must(t, s.Add(ctx, person("bob"), admin))
	must(t, s.Add(ctx, entry("cn=m1,ou=cluster,dc=postern,dc=local", "objectClass", "posternMember", "cn", "m1", "posternDeviceID", "d1", "posternUUID", "u1", "posternClusterNo", "4"), admin))
	dn := "uid=bob,ou=people,dc=postern,dc=local"
	m := func(op ModOp, typ string, vals ...string) Modification {
		return Modification{Op: op, Attr: Attribute{Type: typ, Vals: vals}}
	}
	before, _ := s.Get(ctx, dn)
	for _, tc := range []struct {
		name string
		dn   string
		mods []Modification
		code ResultCode
	}{
		{"add value", dn, []Modification{m(ModAdd, "mail", "bob2@example.com")}, Success},
		{"add existing", dn, []Modification{m(ModAdd, "mail", "BOB2@example.com")}, AttributeOrValueExists},
		{"delete missing attr", dn, []Modification{m(ModDelete, "description")}, NoSuchAttribute},
		{"delete missing value", dn, []Modification{m(ModDelete, "mail", "nope@x")}, NoSuchAttribute},
		{"delete value", dn, []Modification{m(ModDelete, "mail", "bob2@EXAMPLE.com")}, Success},
		{"replace", dn, []Modification{m(ModReplace, "cn", "Bob", "Robert")}, Success},
		{"replace absent with nothing", dn, []Modification{m(ModReplace, "description")}, Success},
		{"remove MUST", dn, []Modification{m(ModDelete, "sn")}, ObjectClassViolation},
		{"remove RDN value", dn, []Modification{m(ModReplace, "uid", "robert")}, NotAllowedOnRDN},
		{"structural change", dn, []Modification{m(ModReplace, "objectClass", "person")}, ObjectClassModsProhibited},
		{"add auxiliary", dn, []Modification{m(ModAdd, "objectClass", "extensibleObject")}, Success},
		{"operational", dn, []Modification{m(ModReplace, "modifyTimestamp", "20200101000000Z")}, ConstraintViolation},
		{"undefined", dn, []Modification{m(ModAdd, "shoeSize", "9")}, UndefinedAttributeType},
		{"single value", dn, []Modification{m(ModAdd, "displayName", "a", "b")}, ConstraintViolation},
		{"increment non-integer", dn, []Modification{m(ModIncrement, "cn", "1")}, ConstraintViolation},
		{"increment", "cn=m1,ou=cluster,dc=postern,dc=local", []Modification{m(ModIncrement, "posternClusterNo", "3")}, Success},
		{"increment absent", "cn=m1,ou=cluster,dc=postern,dc=local", []Modification{m(ModDelete, "posternClusterNo"), m(ModIncrement, "posternClusterNo", "1")}, NoSuchAttribute},
		{"no such object", "uid=zed,ou=people,dc=postern,dc=local", []Modification{m(ModAdd, "cn", "z")}, NoSuchObject},
		{"atomic: second mod fails", dn, []Modification{m(ModAdd, "description", "x"), m(ModDelete, "title")}, NoSuchAttribute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, s.Modify(ctx, tc.dn, tc.mods, "cn=op"), tc.code)
		})
	}
	e, _ := s.Get(ctx, dn)
	if got := e.Get("cn"); len(got) != 2 || got[1] != "Robert" || len(e.Get("mail")) != 1 || e.First("description") != "" {
		t.Fatalf("after modifies: %+v", e.Attributes)
	}
	if e.First("modifiersName") != "cn=op" || e.First("entryCSN") <= before.First("entryCSN") || e.First("createTimestamp") != before.First("createTimestamp") {
		t.Fatalf("operational attributes not maintained: %+v", e.Attributes)
	}
	m1, _ := s.Get(ctx, "cn=m1,ou=cluster,dc=postern,dc=local")
	if m1.First("posternClusterNo") != "7" {
		t.Fatalf("increment: %v", m1.Get("posternClusterNo"))
	}
}

func TestModifyDN(t *testing.T) {
	s := openTest(t, Options{})
	seed(t, s)
	ctx := context.Background()
	must(t, s.Add(ctx, person("bob"), admin))
	must(t, s.Add(ctx, person("carol"), admin))
	must(t, s.Add(ctx, entry("ou=sub,uid=bob,ou=people,dc=postern,dc=local", "objectClass", "organizationalUnit", "ou", "sub"), admin))
	must(t, s.Add(ctx, entry("cn=leaf,ou=sub,uid=bob,ou=people,dc=postern,dc=local", "objectClass", "person", "cn", "leaf", "sn", "l"), admin))
	bob := "uid=bob,ou=people,dc=postern,dc=local"

	wantCode(t, s.ModifyDN(ctx, bob, "uid=carol", true, "", admin), EntryAlreadyExists)
	wantCode(t, s.ModifyDN(ctx, bob, "uid=x", true, "ou=nope,dc=postern,dc=local", admin), NoSuchObject)
	wantCode(t, s.ModifyDN(ctx, bob, "uid=x", true, "ou=sub,uid=bob,ou=people,dc=postern,dc=local", admin), UnwillingToPerform)
	wantCode(t, s.ModifyDN(ctx, "dc=postern,dc=local", "dc=x", true, "", admin), UnwillingToPerform)
	wantCode(t, s.ModifyDN(ctx, "uid=zed,ou=people,dc=postern,dc=local", "uid=x", true, "", admin), NoSuchObject)
	wantCode(t, s.ModifyDN(ctx, bob, "mail=x@y", false, "", admin), Success) // mail added as value
	wantCode(t, s.ModifyDN(ctx, "mail=x@y,ou=people,dc=postern,dc=local", "uid=robert", true, "", admin), Success)
	wantCode(t, s.ModifyDN(ctx, "uid=robert,ou=people,dc=postern,dc=local", "uid=rob", false, "ou=domains,dc=postern,dc=local", admin), Success)

	moved := "uid=rob,ou=domains,dc=postern,dc=local"
	e, err := s.Get(ctx, moved)
	must(t, err)
	if e.DN != moved {
		t.Fatalf("DN %q", e.DN)
	}
	// deleteOldRDN false keeps uid=robert; the rename to mail=... then back removed mail=x@y
	uids := e.Get("uid")
	if len(uids) != 3 || e.First("mail") != "bob@example.com" || len(e.Get("mail")) != 1 {
		t.Fatalf("attributes after renames: uid=%v mail=%v", uids, e.Get("mail"))
	}
	leaf, err := s.Get(ctx, "cn=leaf,ou=sub,"+moved)
	must(t, err)
	if leaf.DN != "cn=leaf,ou=sub,"+moved {
		t.Fatalf("descendant DN %q", leaf.DN)
	}
	_, err = s.Get(ctx, "cn=leaf,ou=sub,"+bob)
	wantCode(t, err, NoSuchObject)
	// the moved subtree is found by scope and index
	n := 0
	must(t, s.Search(ctx, &SearchRequest{BaseDN: "ou=domains,dc=postern,dc=local", Scope: ScopeSub, Filter: mustFilter(t, "(cn=leaf)")}, func(*Entry) error { n++; return nil }))
	if n != 1 {
		t.Fatalf("found %d", n)
	}
	// one-level below ou=people no longer lists bob
	var names []string
	must(t, s.Search(ctx, &SearchRequest{BaseDN: "ou=people,dc=postern,dc=local", Scope: ScopeOne}, func(e *Entry) error { names = append(names, e.DN); return nil }))
	if len(names) != 1 {
		t.Fatalf("ou=people children: %v", names)
	}
	// deleteOldRDN removing the last value of a MUST attribute is refused
	wantCode(t, s.ModifyDN(ctx, "cn=leaf,ou=sub,"+moved, "sn=l", true, "", admin), ObjectClassViolation)
}

func TestCompareAndPassword(t *testing.T) {
	s := openTest(t, Options{})
	seed(t, s)
	ctx := context.Background()
	p := person("dave")
	p.Set("userPassword", "s3cret")
	must(t, s.Add(ctx, p, admin))
	dn := p.DN
	e, _ := s.Get(ctx, dn)
	if h := e.First("userPassword"); len(h) < 40 || h[:len("{ARGON2}$argon2id$v=19$m=19456,t=2,p=1$")] != "{ARGON2}$argon2id$v=19$m=19456,t=2,p=1$" {
		t.Fatalf("password stored as %q", h)
	}
	must(t, s.CheckPassword(ctx, dn, "s3cret"))
	wantCode(t, s.CheckPassword(ctx, dn, "wrong"), InvalidCredentials)
	wantCode(t, s.CheckPassword(ctx, "uid=nobody,ou=people,dc=postern,dc=local", "s3cret"), InvalidCredentials)
	wantCode(t, s.CheckPassword(ctx, dn, ""), InvalidCredentials)
	must(t, s.SetPassword(ctx, dn, "n3w", admin))
	must(t, s.CheckPassword(ctx, dn, "n3w"))
	wantCode(t, s.CheckPassword(ctx, dn, "s3cret"), InvalidCredentials)

	for _, tc := range []struct {
		attr, val string
		want      bool
		code      ResultCode
	}{
		{"uid", "DAVE", true, Success},
		{"mail", "dave@example.com", true, Success},
		{"cn", "nobody", false, Success},
		{"name", "user dave", true, Success},
		{"description", "x", false, NoSuchAttribute},
		{"shoeSize", "9", false, UndefinedAttributeType},
	} {
		got, err := s.Compare(ctx, dn, tc.attr, tc.val)
		if got != tc.want || CodeOf(err) != tc.code {
			t.Errorf("Compare(%s=%s) = %v, %v", tc.attr, tc.val, got, err)
		}
	}
}

func TestVerifyPassword(t *testing.T) {
	h, err := HashPassword("pw")
	must(t, err)
	for _, tc := range []struct {
		hash, pw string
		want     bool
	}{
		{h, "pw", true},
		{h, "pW", false},
		// slappasswd -h {SSHA} -s secret (salt "salt")
		{"{SSHA}" + sshaOf("secret", "salt"), "secret", true},
		{"{SSHA}" + sshaOf("secret", "salt"), "Secret", false},
		{"{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "secret", true},
		{"{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "secret2", false},
		{"{CLEARTEXT}abc", "abc", true},
		{"plain", "plain", true},
		{"{ARGON2}$argon2id$v=19$m=999999999,t=2,p=1$c2FsdHNhbHQ$aGFzaA", "x", false},
		{"{ARGON2}garbage", "x", false},
		{"{UNKNOWN}x", "x", false},
	} {
		if got := VerifyPassword(tc.hash, tc.pw); got != tc.want {
			t.Errorf("VerifyPassword(%q, %q) = %v", tc.hash, tc.pw, got)
		}
	}
}

// TestAddRDNValues: RFC 4511 §4.7 lets a client leave the RDN's values out
// of an Add; the store adds them (as slapd: ldapstore/server's
// TestAddWithoutRDNValues compares the two).
func TestAddRDNValues(t *testing.T) {
	s := openTest(t, Options{})
	seed(t, s)
	ctx := context.Background()
	p := "ou=people,dc=postern,dc=local"
	must(t, s.Add(ctx, entry("uid=erin,"+p, "objectClass", "inetOrgPerson", "cn", "Erin", "sn", "E"), admin))
	must(t, s.Add(ctx, entry("uid=finn,"+p, "objectClass", "inetOrgPerson", "uid", "other", "cn", "Finn", "sn", "F"), admin))
	for dn, want := range map[string]string{"uid=erin," + p: "erin", "uid=finn," + p: "other|finn"} {
		e, err := s.Get(ctx, dn)
		must(t, err)
		if got := strings.Join(e.Get("uid"), "|"); got != want {
			t.Errorf("%s: uid %q, want %q", dn, got, want)
		}
	}
	// the uid index has the added value
	if got := search(t, s, "dc=postern,dc=local", ScopeSub, "(uid=erin)"); len(got) != 1 {
		t.Errorf("(uid=erin): %v", got)
	}
}
