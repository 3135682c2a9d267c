package server

import (
	"math"

	"postern/ldapstore"
	"postern/ldapstore/filter"
)

// Application tags of the LDAP protocol operations (RFC 4511 Appendix B).
const (
	appBindRequest       = 0
	appBindResponse      = 1
	appUnbindRequest     = 2
	appSearchRequest     = 3
	appSearchEntry       = 4
	appSearchDone        = 5
	appModifyRequest     = 6
	appModifyResponse    = 7
	appAddRequest        = 8
	appAddResponse       = 9
	appDelRequest        = 10
	appDelResponse       = 11
	appModDNRequest      = 12
	appModDNResponse     = 13
	appCompareRequest    = 14
	appCompareResponse   = 15
	appAbandonRequest    = 16
	appExtendedRequest   = 23
	appExtendedResponse  = 24
	appIntermediateReply = 25
)

// message is one decoded LDAPMessage (RFC 4511 §4.1.1).
type message struct {
	id       int64
	op       any // one of the *xxxRequest types below
	controls []Control
}

type bindRequest struct {
	version  int64
	name     string
	method   int    // context tag of the AuthenticationChoice: 0 simple, 3 sasl
	password string // simple
	mech     string // sasl
}

type unbindRequest struct{}

type searchRequest struct {
	base      string
	scope     ldapstore.Scope
	deref     int64
	sizeLimit int64
	timeLimit int64
	typesOnly bool
	filter    *filter.Filter
	attrs     []string
}

type modifyRequest struct {
	dn   string
	mods []ldapstore.Modification
}

type addRequest struct {
	entry *ldapstore.Entry
}

type delRequest struct {
	dn string
}

type modDNRequest struct {
	dn           string
	newRDN       string
	deleteOldRDN bool
	newSuperior  string
	hasSuperior  bool
}

type compareRequest struct {
	dn, attr, value string
}

type abandonRequest struct {
	id int64
}

type extendedRequest struct {
	name     string
	value    []byte
	hasValue bool
}

// Identifier octets of the requests (RFC 4511 Appendix B).
const (
	idBindRequest     = classApplication | constructed | appBindRequest
	idUnbindRequest   = classApplication | appUnbindRequest
	idSearchRequest   = classApplication | constructed | appSearchRequest
	idModifyRequest   = classApplication | constructed | appModifyRequest
	idAddRequest      = classApplication | constructed | appAddRequest
	idDelRequest      = classApplication | appDelRequest
	idModDNRequest    = classApplication | constructed | appModDNRequest
	idCompareRequest  = classApplication | constructed | appCompareRequest
	idAbandonRequest  = classApplication | appAbandonRequest
	idExtendedRequest = classApplication | constructed | appExtendedRequest
	idControls        = classContext | constructed | 0
)

// decodeMessage decodes one LDAPMessage as framed by readFrame. Every
// structural error is a *MalformedError: RFC 4511 §4.1.1 asks the server to
// answer those with a Notice of Disconnection. Nothing returned refers to
// b, which the caller reuses.
func decodeMessage(b []byte) (*message, error) {
	top := reader{b: b}
	r, err := top.sequence(tagSequence, "LDAPMessage")
	if err != nil {
		return nil, err
	}
	if err := top.end("LDAPMessage"); err != nil {
		return nil, err
	}
	id, err := r.integer(tagInteger, "messageID")
	if err != nil {
		return nil, err
	}
	// RFC 4511 §4.1.1.1: messageID 0 is reserved for unsolicited
	// notifications; clients use 1..maxInt.
	if id <= 0 || id > math.MaxInt32 {
		return nil, malformed("messageID %d out of range", id)
	}
	m := &message{id: id}
	op, err := r.next()
	if err != nil {
		return nil, err
	}
	if r.more() {
		cr, err := r.sequence(idControls, "controls")
		if err != nil {
			return nil, err
		}
		if m.controls, err = decodeControls(cr); err != nil {
			return nil, err
		}
		if err := r.end("LDAPMessage"); err != nil {
			return nil, err
		}
	}
	or := reader{b: op.content}
	switch op.id {
	case idBindRequest:
		m.op, err = decodeBind(or)
	case idUnbindRequest:
		// RFC 4511 §4.3: UnbindRequest ::= [APPLICATION 2] NULL
		if len(op.content) != 0 {
			return nil, malformed("UnbindRequest is not NULL")
		}
		m.op = &unbindRequest{}
	case idSearchRequest:
		m.op, err = decodeSearch(or)
	case idModifyRequest:
		m.op, err = decodeModify(or)
	case idAddRequest:
		m.op, err = decodeAdd(or)
	case idDelRequest:
		// RFC 4511 §4.8: DelRequest ::= [APPLICATION 10] LDAPDN
		m.op = &delRequest{dn: string(op.content)}
	case idModDNRequest:
		m.op, err = decodeModDN(or)
	case idCompareRequest:
		m.op, err = decodeCompare(or)
	case idAbandonRequest:
		// RFC 4511 §4.11: AbandonRequest ::= [APPLICATION 16] MessageID
		var id int64
		if id, err = parseInt(op.content, "AbandonRequest"); err == nil {
			m.op = &abandonRequest{id: id}
		}
	case idExtendedRequest:
		m.op, err = decodeExtended(or)
	default:
		return nil, malformed("protocolOp 0x%02x is not a request", op.id)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// RFC 4511 §4.2: BindRequest ::= [APPLICATION 0] SEQUENCE { version
// INTEGER (1..127), name LDAPDN, authentication AuthenticationChoice }.
func decodeBind(r reader) (*bindRequest, error) {
	v, err := r.integer(tagInteger, "version")
	if err != nil {
		return nil, err
	}
	name, err := r.octets(tagOctetString, "name")
	if err != nil {
		return nil, err
	}
	req := &bindRequest{version: v, name: name}
	auth, err := r.next()
	if err != nil {
		return nil, err
	}
	if auth.id&0xc0 != classContext {
		return nil, malformed("AuthenticationChoice is not context-tagged")
	}
	req.method = int(auth.id & 0x1f)
	switch auth.id {
	case classContext | 0: // simple [0] OCTET STRING
		req.password = string(auth.content)
	case classContext | constructed | 3: // sasl [3] SaslCredentials
		sr := reader{b: auth.content}
		if req.mech, err = sr.octets(tagOctetString, "mechanism"); err != nil {
			return nil, err
		}
	}
	return req, r.end("BindRequest")
}

// RFC 4511 §4.5.1: SearchRequest ::= [APPLICATION 3] SEQUENCE { baseObject,
// scope, derefAliases, sizeLimit, timeLimit, typesOnly, filter, attributes }.
func decodeSearch(r reader) (*searchRequest, error) {
	req := &searchRequest{}
	var err error
	if req.base, err = r.octets(tagOctetString, "baseObject"); err != nil {
		return nil, err
	}
	scope, err := r.integer(tagEnumerated, "scope")
	if err != nil {
		return nil, err
	}
	// RFC 4511 §4.5.1.2: baseObject (0), singleLevel (1), wholeSubtree (2).
	if scope < 0 || scope > 2 {
		return nil, malformed("scope %d", scope)
	}
	req.scope = ldapstore.Scope(scope)
	if req.deref, err = r.integer(tagEnumerated, "derefAliases"); err != nil {
		return nil, err
	}
	if req.deref < 0 || req.deref > 3 {
		return nil, malformed("derefAliases %d", req.deref)
	}
	if req.sizeLimit, err = r.integer(tagInteger, "sizeLimit"); err != nil {
		return nil, err
	}
	if req.timeLimit, err = r.integer(tagInteger, "timeLimit"); err != nil {
		return nil, err
	}
	// RFC 4511 §4.5.1.4/5: INTEGER (0..maxInt).
	if req.sizeLimit < 0 || req.sizeLimit > math.MaxInt32 || req.timeLimit < 0 || req.timeLimit > math.MaxInt32 {
		return nil, malformed("negative or oversized limit")
	}
	if req.typesOnly, err = r.boolean("typesOnly"); err != nil {
		return nil, err
	}
	// RFC 4511 §4.5.1.7: the Filter CHOICE is decoded by package filter.
	fe, err := r.next()
	if err != nil {
		return nil, err
	}
	if req.filter, err = decodeFilter(fe); err != nil {
		return nil, err
	}
	ar, err := r.sequence(tagSequence, "attributes")
	if err != nil {
		return nil, err
	}
	for ar.more() {
		a, err := ar.octets(tagOctetString, "attribute selector")
		if err != nil {
			return nil, err
		}
		req.attrs = append(req.attrs, a)
	}
	return req, r.end("SearchRequest")
}

// decodeFilter decodes a search's Filter (RFC 4511 §4.5.1.7). The two
// forms most searches use, an equalityMatch of two primitive values and
// present, are read straight from the element; every other form goes
// through package filter's decoder, by way of a ber.Packet tree (for one
// equality filter that tree was 4 % of a search's CPU).
func decodeFilter(fe element) (*filter.Filter, error) {
	switch fe.id {
	case 0xa3: // [3] equalityMatch AttributeValueAssertion
		r := reader{b: fe.content}
		if a, err := r.next(); err == nil && !a.constructed() && len(a.content) > 0 {
			if v, err := r.next(); err == nil && !v.constructed() && !r.more() {
				return &filter.Filter{Kind: filter.Equality, Attr: string(a.content), Value: string(v.content)}, nil
			}
		}
	case 0x87: // [7] present AttributeDescription
		if len(fe.content) > 0 {
			return &filter.Filter{Kind: filter.Present, Attr: string(fe.content)}, nil
		}
	}
	fp, err := packet(fe, 0)
	if err != nil {
		return nil, err
	}
	f, err := filter.Decode(fp)
	if err != nil {
		return nil, malformed("filter: %v", err)
	}
	return f, nil
}

// RFC 4511 §4.6: ModifyRequest ::= [APPLICATION 6] SEQUENCE { object LDAPDN,
// changes SEQUENCE OF change SEQUENCE { operation ENUMERATED, modification
// PartialAttribute } }; RFC 4525 adds increment (3).
func decodeModify(r reader) (*modifyRequest, error) {
	dn, err := r.octets(tagOctetString, "object")
	if err != nil {
		return nil, err
	}
	cr, err := r.sequence(tagSequence, "changes")
	if err != nil {
		return nil, err
	}
	req := &modifyRequest{dn: dn}
	for cr.more() {
		ch, err := cr.sequence(tagSequence, "change")
		if err != nil {
			return nil, err
		}
		opn, err := ch.integer(tagEnumerated, "operation")
		if err != nil {
			return nil, err
		}
		if opn < 0 || opn > 3 {
			return nil, malformed("modify operation %d", opn)
		}
		a, err := partialAttribute(&ch)
		if err != nil {
			return nil, err
		}
		if err := ch.end("change"); err != nil {
			return nil, err
		}
		req.mods = append(req.mods, ldapstore.Modification{Op: ldapstore.ModOp(opn), Attr: a})
	}
	return req, r.end("ModifyRequest")
}

// RFC 4511 §4.7: AddRequest ::= [APPLICATION 8] SEQUENCE { entry LDAPDN,
// attributes AttributeList }.
func decodeAdd(r reader) (*addRequest, error) {
	dn, err := r.octets(tagOctetString, "entry")
	if err != nil {
		return nil, err
	}
	lr, err := r.sequence(tagSequence, "AttributeList")
	if err != nil {
		return nil, err
	}
	e := &ldapstore.Entry{DN: dn}
	for lr.more() {
		a, err := partialAttribute(&lr)
		if err != nil {
			return nil, err
		}
		e.Attributes = append(e.Attributes, a)
	}
	return &addRequest{entry: e}, r.end("AddRequest")
}

// RFC 4511 §4.9: ModifyDNRequest ::= [APPLICATION 12] SEQUENCE { entry,
// newrdn, deleteoldrdn BOOLEAN, newSuperior [0] LDAPDN OPTIONAL }.
func decodeModDN(r reader) (*modDNRequest, error) {
	req := &modDNRequest{}
	var err error
	if req.dn, err = r.octets(tagOctetString, "entry"); err != nil {
		return nil, err
	}
	if req.newRDN, err = r.octets(tagOctetString, "newrdn"); err != nil {
		return nil, err
	}
	if req.deleteOldRDN, err = r.boolean("deleteoldrdn"); err != nil {
		return nil, err
	}
	if r.more() {
		if req.newSuperior, err = r.octets(classContext|0, "newSuperior"); err != nil {
			return nil, err
		}
		req.hasSuperior = true
	}
	return req, r.end("ModifyDNRequest")
}

// RFC 4511 §4.10: CompareRequest ::= [APPLICATION 14] SEQUENCE { entry
// LDAPDN, ava AttributeValueAssertion }.
func decodeCompare(r reader) (*compareRequest, error) {
	req := &compareRequest{}
	var err error
	if req.dn, err = r.octets(tagOctetString, "entry"); err != nil {
		return nil, err
	}
	ava, err := r.sequence(tagSequence, "ava")
	if err != nil {
		return nil, err
	}
	if req.attr, err = ava.octets(tagOctetString, "attributeDesc"); err != nil {
		return nil, err
	}
	if req.value, err = ava.octets(tagOctetString, "assertionValue"); err != nil {
		return nil, err
	}
	if err := ava.end("ava"); err != nil {
		return nil, err
	}
	return req, r.end("CompareRequest")
}

// RFC 4511 §4.12: ExtendedRequest ::= [APPLICATION 23] SEQUENCE {
// requestName [0] LDAPOID, requestValue [1] OCTET STRING OPTIONAL }.
func decodeExtended(r reader) (*extendedRequest, error) {
	req := &extendedRequest{}
	var err error
	if req.name, err = r.octets(classContext|0, "requestName"); err != nil {
		return nil, err
	}
	if r.more() {
		v, err := r.expect(classContext|1, "requestValue")
		if err != nil {
			return nil, err
		}
		req.value = append([]byte{}, v.content...)
		req.hasValue = true
	}
	return req, r.end("ExtendedRequest")
}

// partialAttribute reads PartialAttribute ::= SEQUENCE { type
// AttributeDescription, vals SET OF value AttributeValue } (RFC 4511
// §4.1.7).
func partialAttribute(r *reader) (ldapstore.Attribute, error) {
	var a ldapstore.Attribute
	pr, err := r.sequence(tagSequence, "PartialAttribute")
	if err != nil {
		return a, err
	}
	if a.Type, err = pr.octets(tagOctetString, "type"); err != nil {
		return a, err
	}
	vr, err := pr.sequence(tagSet, "vals")
	if err != nil {
		return a, err
	}
	for vr.more() {
		v, err := vr.octets(tagOctetString, "value")
		if err != nil {
			return a, err
		}
		a.Vals = append(a.Vals, v)
	}
	return a, pr.end("PartialAttribute")
}

// decodeControls decodes the contents of Controls ::= [0] SEQUENCE OF
// control Control (RFC 4511 §4.1.11): Control ::= SEQUENCE { controlType
// LDAPOID, criticality BOOLEAN DEFAULT FALSE, controlValue OCTET STRING
// OPTIONAL }.
func decodeControls(r reader) ([]Control, error) {
	var out []Control
	for r.more() {
		cr, err := r.sequence(tagSequence, "Control")
		if err != nil {
			return nil, err
		}
		var c Control
		if c.OID, err = cr.octets(tagOctetString, "controlType"); err != nil {
			return nil, err
		}
		if cr.more() && cr.b[0] == tagBoolean {
			if c.Criticality, err = cr.boolean("criticality"); err != nil {
				return nil, err
			}
		}
		if cr.more() {
			v, err := cr.expect(tagOctetString, "controlValue")
			if err != nil {
				return nil, err
			}
			c.Value = append([]byte{}, v.content...)
		}
		if err := cr.end("Control"); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
