package ldapstore

import (
	"context"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
)

// Get returns the entry dn with its operational attributes, including the
// computed hasSubordinates and subschemaSubentry.
func (s *Store) Get(ctx context.Context, dn string) (*Entry, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	t, err := s.resolve(dn, false)
	if err != nil {
		return nil, err
	}
	var e *Entry
	defer s.noteRead()
	err = s.db.View(func(tx *bolt.Tx) error {
		b := s.bucketsOf(tx)
		id, r, err := loadKey(b, t.key)
		if err != nil {
			return err
		}
		if r == nil {
			return noSuchObject(b, t.rdns)
		}
		e = s.complete(b, id[:], r.entry)
		return nil
	})
	return e, err
}

// GetByUUID returns the entry whose entryUUID is id.
func (s *Store) GetByUUID(ctx context.Context, id string) (*Entry, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return nil, Errorf(NoSuchObject, "no entry with entryUUID %q", id)
	}
	var e *Entry
	defer s.noteRead()
	err = s.db.View(func(tx *bolt.Tx) error {
		b := s.bucketsOf(tx)
		buf := b.entries.Get(u[:])
		if buf == nil {
			return Errorf(NoSuchObject, "no entry with entryUUID %s", id)
		}
		r, err := b.decodeRecord(u[:], buf, 2)
		if err != nil {
			return err
		}
		e = s.complete(b, u[:], r.entry)
		return nil
	})
	return e, err
}

// complete appends the attributes computed on read (RFC 3673-style
// hasSubordinates, RFC 4512 §4.2 subschemaSubentry).
func (s *Store) complete(b buckets, id []byte, e *Entry) *Entry {
	vals := []string{"FALSE", SubschemaDN}
	if hasChildren(b, id) {
		vals[0] = "TRUE"
	}
	e.Attributes = append(e.Attributes,
		Attribute{Type: "hasSubordinates", Vals: vals[0:1:1]},
		Attribute{Type: "subschemaSubentry", Vals: vals[1:2:2]})
	return e
}

// Compare reports whether entry dn holds value in attr (RFC 4511 §4.10),
// an attribute description: its type's subtypes and the attributes with
// more options are compared too ("cn" compares cn;lang-de values,
// "cn;lang-de" only those). An unknown type or option is
// undefinedAttributeType, a type without equality rule
// inappropriateMatching, an absent attribute noSuchAttribute (as slapd).
func (s *Store) Compare(ctx context.Context, dn, attr, value string) (bool, error) {
	d, err := s.sch.Describe(attr)
	if err != nil {
		return false, Errorf(UndefinedAttributeType, "%s", err.Error())
	}
	at := d.Type
	if at.Equality == nil {
		return false, Errorf(InappropriateMatching, "%s: no equality matching rule", attr)
	}
	e, err := s.Get(ctx, dn)
	if err != nil {
		return false, err
	}
	want, err := at.Equality.Normalize(value)
	if err != nil {
		return false, Errorf(InvalidAttributeSyntax, "%s: value invalid per syntax", attr)
	}
	found := false
	for _, a := range e.Attributes {
		od, err := s.sch.Describe(a.Type)
		if err != nil || !d.Covers(od) {
			continue
		}
		for _, v := range a.Vals {
			found = true
			if n, err := at.Equality.Normalize(v); err == nil && n == want {
				return true, nil
			}
		}
	}
	if !found {
		return false, Errorf(NoSuchAttribute, "%s: no such attribute", attr)
	}
	return false, nil
}
