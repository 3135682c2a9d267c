package server

import (
	"math"

	ber "github.com/go-asn1-ber/asn1-ber"

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

// decodeMessage decodes one LDAPMessage as framed by readFrame. Every
// structural error is a *MalformedError: RFC 4511 §4.1.1 asks the server to
// answer those with a Notice of Disconnection.
func decodeMessage(b []byte) (*message, error) {
	p, err := ber.DecodePacketErr(b)
	if err != nil {
		return nil, malformed("%v", err)
	}
	if !is(p, ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence) {
		return nil, malformed("LDAPMessage is not a SEQUENCE")
	}
	if len(p.Children) < 2 || len(p.Children) > 3 {
		return nil, malformed("LDAPMessage has %d elements", len(p.Children))
	}
	id, err := integer(p.Children[0], ber.ClassUniversal, ber.TagInteger)
	if err != nil {
		return nil, err
	}
	// RFC 4511 §4.1.1.1: messageID 0 is reserved for unsolicited
	// notifications; clients use 1..maxInt.
	if id <= 0 || id > math.MaxInt32 {
		return nil, malformed("messageID %d out of range", id)
	}
	m := &message{id: id}
	if len(p.Children) == 3 {
		if m.controls, err = decodeControls(p.Children[2]); err != nil {
			return nil, err
		}
	}
	op := p.Children[1]
	if op.ClassType != ber.ClassApplication {
		return nil, malformed("protocolOp is not an application tag")
	}
	switch op.Tag {
	case appBindRequest:
		m.op, err = decodeBind(op)
	case appUnbindRequest:
		if op.TagType != ber.TypePrimitive || op.Data.Len() != 0 {
			return nil, malformed("UnbindRequest is not NULL")
		}
		m.op = &unbindRequest{}
	case appSearchRequest:
		m.op, err = decodeSearch(op)
	case appModifyRequest:
		m.op, err = decodeModify(op)
	case appAddRequest:
		m.op, err = decodeAdd(op)
	case appDelRequest:
		if op.TagType != ber.TypePrimitive {
			return nil, malformed("DelRequest is not primitive")
		}
		m.op = &delRequest{dn: op.Data.String()}
	case appModDNRequest:
		m.op, err = decodeModDN(op)
	case appCompareRequest:
		m.op, err = decodeCompare(op)
	case appAbandonRequest:
		var id int64
		if id, err = integer(op, ber.ClassApplication, appAbandonRequest); err == nil {
			m.op = &abandonRequest{id: id}
		}
	case appExtendedRequest:
		m.op, err = decodeExtended(op)
	default:
		return nil, malformed("protocolOp tag %d is not a request", op.Tag)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// RFC 4511 §4.2: BindRequest ::= [APPLICATION 0] SEQUENCE { version
// INTEGER (1..127), name LDAPDN, authentication AuthenticationChoice }.
func decodeBind(op *ber.Packet) (*bindRequest, error) {
	if err := fields(op, "BindRequest", 3, 3); err != nil {
		return nil, err
	}
	c := op.Children
	v, err := integer(c[0], ber.ClassUniversal, ber.TagInteger)
	if err != nil {
		return nil, err
	}
	name, err := octets(c[1], ber.ClassUniversal, ber.TagOctetString)
	if err != nil {
		return nil, err
	}
	r := &bindRequest{version: v, name: name}
	auth := c[2]
	if auth.ClassType != ber.ClassContext {
		return nil, malformed("AuthenticationChoice is not context-tagged")
	}
	r.method = int(auth.Tag)
	switch auth.Tag {
	case 0: // simple [0] OCTET STRING
		if r.password, err = octets(auth, ber.ClassContext, 0); err != nil {
			return nil, err
		}
	case 3: // sasl [3] SaslCredentials
		if err := fields(auth, "SaslCredentials", 1, 2); err != nil {
			return nil, err
		}
		if r.mech, err = octets(auth.Children[0], ber.ClassUniversal, ber.TagOctetString); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// RFC 4511 §4.5.1: SearchRequest ::= [APPLICATION 3] SEQUENCE { baseObject,
// scope, derefAliases, sizeLimit, timeLimit, typesOnly, filter, attributes }.
func decodeSearch(op *ber.Packet) (*searchRequest, error) {
	if err := fields(op, "SearchRequest", 8, 8); err != nil {
		return nil, err
	}
	c := op.Children
	r := &searchRequest{}
	var err error
	if r.base, err = octets(c[0], ber.ClassUniversal, ber.TagOctetString); err != nil {
		return nil, err
	}
	scope, err := integer(c[1], ber.ClassUniversal, ber.TagEnumerated)
	if err != nil {
		return nil, err
	}
	// RFC 4511 §4.5.1.2: baseObject (0), singleLevel (1), wholeSubtree (2).
	if scope < 0 || scope > 2 {
		return nil, malformed("scope %d", scope)
	}
	r.scope = ldapstore.Scope(scope)
	if r.deref, err = integer(c[2], ber.ClassUniversal, ber.TagEnumerated); err != nil {
		return nil, err
	}
	if r.deref < 0 || r.deref > 3 {
		return nil, malformed("derefAliases %d", r.deref)
	}
	if r.sizeLimit, err = integer(c[3], ber.ClassUniversal, ber.TagInteger); err != nil {
		return nil, err
	}
	if r.timeLimit, err = integer(c[4], ber.ClassUniversal, ber.TagInteger); err != nil {
		return nil, err
	}
	// RFC 4511 §4.5.1.4/5: INTEGER (0..maxInt).
	if r.sizeLimit < 0 || r.sizeLimit > math.MaxInt32 || r.timeLimit < 0 || r.timeLimit > math.MaxInt32 {
		return nil, malformed("negative or oversized limit")
	}
	if r.typesOnly, err = boolean(c[5]); err != nil {
		return nil, err
	}
	// RFC 4511 §4.5.1.7: the Filter CHOICE is decoded by package filter.
	if r.filter, err = filter.Decode(c[6]); err != nil {
		return nil, malformed("filter: %v", err)
	}
	if !is(c[7], ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence) {
		return nil, malformed("attributes is not a SEQUENCE")
	}
	if n := len(c[7].Children); n > 0 {
		r.attrs = make([]string, n)
		for i, a := range c[7].Children {
			if r.attrs[i], err = octets(a, ber.ClassUniversal, ber.TagOctetString); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// RFC 4511 §4.6: ModifyRequest ::= [APPLICATION 6] SEQUENCE { object LDAPDN,
// changes SEQUENCE OF change SEQUENCE { operation ENUMERATED, modification
// PartialAttribute } }; RFC 4525 adds increment (3).
func decodeModify(op *ber.Packet) (*modifyRequest, error) {
	if err := fields(op, "ModifyRequest", 2, 2); err != nil {
		return nil, err
	}
	dn, err := octets(op.Children[0], ber.ClassUniversal, ber.TagOctetString)
	if err != nil {
		return nil, err
	}
	changes := op.Children[1]
	if !is(changes, ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence) {
		return nil, malformed("changes is not a SEQUENCE")
	}
	r := &modifyRequest{dn: dn, mods: make([]ldapstore.Modification, 0, len(changes.Children))}
	for _, ch := range changes.Children {
		if !is(ch, ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence) || len(ch.Children) != 2 {
			return nil, malformed("change is not a SEQUENCE of two")
		}
		opn, err := integer(ch.Children[0], ber.ClassUniversal, ber.TagEnumerated)
		if err != nil {
			return nil, err
		}
		if opn < 0 || opn > 3 {
			return nil, malformed("modify operation %d", opn)
		}
		a, err := partialAttribute(ch.Children[1])
		if err != nil {
			return nil, err
		}
		r.mods = append(r.mods, ldapstore.Modification{Op: ldapstore.ModOp(opn), Attr: a})
	}
	return r, nil
}

// RFC 4511 §4.7: AddRequest ::= [APPLICATION 8] SEQUENCE { entry LDAPDN,
// attributes AttributeList }.
func decodeAdd(op *ber.Packet) (*addRequest, error) {
	if err := fields(op, "AddRequest", 2, 2); err != nil {
		return nil, err
	}
	dn, err := octets(op.Children[0], ber.ClassUniversal, ber.TagOctetString)
	if err != nil {
		return nil, err
	}
	list := op.Children[1]
	if !is(list, ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence) {
		return nil, malformed("AttributeList is not a SEQUENCE")
	}
	e := &ldapstore.Entry{DN: dn, Attributes: make([]ldapstore.Attribute, 0, len(list.Children))}
	for _, ap := range list.Children {
		a, err := partialAttribute(ap)
		if err != nil {
			return nil, err
		}
		e.Attributes = append(e.Attributes, a)
	}
	return &addRequest{entry: e}, nil
}

// RFC 4511 §4.9: ModifyDNRequest ::= [APPLICATION 12] SEQUENCE { entry,
// newrdn, deleteoldrdn BOOLEAN, newSuperior [0] LDAPDN OPTIONAL }.
func decodeModDN(op *ber.Packet) (*modDNRequest, error) {
	if err := fields(op, "ModifyDNRequest", 3, 4); err != nil {
		return nil, err
	}
	c := op.Children
	r := &modDNRequest{}
	var err error
	if r.dn, err = octets(c[0], ber.ClassUniversal, ber.TagOctetString); err != nil {
		return nil, err
	}
	if r.newRDN, err = octets(c[1], ber.ClassUniversal, ber.TagOctetString); err != nil {
		return nil, err
	}
	if r.deleteOldRDN, err = boolean(c[2]); err != nil {
		return nil, err
	}
	if len(c) == 4 {
		if r.newSuperior, err = octets(c[3], ber.ClassContext, 0); err != nil {
			return nil, err
		}
		r.hasSuperior = true
	}
	return r, nil
}

// RFC 4511 §4.10: CompareRequest ::= [APPLICATION 14] SEQUENCE { entry
// LDAPDN, ava AttributeValueAssertion }.
func decodeCompare(op *ber.Packet) (*compareRequest, error) {
	if err := fields(op, "CompareRequest", 2, 2); err != nil {
		return nil, err
	}
	r := &compareRequest{}
	var err error
	if r.dn, err = octets(op.Children[0], ber.ClassUniversal, ber.TagOctetString); err != nil {
		return nil, err
	}
	ava := op.Children[1]
	if !is(ava, ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence) || len(ava.Children) != 2 {
		return nil, malformed("AttributeValueAssertion is not a SEQUENCE of two")
	}
	if r.attr, err = octets(ava.Children[0], ber.ClassUniversal, ber.TagOctetString); err != nil {
		return nil, err
	}
	if r.value, err = octets(ava.Children[1], ber.ClassUniversal, ber.TagOctetString); err != nil {
		return nil, err
	}
	return r, nil
}

// RFC 4511 §4.12: ExtendedRequest ::= [APPLICATION 23] SEQUENCE {
// requestName [0] LDAPOID, requestValue [1] OCTET STRING OPTIONAL }.
func decodeExtended(op *ber.Packet) (*extendedRequest, error) {
	if err := fields(op, "ExtendedRequest", 1, 2); err != nil {
		return nil, err
	}
	r := &extendedRequest{}
	var err error
	if r.name, err = octets(op.Children[0], ber.ClassContext, 0); err != nil {
		return nil, err
	}
	if len(op.Children) == 2 {
		v := op.Children[1]
		if v.ClassType != ber.ClassContext || v.Tag != 1 || v.TagType != ber.TypePrimitive {
			return nil, malformed("requestValue is not [1] primitive")
		}
		r.value = append([]byte{}, v.Data.Bytes()...)
		r.hasValue = true
	}
	return r, nil
}

// RFC 4511 §4.1.7: PartialAttribute ::= SEQUENCE { type AttributeDescription,
// vals SET OF value AttributeValue }.
func partialAttribute(p *ber.Packet) (ldapstore.Attribute, error) {
	var a ldapstore.Attribute
	if !is(p, ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence) || len(p.Children) != 2 {
		return a, malformed("PartialAttribute is not a SEQUENCE of two")
	}
	var err error
	if a.Type, err = octets(p.Children[0], ber.ClassUniversal, ber.TagOctetString); err != nil {
		return a, err
	}
	set := p.Children[1]
	if !is(set, ber.ClassUniversal, ber.TypeConstructed, ber.TagSet) {
		return a, malformed("attribute values are not a SET")
	}
	if n := len(set.Children); n > 0 {
		a.Vals = make([]string, n)
		for i, v := range set.Children {
			if a.Vals[i], err = octets(v, ber.ClassUniversal, ber.TagOctetString); err != nil {
				return a, err
			}
		}
	}
	return a, nil
}

// decodeControls decodes Controls ::= [0] SEQUENCE OF control Control
// (RFC 4511 §4.1.11).
func decodeControls(p *ber.Packet) ([]Control, error) {
	if p.ClassType != ber.ClassContext || p.TagType != ber.TypeConstructed || p.Tag != 0 {
		return nil, malformed("controls are not [0] SEQUENCE OF")
	}
	out := make([]Control, 0, len(p.Children))
	for _, cp := range p.Children {
		if !is(cp, ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence) || len(cp.Children) < 1 || len(cp.Children) > 3 {
			return nil, malformed("Control is not a SEQUENCE")
		}
		oid, err := octets(cp.Children[0], ber.ClassUniversal, ber.TagOctetString)
		if err != nil {
			return nil, err
		}
		c := Control{OID: oid}
		rest := cp.Children[1:]
		if len(rest) > 0 && rest[0].ClassType == ber.ClassUniversal && rest[0].Tag == ber.TagBoolean {
			if c.Criticality, err = boolean(rest[0]); err != nil {
				return nil, err
			}
			rest = rest[1:]
		}
		if len(rest) > 1 {
			return nil, malformed("Control has extra elements")
		}
		if len(rest) == 1 {
			v := rest[0]
			if !is(v, ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString) {
				return nil, malformed("controlValue is not an OCTET STRING")
			}
			c.Value = append([]byte{}, v.Data.Bytes()...)
		}
		out = append(out, c)
	}
	return out, nil
}

func is(p *ber.Packet, class ber.Class, typ ber.Type, tag ber.Tag) bool {
	return p.ClassType == class && p.TagType == typ && p.Tag == tag
}

// fields checks that op is constructed with between min and max elements.
func fields(op *ber.Packet, what string, min, max int) error {
	if op.TagType != ber.TypeConstructed {
		return malformed("%s is not constructed", what)
	}
	if n := len(op.Children); n < min || n > max {
		return malformed("%s has %d elements", what, n)
	}
	return nil
}

// octets returns the contents of a primitive string value. RFC 4511 §5.1:
// OCTET STRING values are encoded in the primitive form only.
func octets(p *ber.Packet, class ber.Class, tag ber.Tag) (string, error) {
	if !is(p, class, ber.TypePrimitive, tag) {
		return "", malformed("expected primitive tag %d of class %d, got tag %d class %d", tag, class>>6, p.Tag, p.ClassType>>6)
	}
	return p.Data.String(), nil
}

// integer decodes an INTEGER or ENUMERATED strictly (asn1-ber ignores
// overflow when it fills Packet.Value).
func integer(p *ber.Packet, class ber.Class, tag ber.Tag) (int64, error) {
	if !is(p, class, ber.TypePrimitive, tag) {
		return 0, malformed("expected integer tag %d, got tag %d", tag, p.Tag)
	}
	b := p.Data.Bytes()
	if len(b) == 0 || len(b) > 8 {
		return 0, malformed("integer of %d octets", len(b))
	}
	v, err := ber.ParseInt64(b)
	if err != nil {
		return 0, malformed("integer: %v", err)
	}
	return v, nil
}

// boolean decodes a BOOLEAN (X.690 §8.2: one octet, non-zero is TRUE).
func boolean(p *ber.Packet) (bool, error) {
	if !is(p, ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean) || p.Data.Len() != 1 {
		return false, malformed("expected BOOLEAN")
	}
	return p.Data.Bytes()[0] != 0, nil
}
