package ldapstore

import (
	"context"

	"github.com/google/uuid"

	"postern/ldapstore/csn"
	"postern/ldapstore/dn"
	"postern/ldapstore/schema"
)

// addReq is an Add checked against the schema, ready for the writer.
type addReq struct {
	t          *target
	e          *Entry
	structural string
	internal   bool
}

// Add adds e (RFC 4511 §4.7). by is the requester's DN (creatorsName).
func (s *Store) Add(ctx context.Context, e *Entry, by string) error {
	if err := s.writable(); err != nil {
		return err
	}
	r, err := s.prepareAdd(e, false)
	if err != nil {
		return err
	}
	return s.submit(ctx, false, func(w *wtx) error { return w.add(r, by) })
}

// prepareAdd does every check of an Add that does not depend on the
// database: DN syntax and suffix, attribute types and values, naming
// attributes, object classes (RFC 4512 §2.4).
func (s *Store) prepareAdd(e *Entry, internal bool) (*addReq, error) {
	if e == nil {
		return nil, Errorf(ProtocolError, "no entry")
	}
	t, err := s.resolve(e.DN, true)
	if err != nil {
		return nil, err
	}
	attrs, err := s.prepareAttrs(e.Attributes, internal)
	if err != nil {
		return nil, err
	}
	ne := &Entry{DN: e.DN, Attributes: attrs}
	if err := s.addRDNValues(ne, t.parsed[0], internal); err != nil {
		return nil, err
	}
	// slapd's entry_naming_check: the RDN's values must be in the entry.
	if m := s.missingRDN(ne, t.parsed[0]); m != "" {
		return nil, Errorf(NamingViolation, "value of naming attribute '%s' is not present in entry", m)
	}
	oc, err := s.checkEntry(ne, nil)
	if err != nil {
		return nil, err
	}
	return &addReq{t: t, e: ne, structural: oc.Name(), internal: internal}, nil
}

// add writes an Add inside the batch transaction.
func (w *wtx) add(r *addReq, by string) error {
	b := w.buckets()
	if b.dn.Get(r.t.key) != nil {
		return Errorf(EntryAlreadyExists, "Already exists")
	}
	var parent uuid.UUID
	if !r.t.isSuffix(w.s) {
		pv := b.dn.Get(r.t.parentKey())
		if pv == nil {
			return noSuchObject(b, r.t.rdns)
		}
		copy(parent[:], pv)
	}
	e := r.e.Clone()
	var id uuid.UUID
	var c csn.CSN
	if r.internal && e.First("entryUUID") != "" {
		var err error
		if id, err = uuid.Parse(e.First("entryUUID")); err != nil {
			return Errorf(InvalidAttributeSyntax, "entryUUID: invalid")
		}
		if b.entries.Get(id[:]) != nil {
			return Errorf(EntryAlreadyExists, "entryUUID %s already exists", id)
		}
	} else {
		id = newUUID()
	}
	if r.internal && e.First("entryCSN") != "" {
		var err error
		if c, err = csn.Parse(e.First("entryCSN")); err != nil {
			return Errorf(InvalidAttributeSyntax, "entryCSN: invalid")
		}
		w.s.gen.Observe(c)
	} else {
		c = w.s.gen.Next()
	}
	ts := genTime(c)
	setDefault(e, "structuralObjectClass", r.structural, r.internal)
	setDefault(e, "entryUUID", id.String(), r.internal)
	setDefault(e, "creatorsName", by, r.internal)
	setDefault(e, "createTimestamp", ts, r.internal)
	setDefault(e, "entryCSN", c.String(), r.internal)
	setDefault(e, "modifiersName", by, r.internal)
	setDefault(e, "modifyTimestamp", ts, r.internal)

	w.put(b.entries, id[:], w.encodeRecord(parent, r.t.key, id[:], e))
	w.put(b.dn, r.t.key, id[:])
	if !r.t.isSuffix(w.s) {
		w.put(b.children, childKey(parent, id), nil)
	}
	w.updateIndexes(b, id, nil, e)
	w.del(b.tombstones, id[:])
	w.logChange(b, c, ChangeAdd, id)
	w.count++
	return w.err
}

// setDefault sets an operational attribute; on the internal path a value
// given by the caller (the replication engine) is kept.
func setDefault(e *Entry, name, val string, keep bool) {
	if keep && len(e.Get(name)) > 0 {
		return
	}
	e.Set(name, val)
}

// newUUID returns a time-ordered (version 7) UUID, so that new entries append
// to the entries bucket instead of splitting pages at random.
func newUUID() uuid.UUID {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.New()
	}
	return id
}

func (w *wtx) buckets() buckets {
	if w.b.entries == nil {
		w.b = w.s.writeBuckets(w.tx)
	}
	return w.b
}

// addRDNValues adds to e the values of its RDN that it lacks. RFC 4511
// §4.7: "Clients MAY or MAY NOT include the RDN attribute(s) in this list";
// slapd's entry_naming_check adds them on Add, and so does Postern. A
// single-valued attribute that holds another value is left alone (slapd:
// namingViolation, "value of single-valued naming attribute conflicts").
func (s *Store) addRDNValues(e *Entry, rdn dn.RDN, internal bool) error {
	for _, ava := range rdn {
		at := s.sch.Attr(ava.Type)
		if at == nil {
			continue // resolve refused the DN already
		}
		have := e.Get(at.Name())
		if s.hasValue(at, have, ava.Value) {
			continue
		}
		if at.SingleValue && len(have) > 0 {
			return Errorf(NamingViolation, "value of single-valued naming attribute '%s' conflicts with value present in entry", at.Name())
		}
		if err := s.checkRDNValue(at, ava.Value, internal); err != nil {
			return err
		}
		e.Set(at.Name(), append(have[:len(have):len(have)], ava.Value)...)
	}
	return nil
}

// checkRDNValue checks a value an RDN adds to its entry (Add, ModifyDN):
// valid per syntax, and for userPassword one Postern can verify. It is
// stored as the DN spells it (not hashed: the DN names it).
func (s *Store) checkRDNValue(at *schema.AttributeType, v string, internal bool) error {
	if err := at.Syntax.Validate(v); err != nil {
		return Errorf(InvalidAttributeSyntax, "%s: value invalid per syntax", at.Name())
	}
	if at == s.pwAttr && !internal {
		if err := CheckPasswordValue(v); err != nil {
			return Errorf(ConstraintViolation, "%s: %v", at.Name(), err)
		}
	}
	return nil
}
