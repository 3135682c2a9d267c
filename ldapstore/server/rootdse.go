package server

import (
	"context"
	"sort"
	"strconv"

	"postern/ldapstore"
	"postern/ldapstore/filter"
)

// rootDSE builds the Root DSE (RFC 4512 §5.1) as it is now: contextCSN
// changes with every write. Everything but objectClass is operational, so a
// plain base search of "" shows only objectClass, and "+" or explicit names
// show the rest, as with slapd. What only bound clients may see depends
// on id.
func (s *Server) rootDSE(id identity) *ldapstore.Entry {
	e := &ldapstore.Entry{DN: ""}
	e.Set("objectClass", "top")
	e.Set("namingContexts", s.suffix)
	e.Set("subschemaSubentry", subschemaDN)
	e.Set("supportedControl", s.supportedControls()...)
	ext := []string{OIDWhoAmI, OIDPasswordModify}
	if s.tls != nil {
		ext = append([]string{OIDStartTLS}, ext...)
	}
	e.Set("supportedExtension", ext...)
	// RFC 3673 "+", RFC 4526 absolute true/false filters, RFC 4525
	// modify-increment.
	e.Set("supportedFeatures", OIDAllOperational, OIDAbsoluteFilter, OIDModifyIncrement)
	e.Set("supportedLDAPVersion", "3")
	// RFC 3045: vendorName and vendorVersion.
	e.Set("vendorName", "Postern")
	if s.cfg.VendorVersion != "" {
		e.Set("vendorVersion", s.cfg.VendorVersion)
	}
	// DESIGN.md: contextCSN, one value per server ID.
	e.Set("contextCSN", s.store.ContextCSN().Strings()...)
	// Postern: the live entry count (a counter the store keeps), so that a
	// replication consumer shows "N entries in remote database" without
	// listing the whole tree. Not for anonymous clients: the size of the
	// directory is the tree's business, which they may not read.
	if n, err := s.store.Count(context.Background()); err == nil && !id.anonymous() {
		e.Set("posternEntryCount", strconv.Itoa(n))
	}
	// Postern: per server ID, the newest change pruned from the changelog
	// and tombstones. A replication consumer reads it before a present
	// phase: an entry the provider does not hold, whose CSN the provider
	// has pruned past, was deleted there longer ago than the retention.
	if p := s.store.Pruned(); len(p) > 0 && !id.anonymous() {
		e.Set("posternPrunedCSN", p.Strings()...)
	}
	return e
}

func (s *Server) supportedControls() []string {
	out := []string{OIDManageDsaIT, OIDPagedResults}
	out = append(out, s.handlerOIDs()...)
	sort.Strings(out)
	return out
}

// buildSubschema builds the cn=Subschema subentry (RFC 4512 §4.2) from the
// store's schema. Its schema attributes are operational: they are returned
// only when asked for by name or with "+".
func (s *Server) buildSubschema() *ldapstore.Entry {
	e := &ldapstore.Entry{DN: subschemaDN}
	e.Set("objectClass", "top", "subentry", "subschema", "extensibleObject")
	e.Set("cn", "Subschema")
	e.Set("structuralObjectClass", "subentry")
	ts := s.started.Format("20060102150405Z")
	e.Set("createTimestamp", ts)
	e.Set("modifyTimestamp", ts)
	e.Set("subschemaSubentry", subschemaDN)
	attrs := s.store.Schema().SubschemaAttributes()
	for _, k := range []string{"ldapSyntaxes", "matchingRules", "matchingRuleUse", "attributeTypes", "objectClasses"} {
		if v := attrs[k]; len(v) > 0 {
			e.Set(k, v...)
		}
		delete(attrs, k)
	}
	rest := make([]string, 0, len(attrs))
	for k := range attrs {
		rest = append(rest, k)
	}
	sort.Strings(rest)
	for _, k := range rest {
		e.Set(k, attrs[k]...)
	}
	return e
}

// matches evaluates a search filter against the Root DSE or the subschema
// subentry; a nil filter is (objectClass=*).
func (s *Server) matches(f *filter.Filter, e *ldapstore.Entry) bool {
	return f == nil || f.Matches(s.store.Schema(), e)
}
