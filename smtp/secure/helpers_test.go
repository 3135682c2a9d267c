package secure

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"postern/smtp"
)

// memKeys is Keys in memory, for tests.
type memKeys struct {
	mu        sync.Mutex
	managed   map[string]bool
	global    Layer
	domains   map[string]Layer
	users     map[string]Layer
	pub       map[string][]PublicKey
	priv      map[string][]PrivateKey
	dkim      map[string]PrivateKey
	roots     [][]byte
	collected map[string][]byte
}

func newMemKeys(managed ...string) *memKeys {
	k := &memKeys{managed: map[string]bool{}, domains: map[string]Layer{}, users: map[string]Layer{},
		pub: map[string][]PublicKey{}, priv: map[string][]PrivateKey{}, dkim: map[string]PrivateKey{}, collected: map[string][]byte{}}
	for _, d := range managed {
		k.managed[d] = true
	}
	return k
}

func (k *memKeys) Managed(_ context.Context, d string) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.managed[d], nil
}

func (k *memKeys) Policy(_ context.Context, a string) (Policy, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p, _ := Resolve(Named{"global", k.global}, Named{"domain", k.domains[domainOf(a)]}, Named{"user", k.users[a]})
	return p, nil
}

func (k *memKeys) Public(_ context.Context, a string) ([]PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := append([]PublicKey(nil), k.pub[a]...)
	for _, p := range k.pub[domainOf(a)] {
		p.Domain = true
		out = append(out, p)
	}
	return out, nil
}

func (k *memKeys) Private(_ context.Context, a string) ([]PrivateKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := append([]PrivateKey(nil), k.priv[a]...)
	for _, p := range k.priv[domainOf(a)] {
		p.Domain = true
		out = append(out, p)
	}
	return out, nil
}

func (k *memKeys) DKIM(_ context.Context, d string) (PrivateKey, bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p, ok := k.dkim[d]
	return p, ok, nil
}

func (k *memKeys) Roots(context.Context) ([][]byte, error) { return k.roots, nil }

func (k *memKeys) Collect(_ context.Context, a string, c []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.collected[a] = c
	return nil
}

// addSMIME makes an S/MIME key for owner (issued by ca when given).
func (k *memKeys) addSMIME(t testing.TB, owner string, ca *Issuer, private bool) (cert, key []byte) {
	t.Helper()
	cert, key, err := NewSMIME(owner, AlgoRSA3072, ca, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.pub[owner] = append(k.pub[owner], PublicKey{Owner: owner, Kind: KindSMIME, Data: cert})
	if private {
		k.priv[owner] = append(k.priv[owner], PrivateKey{Owner: owner, Kind: KindSMIME, Fingerprint: Fingerprint(cert), Cert: cert, Key: key})
	}
	return cert, key
}

// addPGP makes an OpenPGP key for owner.
func (k *memKeys) addPGP(t testing.TB, owner string, private bool) (secret, public []byte, fpr string) {
	t.Helper()
	secret, public, fpr, err := NewPGP(owner, AlgoEd25519, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.pub[owner] = append(k.pub[owner], PublicKey{Owner: owner, Kind: KindPGP, Data: public})
	if private {
		k.priv[owner] = append(k.priv[owner], PrivateKey{Owner: owner, Kind: KindPGP, Fingerprint: fpr, Key: secret})
	}
	return secret, public, fpr
}

func newProcessor(t testing.TB, k Keys) *Processor {
	t.Helper()
	p, err := New(Config{Keys: k, Hostname: "gw.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// prepareOne runs Prepare for one recipient and returns its content (or fails).
func prepareOne(t testing.TB, p *Processor, from, to string, msg []byte) []byte {
	t.Helper()
	vs := p.Prepare(context.Background(), smtp.Envelope{ID: "T1", From: from, Rcpts: []string{to}}, msg)
	if len(vs) != 1 || vs[0].Err != nil {
		t.Fatalf("Prepare: %+v", vs)
	}
	return vs[0].Content
}

func testMessage(from, to, subject, body string) []byte {
	return []byte(strings.ReplaceAll("Received: from client by gw\n\tid T1\nFrom: <"+from+">\nTo: <"+to+">\nSubject: "+subject+
		"\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <t1@example.com>\nContent-Type: text/plain; charset=utf-8\n\n"+strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n"))
}

// tool runs a third-party program (the test fails when it is missing: .ci/deps.sh installs it).
func tool(t testing.TB, stdin []byte, name string, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s not installed (run .ci/deps.sh): %v", name, err)
	}
	cmd := exec.Command(name, args...)
	if stdin != nil {
		cmd.Stdin = strings.NewReader(string(stdin))
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func issuer(t testing.TB, cert, key []byte) *Issuer {
	t.Helper()
	c, err := x509.ParseCertificate(cert)
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.ParsePKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &Issuer{Cert: c, Key: k.(crypto.Signer)}
}

// addSmallSMIME is addSMIME with a 1024-bit RSA key and a self-signed
// certificate: quick to make, for fuzzing, where each worker makes its own.
func (k *memKeys) addSmallSMIME(t testing.TB, owner string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: owner}, EmailAddresses: []string{owner},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.pub[owner] = append(k.pub[owner], PublicKey{Owner: owner, Kind: KindSMIME, Data: cert})
	k.priv[owner] = append(k.priv[owner], PrivateKey{Owner: owner, Kind: KindSMIME, Fingerprint: Fingerprint(cert), Cert: cert, Key: der})
}
