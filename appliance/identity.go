package appliance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"postern/ldapstore"
)

// Identity is the machine-local identity of an appliance, made on its first
// start and never replicated or overwritten by a join.
type Identity struct {
	UUID     string    `json:"uuid"`
	DeviceID string    `json:"device_id"`
	Created  time.Time `json:"created"`
}

// Files of the data directory.
const (
	identityFile  = "identity.json"
	systemFile    = "system.json"
	certFile      = "tls.crt"
	keyFile       = "tls.key"
	adminHashFile = "admin.hash"
	storeFile     = "ldap.db"
	controlSocket = "control.sock"
)

// deviceID derives the human-facing Device ID from the UUID: short enough
// to read out on the phone, unique enough within a cluster.
func deviceID(u uuid.UUID) string {
	return "PST-" + strings.ToUpper(strings.ReplaceAll(u.String(), "-", "")[:10])
}

// loadOrCreateIdentity reads identity.json, or makes it on the first start.
func loadOrCreateIdentity(dir string) (Identity, bool, error) {
	var id Identity
	p := filepath.Join(dir, identityFile)
	b, err := os.ReadFile(p)
	if err == nil {
		if err := json.Unmarshal(b, &id); err != nil || id.UUID == "" {
			return id, false, fmt.Errorf("appliance: %s is damaged: %v", p, err)
		}
		return id, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return id, false, fmt.Errorf("appliance: read identity: %w", err)
	}
	u := uuid.New()
	id = Identity{UUID: u.String(), DeviceID: deviceID(u), Created: time.Now().UTC()}
	b, _ = json.MarshalIndent(id, "", "  ")
	if err := writeFileAtomic(p, b, 0o600); err != nil {
		return id, false, err
	}
	return id, true, nil
}

// System holds the machine-local settings the admin edits with
// `postern system set`: never replicated.
type System struct {
	Hostname  string `json:"hostname"`
	Comment   string `json:"comment,omitempty"`
	Location  string `json:"location,omitempty"`
	NTPServer string `json:"ntp_server,omitempty"`
}

func loadSystem(dir string) (System, error) {
	var s System
	b, err := os.ReadFile(filepath.Join(dir, systemFile))
	if errors.Is(err, os.ErrNotExist) {
		s.Hostname, _ = os.Hostname()
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("appliance: read system settings: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("appliance: %s is damaged: %w", systemFile, err)
	}
	return s, nil
}

func saveSystem(dir string, s System) error {
	b, _ := json.MarshalIndent(s, "", "  ")
	return writeFileAtomic(filepath.Join(dir, systemFile), b, 0o600)
}

// loadOrCreateCert returns the machine's TLS certificate, making a
// self-signed ECDSA P-256 one on the first start.
func loadOrCreateCert(dir, hostname string, ips []net.IP) (tls.Certificate, error) {
	cp, kp := filepath.Join(dir, certFile), filepath.Join(dir, keyFile)
	if c, err := tls.LoadX509KeyPair(cp, kp); err == nil {
		return c, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(cp); serr == nil {
			return tls.Certificate{}, fmt.Errorf("appliance: load TLS certificate: %w", err)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hostname, Organization: []string{"Postern appliance"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{hostname, "localhost"},
		IPAddresses:           append([]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, ips...),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("appliance: make TLS certificate: %w", err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := writeFileAtomic(kp, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeFileAtomic(cp, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.LoadX509KeyPair(cp, kp)
}

// loadOrCreateAdmin returns the admin password hash. On the first start it
// hashes the given password, or generates one and returns it in plain so
// the caller prints it once; it is never stored or logged in plain. A new
// hash is not written yet (fresh true): Start stores it, and prints a
// generated password, only once every listener is up, so a start that
// fails leaves no password behind that nobody saw.
func loadOrCreateAdmin(dir, given string) (hash, generated string, fresh bool, err error) {
	p := filepath.Join(dir, adminHashFile)
	if b, err := os.ReadFile(p); err == nil {
		return strings.TrimSpace(string(b)), "", false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", "", false, fmt.Errorf("appliance: read admin password: %w", err)
	}
	pw := given
	if pw == "" {
		pw = randomPassword()
		generated = pw
	}
	hash, err = ldapstore.HashPassword(pw)
	if err != nil {
		return "", "", false, err
	}
	return hash, generated, true, nil
}

// storeAdminHash writes the admin password hash (mode 0600).
func storeAdminHash(dir, hash string) error {
	return writeFileAtomic(filepath.Join(dir, adminHashFile), []byte(hash+"\n"), 0o600)
}

// randomPassword returns 20 characters from an alphabet without look-alikes
// (about 115 bits).
func randomPassword() string {
	const alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 20)
	for i := range b {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b[i] = alphabet[n.Int64()]
	}
	return string(b)
}

// writeFileAtomic writes data to a temporary file, fsyncs it and renames it
// over path, so a crash leaves either the old or the new file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("appliance: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("appliance: write %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
