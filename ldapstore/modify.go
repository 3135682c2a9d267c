package ldapstore

import (
	"context"
	"math/big"

	"postern/ldapstore/csn"
	"postern/ldapstore/schema"
)

// modReq is a Modify with its modifications checked and canonicalised.
type modReq struct {
	t    *target
	mods []Modification
}

// Modify applies mods to dn atomically (RFC 4511 §4.6, RFC 4525 increment).
func (s *Store) Modify(ctx context.Context, dn string, mods []Modification, by string) error {
	if err := s.writable(); err != nil {
		return err
	}
	r, err := s.prepareModify(dn, mods)
	if err != nil {
		return err
	}
	return s.submit(ctx, false, func(w *wtx) error { return w.modify(r, by, csn.CSN{}) })
}

func (s *Store) prepareModify(dn string, mods []Modification) (*modReq, error) {
	t, err := s.resolve(dn, true)
	if err != nil {
		return nil, err
	}
	out := make([]Modification, 0, len(mods))
	for _, m := range mods {
		if m.Op < ModAdd || m.Op > ModIncrement {
			return nil, Errorf(ProtocolError, "unknown modify operation %d", m.Op)
		}
		d, err := s.describe(m.Attr.Type, false)
		if err != nil {
			return nil, err
		}
		at := d.Type
		if at.NoUserMod || computedAttrs[at.Name()] {
			return nil, Errorf(ConstraintViolation, "%s: no user modification allowed", m.Attr.Type)
		}
		vals := m.Attr.Vals
		switch m.Op {
		case ModAdd:
			if len(vals) == 0 {
				return nil, Errorf(ProtocolError, "modify/add: %s: no values given", at.Name())
			}
			fallthrough
		case ModReplace:
			if len(vals) > 0 {
				if vals, err = s.checkValues(at, vals, false); err != nil {
					return nil, err
				}
			}
		case ModIncrement:
			// RFC 4525 §2: exactly one value, an integer.
			if len(vals) != 1 {
				return nil, Errorf(ConstraintViolation, "modify/increment: %s: requires one value", at.Name())
			}
			if _, ok := new(big.Int).SetString(vals[0], 10); !ok {
				return nil, Errorf(InvalidAttributeSyntax, "modify/increment: %s: invalid syntax", at.Name())
			}
		}
		out = append(out, Modification{Op: m.Op, Attr: Attribute{Type: d.String(), Vals: vals}})
	}
	return &modReq{t: t, mods: out}, nil
}

// modify applies a Modify inside the batch transaction. A zero c means a
// new CSN.
func (w *wtx) modify(r *modReq, by string, c csn.CSN) error {
	s := w.s
	b := w.buckets()
	id, rec, err := loadKey(b, r.t.key)
	if err != nil {
		return err
	}
	if rec == nil {
		return noSuchObject(b, r.t.rdns)
	}
	old := rec.entry
	e := old.Clone()
	for _, m := range r.mods {
		if err := s.applyMod(e, m); err != nil {
			return err
		}
	}
	// RFC 4511 §4.6: the RDN's values cannot be removed by Modify.
	if m := s.missingRDN(e, r.t.parsed[0]); m != "" {
		return Errorf(NotAllowedOnRDN, "value of naming attribute '%s' is not present in entry", m)
	}
	if _, err := s.checkEntry(e, s.sch.Class(old.First("structuralObjectClass"))); err != nil {
		return err
	}
	c = s.stamp(e, c, by)
	w.put(b.entries, id[:], w.encodeRecord(rec.parent, []byte(rec.key), id[:], e))
	w.updateIndexes(b, id, old, e)
	w.logChange(b, c, ChangeModify, id)
	return w.err
}

// applyMod applies one modification to e (RFC 4511 §4.6).
func (s *Store) applyMod(e *Entry, m Modification) error {
	at := s.sch.Attr(m.Attr.Type)
	name := m.Attr.Type // the canonical attribute description (prepareModify)
	have := e.Get(name)
	switch m.Op {
	case ModAdd:
		for i, v := range m.Attr.Vals {
			if s.hasValue(at, have, v) {
				return Errorf(AttributeOrValueExists, "modify/add: %s: value #%d already exists", name, i)
			}
		}
		e.Set(name, append(have[:len(have):len(have)], m.Attr.Vals...)...)
	case ModDelete:
		if len(have) == 0 {
			return Errorf(NoSuchAttribute, "modify/delete: %s: no such attribute", name)
		}
		if len(m.Attr.Vals) == 0 {
			e.Set(name)
			return nil
		}
		keep := append([]string(nil), have...)
		for _, v := range m.Attr.Vals {
			n := s.norm(at, v)
			found := false
			for i, x := range keep {
				if x == v || s.norm(at, x) == n {
					keep = append(keep[:i], keep[i+1:]...)
					found = true
					break
				}
			}
			if !found {
				return Errorf(NoSuchAttribute, "modify/delete: %s: no such value", name)
			}
		}
		e.Set(name, keep...)
	case ModReplace:
		e.Set(name, m.Attr.Vals...)
	case ModIncrement:
		// RFC 4525 §2: the attribute must exist and be of integer type.
		if at.Equality == nil || at.Syntax.OID != schema.SyntaxInteger {
			return Errorf(ConstraintViolation, "modify/increment: %s: no increment rule for this attribute", name)
		}
		if len(have) == 0 {
			return Errorf(NoSuchAttribute, "modify/increment: %s: no such attribute", name)
		}
		delta, _ := new(big.Int).SetString(m.Attr.Vals[0], 10)
		out := make([]string, len(have))
		for i, v := range have {
			x, ok := new(big.Int).SetString(v, 10)
			if !ok {
				return Errorf(ConstraintViolation, "modify/increment: %s: value #%d is not an integer", name, i)
			}
			out[i] = x.Add(x, delta).String()
		}
		e.Set(name, out...)
	}
	return nil
}

// stamp marks e as changed by by at CSN c (a new CSN when c is zero; the
// generator never goes below a given one): entryCSN, modifiersName,
// modifyTimestamp. It returns the CSN used.
func (s *Store) stamp(e *Entry, c csn.CSN, by string) csn.CSN {
	if c.IsZero() {
		c = s.gen.Next()
	} else {
		s.gen.Observe(c)
	}
	e.Set("entryCSN", c.String())
	e.Set("modifiersName", by)
	e.Set("modifyTimestamp", genTime(c))
	return c
}
