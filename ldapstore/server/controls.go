package server

import "postern/ldapstore"

// OIDs of the controls and extended operations the server implements.
const (
	OIDPagedResults    = "1.2.840.113556.1.4.319"  // RFC 2696
	OIDManageDsaIT     = "2.16.840.1.113730.3.4.2" // RFC 3296
	OIDStartTLS        = "1.3.6.1.4.1.1466.20037"  // RFC 4511 §4.14
	OIDWhoAmI          = "1.3.6.1.4.1.4203.1.11.3" // RFC 4532
	OIDPasswordModify  = "1.3.6.1.4.1.4203.1.11.1" // RFC 3062
	OIDAllOperational  = "1.3.6.1.4.1.4203.1.5.1"  // RFC 3673 "+"
	OIDAbsoluteFilter  = "1.3.6.1.4.1.4203.1.5.3"  // RFC 4526 (&) and (|)
	OIDModifyIncrement = "1.3.6.1.1.14"            // RFC 4525
)

// Control is an LDAP control (RFC 4511 §4.1.11). A nil Value is absent.
type Control struct {
	OID         string
	Criticality bool
	Value       []byte
}

// findControl returns the first control with oid, or nil.
func findControl(ctrls []Control, oid string) *Control {
	for i := range ctrls {
		if ctrls[i].OID == oid {
			return &ctrls[i]
		}
	}
	return nil
}

// checkControls applies RFC 4511 §4.1.11: a critical control the server
// does not recognise, or that is inappropriate for the operation, fails the
// operation with unavailableCriticalExtension; non-critical ones are
// ignored.
func (s *Server) checkControls(m *message) error {
	for _, c := range m.controls {
		if !c.Criticality || s.supportsControl(c.OID, m.op) {
			continue
		}
		return ldapstore.Errorf(ldapstore.UnavailableCriticalExtension, "critical control %s is not supported", c.OID)
	}
	return nil
}

func (s *Server) supportsControl(oid string, op any) bool {
	switch oid {
	case OIDManageDsaIT:
		// RFC 3296 §3: Postern keeps no referral objects, so every
		// operation already treats entries as ordinary ones.
		return true
	case OIDPagedResults:
		_, ok := op.(*searchRequest)
		return ok
	}
	if _, ok := op.(*searchRequest); !ok {
		return false
	}
	for _, h := range s.handlerOIDs() {
		if h == oid {
			return true
		}
	}
	return false
}

// pagedControl is the value of the paged results control (RFC 2696 §2):
// realSearchControlValue ::= SEQUENCE { size INTEGER (0..maxInt),
// cookie OCTET STRING }.
type pagedControl struct {
	size   int64
	cookie string
}

func decodePaged(v []byte) (pagedControl, error) {
	var pc pagedControl
	if v == nil {
		return pc, ldapstore.Errorf(ldapstore.ProtocolError, "paged results control without value")
	}
	top := reader{b: v}
	r, err := top.sequence(tagSequence, "realSearchControlValue")
	if err == nil {
		err = top.end("realSearchControlValue")
	}
	if err == nil {
		pc.size, err = r.integer(tagInteger, "size")
	}
	if err == nil {
		pc.cookie, err = r.octets(tagOctetString, "cookie")
	}
	if err == nil {
		err = r.end("realSearchControlValue")
	}
	if err != nil || pc.size < 0 {
		return pc, ldapstore.Errorf(ldapstore.ProtocolError, "malformed paged results control")
	}
	return pc, nil
}

// pagedResponse encodes the control returned with each page's
// SearchResultDone: size is the server's estimate of the entries left.
func pagedResponse(size int, cookie string) Control {
	var e encoder
	e.begin(tagSequence)
	e.int(tagInteger, int64(size))
	e.str(tagOctetString, cookie)
	e.end()
	return Control{OID: OIDPagedResults, Value: e.b}
}
