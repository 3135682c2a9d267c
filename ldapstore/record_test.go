package ldapstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"postern/ldapstore/csn"
)

// TestRecordRoundTrip: an entry reads back attribute for attribute, value
// for value, whether its values fit the compact forms (a CSN, a timestamp,
// the entryUUID, a value repeated from another attribute, object class
// names) or are spelled otherwise, and a type added to the schema at run
// time keeps its name after a reopen with the built-in schema.
func TestRecordRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dir.db")
	s, err := Open(path, Options{})
	must(t, err)
	seed(t, s)
	ctx := context.Background()
	must(t, s.Schema().AddAttributeType("( 1.3.6.1.4.1.99999.7 NAME 'posternTestNote' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )"))
	e := person("carol")
	e.Set("objectClass", "Top", "inetOrgPerson", "extensibleObject")
	e.Set("entryUUID", "0190F2A4-3C2B-7D4E-8F00-0123456789AB") // upper case: kept as text
	e.Set("entryCSN", "20240102030405.123456Z#000001#001#000000")
	e.Set("createTimestamp", "20240102030405.5Z") // a fraction: kept as text
	e.Set("modifyTimestamp", "20240102030405Z")
	e.Set("creatorsName", admin)
	e.Set("modifiersName", admin)
	e.Set("description", "20240102030405Z", "second")
	e.Set("posternTestNote", "note one", "note two")
	must(t, s.ApplyEntry(ctx, e))
	must(t, s.Add(ctx, person("dave"), admin))
	want := map[string]*Entry{}
	for _, d := range []string{e.DN, person("dave").DN} {
		got, err := s.Get(ctx, d)
		must(t, err)
		want[d] = got
	}
	for k, v := range map[string][]string{
		"objectClass":     {"Top", "inetOrgPerson", "extensibleObject"},
		"entryUUID":       {"0190F2A4-3C2B-7D4E-8F00-0123456789AB"},
		"entryCSN":        {"20240102030405.123456Z#000001#001#000000"},
		"createTimestamp": {"20240102030405.5Z"},
		"modifyTimestamp": {"20240102030405Z"},
		"modifiersName":   {admin},
		"description":     {"20240102030405Z", "second"},
		"posternTestNote": {"note one", "note two"},
	} {
		if got := want[e.DN].Get(k); !slices.Equal(got, v) {
			t.Errorf("%s: got %q, want %q", k, got, v)
		}
	}
	dave := want[person("dave").DN]
	if dave.First("createTimestamp") != dave.First("modifyTimestamp") || !strings.HasSuffix(dave.First("createTimestamp"), "Z") || len(dave.First("createTimestamp")) != 15 {
		t.Errorf("dave's timestamps: %q %q", dave.First("createTimestamp"), dave.First("modifyTimestamp"))
	}
	if _, err := csn.Parse(dave.First("entryCSN")); err != nil || dave.First("structuralObjectClass") != "inetOrgPerson" {
		t.Errorf("dave: %+v", dave)
	}
	must(t, s.Close())

	s, err = Open(path, Options{})
	must(t, err)
	defer s.Close()
	for d, w := range want {
		got, err := s.Get(ctx, d)
		must(t, err)
		if !slices.EqualFunc(got.Attributes, w.Attributes, func(a, b Attribute) bool { return a.Type == b.Type && slices.Equal(a.Vals, b.Vals) }) {
			t.Errorf("%s after reopen:\n got %+v\nwant %+v", d, got.Attributes, w.Attributes)
		}
	}
}

// TestLayoutVersion: Open refuses a file written in another layout
// version, with an error that says so, and leaves the file as it was.
func TestLayoutVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dir.db")
	s, err := Open(path, Options{})
	must(t, err)
	seed(t, s)
	must(t, s.Close())
	db, err := bolt.Open(path, 0o600, nil)
	must(t, err)
	must(t, db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put(mVersion, []byte{1}) }))
	must(t, db.Close())

	s, err = Open(path, Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open accepted a version 1 file")
	}
	if !errors.Is(err, errLayoutVersion) || !strings.Contains(err.Error(), "version [1]") {
		t.Fatalf("Open: %v", err)
	}
	db, err = bolt.Open(path, 0o600, nil)
	must(t, err)
	defer db.Close()
	must(t, db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bMeta).Get(mVersion); !slices.Equal(v, []byte{1}) {
			t.Errorf("version now %v", v)
		}
		return nil
	}))
}

// TestIndexSetFollowsTheBuild: Open makes the file's indexes the ones this
// build maintains: an index sub-bucket it does not maintain (an older
// build's entryCSN index) is dropped, and a missing one is built from the
// entries, so indexed searches answer right and examine only their hits.
func TestIndexSetFollowsTheBuild(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dir.db")
	s, err := Open(path, Options{})
	must(t, err)
	seed(t, s)
	for i := range 50 {
		must(t, s.Add(ctx, person(fmt.Sprintf("ix%02d", i)), admin))
	}
	must(t, s.Close())

	// as an older build left it: an entryCSN index, no uid index
	db, err := bolt.Open(path, 0o600, nil)
	must(t, err)
	must(t, db.Update(func(tx *bolt.Tx) error {
		idx := tx.Bucket(bIdx)
		old, err := idx.CreateBucket([]byte("entryCSN"))
		if err != nil {
			return err
		}
		if err := old.Put([]byte("\x00stale\x00"), nil); err != nil {
			return err
		}
		return idx.DeleteBucket([]byte("uid"))
	}))
	must(t, db.Close())

	s, err = Open(path, Options{})
	must(t, err)
	defer s.Close()
	must(t, s.db.View(func(tx *bolt.Tx) error {
		idx := tx.Bucket(bIdx)
		if idx.Bucket([]byte("entryCSN")) != nil {
			t.Error("entryCSN index kept")
		}
		if n := idx.Bucket([]byte("uid")).Stats().KeyN; n != 50 {
			t.Errorf("uid index rebuilt with %d keys, want 50", n)
		}
		return nil
	}))
	before := s.Stats()
	got := search(t, s, "dc=postern,dc=local", ScopeSub, "(uid=ix07)")
	after := s.Stats()
	if len(got) != 1 || got[0] != person("ix07").DN {
		t.Fatalf("(uid=ix07) found %d entries", len(got))
	}
	if ex := after.EntriesExamined - before.EntriesExamined; ex > 1 || after.ScopeScans != before.ScopeScans {
		t.Fatalf("(uid=ix07) examined %d entries, scope scans %d: the rebuilt index was not used", ex, after.ScopeScans-before.ScopeScans)
	}
	must(t, s.Modify(ctx, person("ix08").DN, []Modification{{Op: ModAdd, Attr: Attribute{Type: "uid", Vals: []string{"ix08b"}}}}, admin))
	if got := search(t, s, "dc=postern,dc=local", ScopeSub, "(uid=ix08b)"); len(got) != 1 {
		t.Fatalf("(uid=ix08b) after a modify found %d entries", len(got))
	}
}
