package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSecureCluster: a key generated on member 1 decrypts mail on member 2
// after replication; member 2, which joined before the key-encryption key
// existed, fetches it from member 1 over the control channel; a member
// that joins later gets it at the join; `ldif export` leaves the private
// keys out unless --private-keys, and then they are still sealed.
func TestSecureCluster(t *testing.T) {
	f := newClusterFixture(t)
	xs := f.formCluster("127.0.0.61", "127.0.0.62")
	m1, m2 := xs[0], xs[1]
	s := startSink(t, "127.0.0.61")
	dir := t.TempDir()
	run := func(x *appliance, args ...string) string {
		t.Helper()
		out, err := x.cli(args...)
		if err != nil {
			t.Fatalf("%s: postern %s: %v\n%s", x.ip, strings.Join(args, " "), err, out)
		}
		return out
	}
	run(m1, "domain", "add", "example.com", "--deliver-to", s.addr)
	run(m1, "ca", "init")
	gen := run(m1, "keys", "generate", "alice@example.com", "--smime")
	fpr := strings.Fields(lineOf(gen, "alice@example.com"))[6]
	kek1 := filepath.Join(m1.data, "secure-kek.json")
	kek2 := filepath.Join(m2.data, "secure-kek.json")
	if _, err := os.Stat(kek1); err != nil {
		t.Fatalf("member 1 has no KEK: %v", err)
	}
	if _, err := os.Stat(kek2); err == nil {
		t.Fatal("member 2 has a KEK before it needed one")
	}
	eventually(t, 20*time.Second, "alice's key replicated to member 2", func() string {
		out, _ := m2.cli("keys", "list", "alice@example.com")
		if strings.Contains(out, fpr) && strings.Contains(out, "yes") {
			return ""
		}
		return out
	})
	eventually(t, 20*time.Second, "the domain replicated to member 2", func() string {
		out, _ := m2.cli("domain", "list")
		if strings.Contains(out, "example.com") {
			return ""
		}
		return out
	})

	// mail for alice, encrypted by openssl to her certificate, taken by member 2
	cert := filepath.Join(dir, "alice.pem")
	os.WriteFile(cert, []byte(run(m2, "keys", "export", "alice@example.com", "--smime")), 0o600)
	in := filepath.Join(dir, "in.txt")
	os.WriteFile(in, []byte("Content-Type: text/plain\n\nfor alice via member 2\n"), 0o600)
	enc := mustTool(t, nil, "", "openssl", "cms", "-encrypt", "-in", in, "-aes256", "-recip", cert, "-from", "bob@partner.org", "-to", "alice@example.com", "-subject", "m2")
	mustSend(t, m2.addr["smtp"], "bob@partner.org", []string{"alice@example.com"}, enc)
	got := s.waitFor(t, "alice@example.com", 30*time.Second)
	if !strings.Contains(unfold(got.Data), "decrypted=smime; key="+fpr) || !strings.Contains(got.Data, "for alice via member 2") {
		t.Fatalf("member 2 did not decrypt:\n%s", got.Data)
	}
	t.Logf("member 2 delivered: %s", lineOf(unfold(got.Data), "X-Postern-Secure"))
	b1, _ := os.ReadFile(kek1)
	b2, err := os.ReadFile(kek2)
	if err != nil || string(b1) != string(b2) {
		t.Fatalf("member 2's KEK: %v (same as member 1's: %v)", err, string(b1) == string(b2))
	}
	if st, _ := os.Stat(kek2); st.Mode().Perm() != 0o600 {
		t.Fatalf("member 2's KEK file mode %v", st.Mode())
	}
	m2.waitLog(t, "key-encryption key received from the cluster")

	// a member joining now gets the KEK with the tree
	m3 := f.start("127.0.0.65")
	id := f.prepare(m1, "127.0.0.65")
	out, err := f.join(m3, m1, id)
	if err != nil || !strings.Contains(out, "received the cluster's secrets") {
		t.Fatalf("join: %v\n%s", err, out)
	}
	t.Logf("cluster join: %s", lineOf(out, "secrets"))
	b3, err := os.ReadFile(filepath.Join(m3.data, "secure-kek.json"))
	if err != nil || string(b3) != string(b1) {
		t.Fatalf("member 3's KEK: %v", err)
	}

	// LDIF exports
	plain := run(m1, "ldif", "export")
	if strings.Contains(plain, "posternPrivateKey") {
		t.Fatal("ldif export holds private keys")
	}
	if !strings.Contains(plain, "userCertificate;binary") {
		t.Fatal("ldif export lacks the certificates")
	}
	withKeys := run(m1, "ldif", "export", "--private-keys")
	n := strings.Count(withKeys, "posternPrivateKey: ")
	if n != 2 || strings.Count(withKeys, " kek1:") != n || strings.Contains(withKeys, "PRIVATE KEY") {
		t.Fatalf("ldif export --private-keys: %d private keys:\n%s", n, lineOf(withKeys, "posternPrivateKey"))
	}
	t.Logf("ldif export --private-keys: %.90s…", lineOf(withKeys, "posternPrivateKey: smime"))
	for _, x := range []*appliance{m1, m2, m3} {
		if strings.Contains(x.out.String(), "PRIVATE KEY") || strings.Contains(x.out.String(), "\"key\":") {
			t.Fatalf("%s logged key material", x.ip)
		}
	}
}
