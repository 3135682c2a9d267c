package schema

// The built-in definitions, in RFC 4512 §4.1 description form. Sources:
// RFC 4512 §3.3/§4.2/§5.1 (operational and root DSE), RFC 4519 (user
// schema), RFC 2798 (inetOrgPerson), RFC 4530 (entryUUID), RFC 3045-ish
// OpenLDAP operational types (entryCSN, contextCSN), RFC 5020 (entryDN).

const (
	ds   = "SYNTAX 1.3.6.1.4.1.1466.115.121.1.15"
	dnS  = "EQUALITY distinguishedNameMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.12"
	ci   = "EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch " + ds
	ia5S = "EQUALITY caseIgnoreIA5Match SUBSTR caseIgnoreIA5SubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.26"
	oct  = "EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40"
	tel  = "EQUALITY telephoneNumberMatch SUBSTR telephoneNumberSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.50"
	gt   = "EQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.24"
	num  = "EQUALITY numericStringMatch SUBSTR numericStringSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.36"
	op   = "SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation"

	// P is Postern's OID arc.
	P = "2.25.37578560288487847975993306591114076867"
)

var attributeTypeDefs = []string{
	// RFC 4512 §3.3, §4.2, §5.1
	"( 2.5.4.0 NAME 'objectClass' EQUALITY objectIdentifierMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.38 )",
	"( 2.5.4.1 NAME ( 'aliasedObjectName' 'aliasedEntryName' ) " + dnS + " SINGLE-VALUE )",
	"( 2.5.18.1 NAME 'createTimestamp' " + gt + " " + op + " )",
	"( 2.5.18.2 NAME 'modifyTimestamp' " + gt + " " + op + " )",
	"( 2.5.18.3 NAME 'creatorsName' " + dnS + " " + op + " )",
	"( 2.5.18.4 NAME 'modifiersName' " + dnS + " " + op + " )",
	"( 2.5.18.9 NAME 'hasSubordinates' EQUALITY booleanMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.7 " + op + " )",
	"( 2.5.18.10 NAME 'subschemaSubentry' " + dnS + " " + op + " )",
	"( 2.5.21.9 NAME 'structuralObjectClass' EQUALITY objectIdentifierMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.38 " + op + " )",
	"( 1.3.6.1.1.16.4 NAME 'entryUUID' EQUALITY UUIDMatch ORDERING UUIDOrderingMatch SYNTAX 1.3.6.1.1.16.1 " + op + " )",
	"( 1.3.6.1.4.1.4203.666.1.7 NAME 'entryCSN' EQUALITY CSNMatch ORDERING CSNOrderingMatch SYNTAX 1.3.6.1.4.1.4203.666.11.2.1{64} " + op + " )",
	"( 1.3.6.1.4.1.4203.666.1.25 NAME 'contextCSN' EQUALITY CSNMatch ORDERING CSNOrderingMatch SYNTAX 1.3.6.1.4.1.4203.666.11.2.1{64} NO-USER-MODIFICATION USAGE dSAOperation )",
	"( 1.3.6.1.1.20 NAME 'entryDN' " + dnS + " " + op + " )",
	"( 1.3.6.1.4.1.1466.101.120.5 NAME 'namingContexts' SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 USAGE dSAOperation )",
	"( 1.3.6.1.4.1.1466.101.120.6 NAME 'altServer' SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 USAGE dSAOperation )",
	"( 1.3.6.1.4.1.1466.101.120.7 NAME 'supportedExtension' SYNTAX 1.3.6.1.4.1.1466.115.121.1.38 USAGE dSAOperation )",
	"( 1.3.6.1.4.1.1466.101.120.13 NAME 'supportedControl' SYNTAX 1.3.6.1.4.1.1466.115.121.1.38 USAGE dSAOperation )",
	"( 1.3.6.1.4.1.1466.101.120.14 NAME 'supportedSASLMechanisms' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 USAGE dSAOperation )",
	"( 1.3.6.1.4.1.1466.101.120.15 NAME 'supportedLDAPVersion' SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 USAGE dSAOperation )",
	"( 1.3.6.1.4.1.4203.1.3.5 NAME 'supportedFeatures' EQUALITY objectIdentifierMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.38 USAGE dSAOperation )",
	"( 1.3.6.1.4.1.1466.101.120.16 NAME 'ldapSyntaxes' EQUALITY objectIdentifierFirstComponentMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.54 USAGE directoryOperation )",
	"( 2.5.21.4 NAME 'matchingRules' EQUALITY objectIdentifierFirstComponentMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.30 USAGE directoryOperation )",
	"( 2.5.21.5 NAME 'attributeTypes' EQUALITY objectIdentifierFirstComponentMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.3 USAGE directoryOperation )",
	"( 2.5.21.6 NAME 'objectClasses' EQUALITY objectIdentifierFirstComponentMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.37 USAGE directoryOperation )",
	"( 2.5.21.8 NAME 'matchingRuleUse' EQUALITY objectIdentifierFirstComponentMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.31 USAGE directoryOperation )",

	// RFC 4519 §2
	"( 2.5.4.41 NAME 'name' " + ci + "{32768} )",
	"( 2.5.4.49 NAME 'distinguishedName' " + dnS + " )",
	"( 2.5.4.3 NAME ( 'cn' 'commonName' ) SUP name )",
	"( 2.5.4.4 NAME ( 'sn' 'surname' ) SUP name )",
	"( 2.5.4.6 NAME ( 'c' 'countryName' ) SUP name SYNTAX 1.3.6.1.4.1.1466.115.121.1.11 SINGLE-VALUE )",
	"( 2.5.4.7 NAME ( 'l' 'localityName' ) SUP name )",
	"( 2.5.4.8 NAME ( 'st' 'stateOrProvinceName' ) SUP name )",
	"( 2.5.4.9 NAME ( 'street' 'streetAddress' ) " + ci + "{128} )",
	"( 2.5.4.10 NAME ( 'o' 'organizationName' ) SUP name )",
	"( 2.5.4.11 NAME ( 'ou' 'organizationalUnitName' ) SUP name )",
	"( 2.5.4.12 NAME 'title' SUP name )",
	"( 2.5.4.13 NAME 'description' " + ci + "{1024} )",
	"( 2.5.4.14 NAME 'searchGuide' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )",
	"( 2.5.4.15 NAME 'businessCategory' " + ci + "{128} )",
	"( 2.5.4.16 NAME 'postalAddress' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.41 )",
	"( 2.5.4.17 NAME 'postalCode' " + ci + "{40} )",
	"( 2.5.4.18 NAME 'postOfficeBox' " + ci + "{40} )",
	"( 2.5.4.19 NAME 'physicalDeliveryOfficeName' " + ci + "{128} )",
	"( 2.5.4.20 NAME 'telephoneNumber' " + tel + "{32} )",
	"( 2.5.4.21 NAME 'telexNumber' SYNTAX 1.3.6.1.4.1.1466.115.121.1.52 )",
	"( 2.5.4.22 NAME 'teletexTerminalIdentifier' SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 )",
	"( 2.5.4.23 NAME ( 'facsimileTelephoneNumber' 'fax' ) SYNTAX 1.3.6.1.4.1.1466.115.121.1.22 )",
	"( 2.5.4.24 NAME 'x121Address' " + num + "{15} )",
	"( 2.5.4.25 NAME 'internationaliSDNNumber' " + num + "{16} )",
	"( 2.5.4.26 NAME 'registeredAddress' SUP postalAddress SYNTAX 1.3.6.1.4.1.1466.115.121.1.41 )",
	"( 2.5.4.27 NAME 'destinationIndicator' EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.44{128} )",
	"( 2.5.4.28 NAME 'preferredDeliveryMethod' SYNTAX 1.3.6.1.4.1.1466.115.121.1.14 SINGLE-VALUE )",
	"( 2.5.4.31 NAME 'member' SUP distinguishedName )",
	"( 2.5.4.32 NAME 'owner' SUP distinguishedName )",
	"( 2.5.4.33 NAME 'roleOccupant' SUP distinguishedName )",
	"( 2.5.4.34 NAME 'seeAlso' SUP distinguishedName )",
	"( 2.5.4.35 NAME 'userPassword' " + oct + "{128} )",
	"( 2.5.4.36 NAME 'userCertificate' DESC 'X.509 user certificate' EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.8 )",
	"( 2.5.4.37 NAME 'cACertificate' DESC 'X.509 CA certificate' EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.8 )",
	"( 2.5.4.42 NAME ( 'givenName' 'gn' ) SUP name )",
	"( 2.5.4.43 NAME 'initials' SUP name )",
	"( 2.5.4.44 NAME 'generationQualifier' SUP name )",
	"( 2.5.4.45 NAME 'x500UniqueIdentifier' EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.6 )",
	"( 2.5.4.50 NAME 'uniqueMember' EQUALITY uniqueMemberMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.34 )",
	"( 2.5.4.51 NAME 'houseIdentifier' " + ci + "{32768} )",
	"( 0.9.2342.19200300.100.1.25 NAME ( 'dc' 'domainComponent' ) " + ia5S + " SINGLE-VALUE )",
	"( 0.9.2342.19200300.100.1.1 NAME ( 'uid' 'userid' ) " + ci + "{256} )",
	"( 0.9.2342.19200300.100.1.3 NAME ( 'mail' 'rfc822Mailbox' ) " + ia5S + "{256} )",

	// RFC 2798 §2 and the COSINE types inetOrgPerson allows
	"( 0.9.2342.19200300.100.1.55 NAME 'audio' SYNTAX 1.3.6.1.4.1.1466.115.121.1.40{250000} )",
	"( 2.16.840.1.113730.3.1.1 NAME 'carLicense' " + ci + " )",
	"( 2.16.840.1.113730.3.1.2 NAME 'departmentNumber' " + ci + " )",
	"( 2.16.840.1.113730.3.1.241 NAME 'displayName' " + ci + " SINGLE-VALUE )",
	"( 2.16.840.1.113730.3.1.3 NAME 'employeeNumber' " + ci + " SINGLE-VALUE )",
	"( 2.16.840.1.113730.3.1.4 NAME 'employeeType' " + ci + " )",
	"( 0.9.2342.19200300.100.1.20 NAME ( 'homePhone' 'homeTelephoneNumber' ) " + tel + " )",
	"( 0.9.2342.19200300.100.1.39 NAME 'homePostalAddress' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.41 )",
	"( 0.9.2342.19200300.100.1.60 NAME 'jpegPhoto' SYNTAX 1.3.6.1.4.1.1466.115.121.1.28 )",
	"( 1.3.6.1.4.1.250.1.57 NAME 'labeledURI' EQUALITY caseExactMatch " + ds + " )",
	"( 0.9.2342.19200300.100.1.10 NAME 'manager' " + dnS + " )",
	"( 0.9.2342.19200300.100.1.41 NAME ( 'mobile' 'mobileTelephoneNumber' ) " + tel + " )",
	"( 0.9.2342.19200300.100.1.42 NAME ( 'pager' 'pagerTelephoneNumber' ) " + tel + " )",
	"( 0.9.2342.19200300.100.1.7 NAME 'photo' SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 )",
	"( 0.9.2342.19200300.100.1.6 NAME 'roomNumber' " + ci + "{256} )",
	"( 0.9.2342.19200300.100.1.21 NAME 'secretary' " + dnS + " )",
	"( 2.16.840.1.113730.3.1.39 NAME 'preferredLanguage' " + ci + " SINGLE-VALUE )",
	"( 2.16.840.1.113730.3.1.40 NAME 'userSMIMECertificate' SYNTAX 1.3.6.1.4.1.1466.115.121.1.5 )",
	"( 2.16.840.1.113730.3.1.216 NAME 'userPKCS12' SYNTAX 1.3.6.1.4.1.1466.115.121.1.5 )",

	// Postern (package doc lists the numbering)
	"( " + P + ".1.1 NAME 'posternDeliverTo' DESC 'host:port of the delivery server' " + ci + " SINGLE-VALUE )",
	"( " + P + ".1.2 NAME 'posternTLSPolicy' DESC 'none, may or encrypt' " + ci + " SINGLE-VALUE )",
	"( " + P + ".1.3 NAME 'posternRelayNetwork' DESC 'CIDR allowed to relay' " + ci + " )",
	"( " + P + ".1.4 NAME 'posternSmarthost' DESC 'host:port' " + ci + " SINGLE-VALUE )",
	"( " + P + ".1.5 NAME 'posternDeviceID' " + ci + " )",
	"( " + P + ".1.6 NAME 'posternUUID' " + ci + " )",
	"( " + P + ".1.7 NAME 'posternClusterNo' EQUALITY integerMatch ORDERING integerOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )",
	"( " + P + ".1.8 NAME 'posternRole' DESC 'backend or frontend' " + ci + " SINGLE-VALUE )",
	"( " + P + ".1.9 NAME 'posternHostname' " + ci + " )",
	"( " + P + ".1.10 NAME 'posternClusterAddress' DESC 'ip:port' " + ci + " SINGLE-VALUE )",
	"( " + P + ".1.11 NAME 'posternComment' " + ci + " )",
	"( " + P + ".1.12 NAME 'posternLocation' " + ci + " )",
	"( " + P + ".1.13 NAME 'posternFirmwareVersion' " + ci + " )",
	"( " + P + ".1.14 NAME 'posternLastUpdate' " + gt + " SINGLE-VALUE )",
	"( " + P + ".1.15 NAME 'posternHostKeyFingerprint' " + ci + " )",
	"( " + P + ".1.16 NAME 'posternBackendOf' DESC 'device IDs' " + ci + " )",
	"( " + P + ".1.17 NAME 'posternInjectTo' DESC 'device IDs' " + ci + " )",
	"( " + P + ".1.18 NAME 'posternNTPServer' " + ci + " )",
	"( " + P + ".1.19 NAME 'posternClusterUUID' " + ci + " )",
	"( " + P + ".1.20 NAME 'posternClusterPublicKey' " + ci + " )",
	"( " + P + ".1.21 NAME 'posternProtect' EQUALITY booleanMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.7 SINGLE-VALUE )",
	"( " + P + ".1.22 NAME 'posternAllowedIP' " + ci + " )",
	"( " + P + ".1.23 NAME 'posternJoinLock' " + ci + " SINGLE-VALUE )",
	// replication (issue 4): marks a conflict or lost+found entry with the DN it was meant to have
	"( " + P + ".1.24 NAME 'posternReplConflict' DESC 'DN a replication conflict or lost+found entry was meant to have' " + dnS + " SINGLE-VALUE )",
	// cluster (issue 5): a member's SSH device key (authorized_keys form), and removed members' revoked keys
	"( " + P + ".1.40 NAME 'posternDeviceKey' DESC 'SSH public key, authorized_keys format' " + ci + " SINGLE-VALUE )",
	"( " + P + ".1.41 NAME 'posternRevokedKey' DESC 'SHA256 fingerprints of removed members device keys' " + ci + " )",
	// replication (issue 4): the Root DSE publishes the live entry count, so a
	// consumer's "N entries in remote database" costs one base search
	"( " + P + ".1.43 NAME 'posternParentUUID' DESC 'entryUUID of the parent entry, sent by a Postern replication provider when asked for by name' EQUALITY UUIDMatch SYNTAX 1.3.6.1.1.16.1 " + op + " )",
	"( " + P + ".1.44 NAME 'posternPrunedCSN' DESC 'per server ID, the newest change pruned from the changelog' EQUALITY CSNMatch ORDERING CSNOrderingMatch SYNTAX 1.3.6.1.4.1.4203.666.11.2.1{64} NO-USER-MODIFICATION USAGE dSAOperation )",
	// secure mail (issue 15): keys, certificates and the encryption policy
	"( " + P + ".1.60 NAME 'posternPGPKey' DESC 'OpenPGP public key, ASCII armoured' " + oct + " )",
	"( " + P + ".1.61 NAME 'posternPrivateKey' DESC 'a private key encrypted under the cluster key-encryption key: kind fingerprint blob' " + oct + " )",
	"( " + P + ".1.62 NAME 'posternEncrypt' DESC 'never, if-key or always' " + ci + " SINGLE-VALUE )",
	"( " + P + ".1.63 NAME 'posternSign' DESC 'never or always' " + ci + " SINGLE-VALUE )",
	"( " + P + ".1.64 NAME 'posternSecureMethod' DESC 'smime or pgp' " + ci + " SINGLE-VALUE )",
	"( " + P + ".1.65 NAME 'posternSubjectTrigger' DESC 'subject prefix that forces encryption' " + ci + " SINGLE-VALUE )",
	"( " + P + ".1.66 NAME 'posternNoKeyAction' DESC 'reject or bounce' " + ci + " SINGLE-VALUE )",
	"( " + P + ".1.67 NAME 'posternDKIMKey' DESC 'selector and base64 SubjectPublicKeyInfo of a DKIM key' " + ci + " )",
	"( " + P + ".1.68 NAME 'posternKeySource' DESC 'how the keys got here: generated, imported or collected' " + ci + " )",
	"( " + P + ".1.42 NAME 'posternEntryCount' DESC 'live entries in the directory' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE NO-USER-MODIFICATION USAGE dSAOperation )",
}

const orgMay = "userPassword $ searchGuide $ seeAlso $ businessCategory $ x121Address $ registeredAddress $ destinationIndicator $ preferredDeliveryMethod $ telexNumber $ teletexTerminalIdentifier $ telephoneNumber $ internationaliSDNNumber $ facsimileTelephoneNumber $ street $ postOfficeBox $ postalCode $ postalAddress $ physicalDeliveryOfficeName $ st $ l $ description"

var objectClassDefs = []string{
	"( 2.5.6.0 NAME 'top' ABSTRACT MUST objectClass )",
	"( 2.5.6.1 NAME 'alias' SUP top STRUCTURAL MUST aliasedObjectName )",
	"( 1.3.6.1.4.1.1466.101.120.111 NAME 'extensibleObject' SUP top AUXILIARY )",
	// OpenLDAP's glue: a placeholder parent that replication keeps until the real one arrives
	"( 1.3.6.1.4.1.4203.666.3.4 NAME 'glue' DESC 'Glue Entry' SUP top STRUCTURAL )",
	"( 2.5.20.1 NAME 'subschema' AUXILIARY MAY ( matchingRules $ attributeTypes $ objectClasses $ matchingRuleUse $ ldapSyntaxes ) )",
	"( 1.3.6.1.4.1.1466.344 NAME 'dcObject' SUP top AUXILIARY MUST dc )",
	"( 2.5.6.4 NAME 'organization' SUP top STRUCTURAL MUST o MAY ( " + orgMay + " ) )",
	"( 2.5.6.5 NAME 'organizationalUnit' SUP top STRUCTURAL MUST ou MAY ( " + orgMay + " ) )",
	"( 2.5.6.6 NAME 'person' SUP top STRUCTURAL MUST ( sn $ cn ) MAY ( userPassword $ telephoneNumber $ seeAlso $ description ) )",
	"( 2.5.6.7 NAME 'organizationalPerson' SUP person STRUCTURAL MAY ( title $ x121Address $ registeredAddress $ destinationIndicator $ preferredDeliveryMethod $ telexNumber $ teletexTerminalIdentifier $ telephoneNumber $ internationaliSDNNumber $ facsimileTelephoneNumber $ street $ postOfficeBox $ postalCode $ postalAddress $ physicalDeliveryOfficeName $ ou $ st $ l ) )",
	"( 2.16.840.1.113730.3.2.2 NAME 'inetOrgPerson' SUP organizationalPerson STRUCTURAL MAY ( audio $ businessCategory $ carLicense $ departmentNumber $ displayName $ employeeNumber $ employeeType $ givenName $ homePhone $ homePostalAddress $ initials $ jpegPhoto $ labeledURI $ mail $ manager $ mobile $ o $ pager $ photo $ roomNumber $ secretary $ uid $ userCertificate $ x500UniqueIdentifier $ preferredLanguage $ userSMIMECertificate $ userPKCS12 ) )",
	"( 2.5.6.9 NAME 'groupOfNames' SUP top STRUCTURAL MUST ( member $ cn ) MAY ( businessCategory $ seeAlso $ owner $ ou $ o $ description ) )",
	"( 2.5.6.17 NAME 'groupOfUniqueNames' SUP top STRUCTURAL MUST ( uniqueMember $ cn ) MAY ( businessCategory $ seeAlso $ owner $ ou $ o $ description ) )",
	"( 1.3.6.1.1.3.1 NAME 'uidObject' SUP top AUXILIARY MUST uid )",
	"( 0.9.2342.19200300.100.4.19 NAME 'simpleSecurityObject' SUP top AUXILIARY MUST userPassword )",
	"( " + P + ".2.1 NAME 'posternDomain' DESC 'a managed mail domain' SUP top STRUCTURAL MUST cn MAY ( posternDeliverTo $ posternTLSPolicy $ description ) )",
	"( " + P + ".2.2 NAME 'posternRelayPolicy' DESC 'relay permissions' SUP top STRUCTURAL MUST cn MAY ( posternRelayNetwork $ posternSmarthost ) )",
	"( " + P + ".2.3 NAME 'posternMember' DESC 'a cluster member' SUP top STRUCTURAL MUST ( cn $ posternDeviceID $ posternUUID ) MAY ( posternClusterNo $ posternRole $ posternHostname $ posternClusterAddress $ posternComment $ posternLocation $ posternFirmwareVersion $ posternLastUpdate $ posternHostKeyFingerprint $ posternBackendOf $ posternInjectTo $ posternNTPServer $ posternDeviceKey $ description ) )",
	"( " + P + ".2.4 NAME 'posternCluster' DESC 'the cluster' SUP top STRUCTURAL MUST cn MAY ( posternClusterUUID $ posternClusterPublicKey $ posternProtect $ posternAllowedIP $ posternJoinLock $ posternRevokedKey $ description ) )",
	// secure mail (issue 15): the keys and policy of a user (inetOrgPerson), a managed domain
	// (posternDomain) or the cluster (cn=secure,ou=config); key entries below ou=keys hold those of
	// external partners, of internal addresses without a user entry, and the internal CA
	"( " + P + ".2.60 NAME 'posternSecure' DESC 'keys and secure mail policy' SUP top AUXILIARY MAY ( userCertificate $ userSMIMECertificate $ cACertificate $ posternPGPKey $ posternPrivateKey $ posternDKIMKey $ posternKeySource $ posternEncrypt $ posternSign $ posternSecureMethod $ posternSubjectTrigger $ posternNoKeyAction ) )",
	"( " + P + ".2.61 NAME 'posternKeyEntry' DESC 'keys of an address or a domain without a user or domain entry, or a CA' SUP top STRUCTURAL MUST cn MAY ( mail $ description ) )",
	// replication (issue 4): a user attribute with an auxiliary class, as slapd refuses operational types from schema files
	"( " + P + ".2.24 NAME 'posternConflict' DESC 'a replication conflict or lost+found entry' SUP top AUXILIARY MAY posternReplConflict )",
}
