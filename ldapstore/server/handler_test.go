package server

import (
	"context"
	"errors"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"postern/ldapstore"
)

const testHandlerOID = "1.3.6.1.4.1.99999.1"

func TestSearchHandler(t *testing.T) {
	ts := newTestServer(t)
	var got *SearchRequest
	ts.srv.HandleSearchControl(testHandlerOID, SearchHandlerFunc(func(ctx context.Context, req *SearchRequest, w SearchWriter) error {
		got = req
		a := entry("cn=a,"+testSuffix, "objectClass", "top", "cn", "a", "description", "first")
		b := entry("cn=b,"+testSuffix, "objectClass", "top", "cn", "b", "description", "second")
		if err := w.SendEntry(a, Control{OID: "1.2.3.1", Value: []byte("entry-a")}); err != nil {
			return err
		}
		if err := w.SendIntermediate("1.2.3.2", []byte("info")); err != nil {
			return err
		}
		if err := w.SendEntry(b, Control{OID: "1.2.3.1", Value: []byte("entry-b")}); err != nil {
			return err
		}
		if err := w.Done(ldapstore.Success, "", Control{OID: "1.2.3.3", Value: []byte("done")}); err != nil {
			return err
		}
		if err := w.SendEntry(a); !errors.Is(err, ErrSearchDone) {
			t.Errorf("SendEntry after Done: %v", err)
		}
		return nil
	}))
	l := ts.root()
	req := ldap.NewSearchRequest(testSuffix, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=*)", []string{"cn"},
		[]ldap.Control{ldap.NewControlString(testHandlerOID, true, "hello")})
	r := l.SearchAsync(context.Background(), req, 16)
	type item struct{ dn, ctrl, value string }
	var items []item
	for r.Next() {
		it := item{}
		if e := r.Entry(); e != nil {
			it.dn = e.DN
			if len(e.Attributes) != 1 || e.Attributes[0].Name != "cn" {
				t.Errorf("attribute selection not applied: %v", attrNames(e))
			}
		}
		if cs := r.Controls(); len(cs) == 1 {
			it.ctrl = cs[0].GetControlType()
			if s, ok := cs[0].(*ldap.ControlString); ok {
				it.value = s.ControlValue
			}
		}
		items = append(items, it)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	want := []item{
		{"cn=a," + testSuffix, "1.2.3.1", "entry-a"},
		{"", "1.2.3.2", "info"},
		{"cn=b," + testSuffix, "1.2.3.1", "entry-b"},
		{"", "1.2.3.3", "done"},
	}
	if len(items) != len(want) {
		t.Fatalf("got %+v, want %+v", items, want)
	}
	for i := range want {
		if items[i] != want[i] {
			t.Errorf("response %d: got %+v, want %+v", i, items[i], want[i])
		}
	}
	if got == nil || got.BindDN != testRootDN || !got.Root || got.BaseDN != testSuffix || got.Scope != ldapstore.ScopeSub {
		t.Fatalf("handler got %+v", got)
	}
	if c := findControl(got.Controls, testHandlerOID); c == nil || string(c.Value) != "hello" || !c.Criticality {
		t.Fatalf("handler control %+v", c)
	}
}

func TestSearchHandlerError(t *testing.T) {
	ts := newTestServer(t)
	ts.srv.HandleSearchControl(testHandlerOID, SearchHandlerFunc(func(ctx context.Context, req *SearchRequest, w SearchWriter) error {
		return ldapstore.Errorf(ldapstore.UnwillingToPerform, "not now")
	}))
	req := ldap.NewSearchRequest(testSuffix, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=*)", nil,
		[]ldap.Control{ldap.NewControlString(testHandlerOID, true, "")})
	_, err := ts.root().Search(req)
	wantCode(t, err, ldap.LDAPResultUnwillingToPerform)
	// Anonymous clients never reach the handler.
	_, err = ts.dial().Search(req)
	wantCode(t, err, ldap.LDAPResultInsufficientAccessRights)
}

// TestAbandon abandons a long-running (persistent) search: the handler's
// context is cancelled, no SearchResultDone is sent and the connection goes
// on serving.
func TestAbandon(t *testing.T) {
	ts := newTestServer(t)
	started := make(chan struct{})
	stopped := make(chan error, 1)
	ts.srv.HandleSearchControl(testHandlerOID, SearchHandlerFunc(func(ctx context.Context, req *SearchRequest, w SearchWriter) error {
		w.SendEntry(entry("cn=a,"+testSuffix, "cn", "a"))
		close(started)
		<-ctx.Done()
		stopped <- w.SendEntry(entry("cn=b,"+testSuffix, "cn", "b"))
		return ctx.Err()
	}))
	c := ts.raw()
	c.Write(msg(1, bindOp(testRootDN, testRootPW)))
	if _, op := readMessage(t, c); resultCode(t, op) != 0 {
		t.Fatalf("bind: %d", resultCode(t, op))
	}
	c.Write(msg(2, searchOp(testSuffix, "objectClass"), controlPacket(testHandlerOID, true, "")))
	<-started
	if id, op := readMessage(t, c); id != 2 || op.Tag != appSearchEntry {
		t.Fatalf("got id %d tag %d, want the first entry", id, op.Tag)
	}
	// The running search does not hold the connection's other operations.
	c.Write(msg(3, extendedOp(OIDWhoAmI)))
	if id, op := readMessage(t, c); id != 3 || op.Tag != appExtendedResponse || resultCode(t, op) != 0 {
		t.Fatalf("while a search runs: got id %d tag %d, want the WhoAmI response", id, op.Tag)
	}
	// RFC 4511 §4.11: AbandonRequest ::= [APPLICATION 16] MessageID.
	c.Write(msg(4, ber.NewInteger(ber.ClassApplication, ber.TypePrimitive, appAbandonRequest, 2, "abandon")))
	select {
	case err := <-stopped:
		if err == nil {
			t.Fatal("SendEntry succeeded after abandon")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler not cancelled by abandon")
	}
	c.Write(msg(5, extendedOp(OIDWhoAmI)))
	id, op := readMessage(t, c)
	if id != 5 || op.Tag != appExtendedResponse {
		t.Fatalf("after abandon got id %d tag %d, want the WhoAmI response", id, op.Tag)
	}
}

func TestPanicClosesOnlyThatConnection(t *testing.T) {
	ts := newTestServer(t)
	ts.srv.HandleSearchControl(testHandlerOID, SearchHandlerFunc(func(ctx context.Context, req *SearchRequest, w SearchWriter) error {
		panic("handler bug")
	}))
	other := ts.root()
	l := ts.root()
	req := ldap.NewSearchRequest(testSuffix, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", nil,
		[]ldap.Control{ldap.NewControlString(testHandlerOID, true, "")})
	if _, err := l.Search(req); err == nil {
		t.Fatal("search on a panicking handler succeeded")
	}
	if es := search(t, other, testSuffix, ldap.ScopeBaseObject, "(objectClass=*)"); len(es) != 1 {
		t.Fatalf("other connection: %d entries", len(es))
	}
}

func bindOp(dn, pw string) *ber.Packet {
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, appBindRequest, nil, "bind")
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 3, "version"))
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, dn, "name"))
	op.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, pw, "simple"))
	return op
}

// searchOp is a subtree search of base with the filter (attr=*).
func searchOp(base, present string) *ber.Packet {
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, appSearchRequest, nil, "search")
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, base, "base"))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 2, "scope"))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 0, "deref"))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "size"))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "time"))
	op.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, false, "typesOnly"))
	op.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 7, present, "present"))
	op.AppendChild(ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attrs"))
	return op
}

func extendedOp(oid string) *ber.Packet {
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, appExtendedRequest, nil, "extended")
	op.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, oid, "name"))
	return op
}

func controlPacket(oid string, critical bool, value string) *ber.Packet {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "control")
	p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, oid, "type"))
	if critical {
		p.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, true, "criticality"))
	}
	if value != "" {
		p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, value, "value"))
	}
	return p
}
