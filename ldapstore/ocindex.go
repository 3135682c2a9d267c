package ldapstore

import (
	"sync"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"postern/ldapstore/schema"
)

// The objectClass index posts an entry under its most specific classes
// only: the stored classes that are no superclass of another stored class
// (an inetOrgPerson listed with person, organizationalPerson and top is
// posted once, under inetOrgPerson). An equality (objectClass=X) is the
// union of the postings of X and of every subclass of X, which finds the
// entries the filter matcher matches (RFC 4512 §2.4.1: an entry belongs to
// every superclass of its classes). (objectClass=top) holds for every entry
// and is answered by a scope scan.

// ocPostings returns the names under which the objectClass values vals are
// posted: the canonical names of the most specific known classes, and
// unknown values as they are.
func (s *Store) ocPostings(vals []string) []string {
	classes := make([]*schema.ObjectClass, len(vals))
	for i, v := range vals {
		classes[i] = s.sch.Class(v)
	}
	out := make([]string, 0, 2)
outer:
	for i, c := range classes {
		if c == nil {
			out = append(out, vals[i])
			continue
		}
		for j, o := range classes {
			if o == nil || o == c {
				if o == c && j < i {
					continue outer // listed twice
				}
				continue
			}
			if o.IsSubclassOf(c) {
				continue outer
			}
		}
		out = append(out, c.Name())
	}
	return out
}

// ocSubclasses caches, per object class, the names of the class and all its
// subclasses; it is rebuilt when the schema gains a class.
type ocSubclasses struct {
	mu      sync.Mutex
	nclass  int
	byClass map[*schema.ObjectClass][]string
}

// subclassNames returns the canonical names of oc and every class that
// inherits from it.
func (s *Store) subclassNames(oc *schema.ObjectClass) []string {
	c := &s.ocSubs
	all := s.sch.ObjectClasses()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byClass == nil || c.nclass != len(all) {
		c.byClass, c.nclass = map[*schema.ObjectClass][]string{}, len(all)
	}
	if names, ok := c.byClass[oc]; ok {
		return names
	}
	var names []string
	for _, x := range all {
		if x.IsSubclassOf(oc) {
			names = append(names, x.Name())
		}
	}
	c.byClass[oc] = names
	return names
}

// planObjectClass returns the candidates of (objectClass=value), whose
// normalised value is n; ok=false means a scope scan.
func (s *Store) planObjectClass(tx *bolt.Tx, value, n string, limit int) ([]uuid.UUID, bool) {
	oc := s.sch.Class(value)
	if oc == nil {
		oc = s.sch.Class(n)
	}
	if oc == nil {
		// the matcher compares unknown names as text: so do the postings
		s.stats.lookups.Add(1)
		return s.lookup(tx, s.ocAttr.Name(), n, limit)
	}
	if oc == s.topOC {
		return nil, false
	}
	var all []uuid.UUID
	for _, name := range s.subclassNames(oc) {
		s.stats.lookups.Add(1)
		ids, ok := s.lookup(tx, s.ocAttr.Name(), s.norm(s.ocAttr, name), limit)
		if !ok {
			return nil, false
		}
		all = union(all, ids)
		if len(all) > limit {
			return nil, false
		}
	}
	return all, true
}
