package server

import (
	"bufio"
	"bytes"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// FuzzDecodeMessage feeds arbitrary bytes to the framer and the LDAPMessage
// decoder: they must return a message or an error, never panic or read
// past their input.
func FuzzDecodeMessage(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		frame, err := readFrame(bufio.NewReader(bytes.NewReader(b)), DefaultMaxMessageSize, nil)
		if err != nil {
			return
		}
		m, err := decodeMessage(frame)
		if err != nil {
			return
		}
		if m.id <= 0 || m.op == nil {
			t.Fatalf("decoded message without id or operation: %+v", m)
		}
	})
}

// fuzzSeeds are valid LDAP requests of every kind.
func fuzzSeeds() [][]byte {
	mod := ber.Encode(ber.ClassApplication, ber.TypeConstructed, appModifyRequest, nil, "modify")
	mod.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, testUserDN, "dn"))
	changes := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "changes")
	change := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "change")
	change.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 2, "op"))
	change.AppendChild(partialAttr("mail", "a@example.com"))
	changes.AppendChild(change)
	mod.AppendChild(changes)

	add := ber.Encode(ber.ClassApplication, ber.TypeConstructed, appAddRequest, nil, "add")
	add.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "cn=x,"+testSuffix, "dn"))
	attrs := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attrs")
	attrs.AppendChild(partialAttr("objectClass", "posternDomain"))
	attrs.AppendChild(partialAttr("cn", "x"))
	add.AppendChild(attrs)

	moddn := ber.Encode(ber.ClassApplication, ber.TypeConstructed, appModDNRequest, nil, "moddn")
	moddn.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, testUserDN, "dn"))
	moddn.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "uid=x", "rdn"))
	moddn.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, true, "del"))
	moddn.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, testSuffix, "sup"))

	cmp := ber.Encode(ber.ClassApplication, ber.TypeConstructed, appCompareRequest, nil, "compare")
	cmp.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, testUserDN, "dn"))
	ava := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "ava")
	ava.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "uid", "type"))
	ava.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "alice", "value"))
	cmp.AppendChild(ava)

	// (&(uid=alice)(|(mail=*)(!(cn=a*b*c))))
	and := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "and")
	eq := ber.Encode(ber.ClassContext, ber.TypeConstructed, 3, nil, "eq")
	eq.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "uid", ""))
	eq.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "alice", ""))
	and.AppendChild(eq)
	or := ber.Encode(ber.ClassContext, ber.TypeConstructed, 1, nil, "or")
	or.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 7, "mail", ""))
	not := ber.Encode(ber.ClassContext, ber.TypeConstructed, 2, nil, "not")
	sub := ber.Encode(ber.ClassContext, ber.TypeConstructed, 4, nil, "substrings")
	sub.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "cn", ""))
	parts := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	parts.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, "a", ""))
	parts.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 1, "b", ""))
	parts.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 2, "c", ""))
	sub.AppendChild(parts)
	not.AppendChild(sub)
	or.AppendChild(not)
	and.AppendChild(or)
	srch := searchOp(testSuffix, "objectClass")
	srch.Children[6] = and

	pw := ber.Encode(ber.ClassApplication, ber.TypeConstructed, appExtendedRequest, nil, "passwd")
	pw.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, OIDPasswordModify, ""))
	pw.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 1, "\x30\x03\x80\x01x", ""))

	return [][]byte{
		msg(1, bindOp(testRootDN, testRootPW)),
		msg(2, searchOp(testSuffix, "objectClass"), controlPacket(OIDPagedResults, true, "\x30\x05\x02\x01\x0a\x04\x00")),
		msg(3, srch),
		msg(4, mod),
		msg(5, add),
		msg(6, ber.NewString(ber.ClassApplication, ber.TypePrimitive, appDelRequest, testUserDN, "del")),
		msg(7, moddn),
		msg(8, cmp),
		msg(9, ber.NewInteger(ber.ClassApplication, ber.TypePrimitive, appAbandonRequest, 2, "abandon")),
		msg(10, extendedOp(OIDWhoAmI)),
		msg(11, pw),
		msg(12, ber.Encode(ber.ClassApplication, ber.TypePrimitive, appUnbindRequest, nil, "unbind")),
	}
}

func partialAttr(typ string, vals ...string) *ber.Packet {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attr")
	p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, typ, "type"))
	set := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "vals")
	for _, v := range vals {
		set.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, v, "val"))
	}
	p.AppendChild(set)
	return p
}

func TestDecodeSeeds(t *testing.T) {
	for i, seed := range fuzzSeeds() {
		frame, err := readFrame(bufio.NewReader(bytes.NewReader(seed)), DefaultMaxMessageSize, nil)
		if err != nil {
			t.Fatalf("seed %d: frame: %v", i, err)
		}
		m, err := decodeMessage(frame)
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		if m.id != int64(i+1) {
			t.Fatalf("seed %d: id %d", i, m.id)
		}
	}
}

func TestEncoderLengths(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 255, 256, 65535, 65536, 1 << 20} {
		var e encoder
		e.begin(tagSequence)
		e.str(tagOctetString, string(make([]byte, n)))
		e.int(tagInteger, -129)
		e.int(tagInteger, 1<<40)
		e.end()
		p, err := ber.DecodePacketErr(e.b)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if len(p.Children) != 3 || len(p.Children[0].ByteValue) != n || p.Children[1].Value.(int64) != -129 || p.Children[2].Value.(int64) != 1<<40 {
			t.Fatalf("n=%d: decoded %v", n, p)
		}
	}
}
