// Package schema holds Postern's built-in LDAP schema: syntaxes, matching
// rules, attribute types and object classes (RFC 4512, RFC 4517, RFC 4519,
// RFC 2798, RFC 4530, OpenLDAP's operational attributes and Postern's own
// classes under the OID arc 2.25.37578560288487847975993306591114076867).
//
// It validates and normalises values, looks up types by name, alias or OID,
// normalises DNs per each naming attribute's equality rule, and renders the
// subschema attributes (RFC 4512 §4.1). It does not check entries against the
// schema; the store does, with the lookups offered here.
//
// Postern's attribute types are P.1.N and object classes P.2.N (P is the arc
// above): 1 posternDeliverTo, 2 posternTLSPolicy, 3 posternRelayNetwork,
// 4 posternSmarthost, 5 posternDeviceID, 6 posternUUID, 7 posternClusterNo,
// 8 posternRole, 9 posternHostname, 10 posternClusterAddress,
// 11 posternComment, 12 posternLocation, 13 posternFirmwareVersion,
// 14 posternLastUpdate, 15 posternHostKeyFingerprint, 16 posternBackendOf,
// 17 posternInjectTo, 18 posternNTPServer, 19 posternClusterUUID,
// 20 posternClusterPublicKey, 21 posternProtect, 22 posternAllowedIP,
// 23 posternJoinLock, 60-68 secure mail (posternPGPKey, posternPrivateKey,
// posternEncrypt, posternSign, posternSecureMethod, posternSubjectTrigger,
// posternNoKeyAction, posternDKIMKey, posternKeySource); classes 60
// posternSecure (auxiliary), 61 posternKeyEntry, and 1 posternDomain, 2 posternRelayPolicy,
// 3 posternMember, 4 posternCluster.
package schema
