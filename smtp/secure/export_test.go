package secure

import (
	"strings"
	"testing"
	"time"
)

// TestExportPrivate: private keys leave protected, and come back with the
// password (PKCS #12; an OpenPGP key SplitPGP opens).
func TestExportPrivate(t *testing.T) {
	for _, algo := range []string{AlgoEd25519, AlgoRSA3072} {
		sec, _, fpr, err := NewPGP("alice@example.com", algo, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		out, err := ExportPrivate(PrivateKey{Kind: KindPGP, Key: sec}, "pw")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, _, err := SplitPGP(out, ""); err == nil {
			t.Fatal("a protected key opened without its password")
		}
		_, s, owners, fprs, err := SplitPGP(out, "pw")
		if err != nil || s[0] == nil || fprs[0] != fpr || owners[0] != "alice@example.com" {
			t.Fatalf("SplitPGP: %v %v %v", err, fprs, owners)
		}
	}
	cert, key, err := NewSMIME("alice@example.com", AlgoRSA3072, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p12, err := ExportPrivate(PrivateKey{Kind: KindSMIME, Cert: cert, Key: key}, "pw")
	if err != nil || len(p12) == 0 || strings.Contains(string(p12), "PRIVATE KEY") {
		t.Fatalf("PKCS #12: %v", err)
	}
}
