package ldapstore

import (
	"bytes"
	"context"

	"postern/ldapstore/csn"
	"postern/ldapstore/dn"
)

type modDNReq struct {
	t            *target
	newRDN       dn.RDN
	newRDNNorm   string
	deleteOldRDN bool
	sup          *target // nil: keep the parent
}

// ModifyDN renames dn to newRDN and, when newSuperior is not "", moves it
// below newSuperior (RFC 4511 §4.9). Subordinates move with it.
func (s *Store) ModifyDN(ctx context.Context, dn, newRDN string, deleteOldRDN bool, newSuperior string, by string) error {
	if err := s.writable(); err != nil {
		return err
	}
	r, err := s.prepareModDN(dn, newRDN, deleteOldRDN, newSuperior)
	if err != nil {
		return err
	}
	return s.submit(ctx, false, func(w *wtx) error { return w.modDN(r, by, csn.CSN{}) })
}

func (s *Store) prepareModDN(d, newRDN string, deleteOldRDN bool, newSuperior string) (*modDNReq, error) {
	t, err := s.resolve(d, true)
	if err != nil {
		return nil, err
	}
	if t.isSuffix(s) {
		return nil, Errorf(UnwillingToPerform, "cannot rename the suffix entry")
	}
	nr, err := dn.Parse(newRDN)
	if err != nil || len(nr) != 1 {
		return nil, Errorf(InvalidDNSyntax, "invalid new RDN")
	}
	norm, err := s.sch.NormalizeParsedDN(nr)
	if err != nil {
		return nil, Errorf(InvalidDNSyntax, "invalid new RDN")
	}
	for _, ava := range nr[0] {
		if at := s.sch.Attr(ava.Type); at.NoUserMod {
			return nil, Errorf(ConstraintViolation, "%s: no user modification allowed", ava.Type)
		}
	}
	r := &modDNReq{t: t, newRDN: nr[0], newRDNNorm: norm[0], deleteOldRDN: deleteOldRDN}
	if newSuperior != "" {
		if r.sup, err = s.resolve(newSuperior, true); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// modDN renames and moves an entry and rewrites its subordinates' DNs.
func (w *wtx) modDN(r *modDNReq, by string, c csn.CSN) error {
	s := w.s
	b := w.buckets()
	id, rec, err := loadKey(b, r.t.key)
	if err != nil {
		return err
	}
	if rec == nil {
		return noSuchObject(b, r.t.rdns)
	}
	parentRDNs := r.t.rdns[1:]
	if r.sup != nil {
		parentRDNs = r.sup.rdns
	}
	parentID, parentRec, err := loadKey(b, dnKey(parentRDNs))
	if err != nil {
		return err
	}
	if parentRec == nil {
		e := noSuchObject(b, parentRDNs)
		e.Message = "new superior does not exist"
		return e
	}
	oldKey := []byte(rec.key)
	newRDNs := append([]string{r.newRDNNorm}, parentRDNs...)
	newKey := dnKey(newRDNs)
	if bytes.HasPrefix(newKey, append(append([]byte(nil), oldKey...), 0)) {
		return Errorf(UnwillingToPerform, "new superior is the entry or one of its subordinates")
	}
	if other := b.dn.Get(newKey); other != nil && !bytes.Equal(other, id[:]) {
		return Errorf(EntryAlreadyExists, "Already exists")
	}
	newDN := r.newRDN.String() + "," + parentRec.entry.DN

	old := rec.entry
	e := old.Clone()
	e.DN = newDN
	oldParsed := r.t.parsed
	if r.deleteOldRDN {
		// RFC 4511 §4.9: remove the old RDN's values unless the new RDN keeps them.
		for _, ava := range oldParsed[0] {
			at := s.sch.Attr(ava.Type)
			if s.rdnHas(r.newRDN, ava) {
				continue
			}
			have := e.Get(at.Name())
			keep := make([]string, 0, len(have))
			n := s.norm(at, ava.Value)
			for _, v := range have {
				if s.norm(at, v) != n {
					keep = append(keep, v)
				}
			}
			e.Set(at.Name(), keep...)
		}
	}
	for _, ava := range r.newRDN {
		at := s.sch.Attr(ava.Type)
		have := e.Get(at.Name())
		if !s.hasValue(at, have, ava.Value) {
			if err := s.checkRDNValue(at, ava.Value, !c.IsZero()); err != nil {
				return err
			}
			e.Set(at.Name(), append(have[:len(have):len(have)], ava.Value)...)
		}
	}
	if _, err := s.checkEntry(e, s.sch.Class(old.First("structuralObjectClass"))); err != nil {
		return err
	}

	c = s.stamp(e, c, by)

	// the entry's DN and children index keys, and its subordinates' DNs
	if err := w.moveSubtree(b, id, rec, newKey, newDN, parentID); err != nil {
		return err
	}
	w.put(b.entries, id[:], w.encodeRecord(parentID, newKey, id[:], e))
	w.updateIndexes(b, id, old, e)
	w.logChange(b, c, ChangeModDN, id)
	return w.err
}

func (s *Store) rdnHas(r dn.RDN, ava dn.AVA) bool {
	at := s.sch.Attr(ava.Type)
	for _, x := range r {
		if xt := s.sch.Attr(x.Type); xt == at && s.norm(at, x.Value) == s.norm(at, ava.Value) {
			return true
		}
	}
	return false
}
