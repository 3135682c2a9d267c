// Package dn parses, prints and normalises LDAP distinguished names as
// RFC 4514 defines their string form.
//
// It knows no schema: Normalize folds every value as caseIgnoreMatch would and
// maps the common attribute type names and OIDs to their short names. Code
// that must follow each attribute's own equality rule normalises through
// NormalizeFunc (package schema does, for the store). It does not resolve
// aliases or check that attribute types exist.
package dn
