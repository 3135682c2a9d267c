// Package filter implements LDAP search filters: the RFC 4515 string form
// (Parse, String), the RFC 4511 §4.5.1.7 BER form (Decode, Encode) and
// evaluation against an entry with the schema's matching rules, in the
// three-valued logic of RFC 4511 §4.5.1.7 (True, False, Undefined).
//
// It does not plan searches or use indexes; the store does.
package filter
