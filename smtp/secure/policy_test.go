package secure

import (
	"context"
	"strings"
	"testing"

	"postern/smtp"
)

func TestResolve(t *testing.T) {
	off := ""
	for _, tc := range []struct {
		name   string
		layers []Named
		want   Policy
		src    Sources
	}{
		{"defaults", nil, Policy{EncryptIfKey, SignNever, MethodSMIME, "[secure]", NoKeyReject}, Sources{"default", "default", "default", "default", "default"}},
		{"user over domain over global", []Named{
			{"global", Layer{Encrypt: EncryptNever, Sign: SignAlways, Trigger: &off}},
			{"domain d", Layer{Encrypt: EncryptAlways, Method: MethodPGP}},
			{"user u", Layer{Encrypt: EncryptIfKey}},
		}, Policy{EncryptIfKey, SignAlways, MethodPGP, "", NoKeyReject}, Sources{"user u", "global", "domain d", "global", "default"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, s := Resolve(tc.layers...)
			if p != tc.want || s != tc.src {
				t.Fatalf("got %+v %+v, want %+v %+v", p, s, tc.want, tc.src)
			}
		})
	}
	if err := (Layer{Encrypt: "sometimes"}).Check(); err == nil {
		t.Fatal("a bad value passed Check")
	}
}

// TestDomainEncryption: a recipient without a key of its own gets mail
// encrypted with its domain's; one with its own key gets it with that.
func TestDomainEncryption(t *testing.T) {
	k := newMemKeys("example.com")
	k.addSMIME(t, "partner.org", nil, false)
	k.addSMIME(t, "bob@partner.org", nil, false)
	p := newProcessor(t, k)
	vs := p.Prepare(context.Background(), smtp.Envelope{ID: "D", From: "alice@example.com", Rcpts: []string{"carol@partner.org", "dan@partner.org", "bob@partner.org"}},
		testMessage("alice@example.com", "x@partner.org", "d", "body\r\n"))
	if len(vs) != 2 {
		t.Fatalf("want two variants (domain key, bob's key), got %d", len(vs))
	}
	for _, v := range vs {
		if v.Err != nil || !strings.Contains(string(v.Content), "enveloped-data") {
			t.Fatalf("variant %v: %v", v.Rcpts, v.Err)
		}
	}
	if len(vs[0].Rcpts) != 2 || len(vs[1].Rcpts) != 1 || vs[1].Rcpts[0] != 2 {
		t.Fatalf("grouping: %v %v", vs[0].Rcpts, vs[1].Rcpts)
	}
}
