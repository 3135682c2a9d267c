package appliance

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"postern/cluster"
)

// The key-encryption key (KEK) encrypts every private key secure mail
// keeps in the directory (posternPrivateKey values): the directory, its
// replicas, LDIF exports and backups hold them only encrypted. The KEK
// itself never enters the directory: it is a machine-local file in the
// data directory (mode 0600), the same on every backend, handed from
// backend to backend over the cluster's control channel (cluster.Secrets)
// at a join, or fetched from a peer by a backend that joined before it
// existed. Frontends never hold it.
//
// The file is a key ring: a member that made a KEK while it could not
// reach the others (two members' first `keys generate` at once) keeps
// both once they meet, so no private key is ever unreadable; new keys are
// sealed with the ring's first key in ID order, the same on every member.

const kekFile = "secure-kek.json"

type kekEntry struct {
	ID      string    `json:"id"`  // 16 hex digits, random
	Key     []byte    `json:"key"` // 32 octets, AES-256-GCM
	Created time.Time `json:"created"`
}

type kekRing struct {
	Keys []kekEntry `json:"keys"`
}

// ErrNoKEK: this appliance holds no key-encryption key.
var ErrNoKEK = errors.New("appliance: no key-encryption key on this member")

func (a *Appliance) kekPath() string { return filepath.Join(a.cfg.DataDir, kekFile) }

// loadKEK reads the ring (empty when there is none); a.kekMu held.
func (a *Appliance) loadKEK() (kekRing, error) {
	var r kekRing
	b, err := os.ReadFile(a.kekPath())
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("appliance: key-encryption key: %w", err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("appliance: key-encryption key file %s: %w", a.kekPath(), err)
	}
	return r, nil
}

// saveKEK writes the ring atomically, mode 0600; a.kekMu held.
func (a *Appliance) saveKEK(r kekRing) error {
	slices.SortFunc(r.Keys, func(x, y kekEntry) int { return strings.Compare(x.ID, y.ID) })
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	tmp := a.kekPath() + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("appliance: key-encryption key: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, a.kekPath())
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("appliance: key-encryption key: %w", err)
	}
	return nil
}

// kekSecrets is the cluster's Secrets hook pair.
func (a *Appliance) kekSecrets() *cluster.Secrets {
	return &cluster.Secrets{
		Export: func() ([]byte, error) {
			a.kekMu.Lock()
			defer a.kekMu.Unlock()
			r, err := a.loadKEK()
			if err != nil || len(r.Keys) == 0 {
				return nil, err
			}
			return json.Marshal(r)
		},
		Import: func(b []byte) error {
			var in kekRing
			if err := json.Unmarshal(b, &in); err != nil {
				return fmt.Errorf("appliance: key-encryption key received: %w", err)
			}
			a.kekMu.Lock()
			defer a.kekMu.Unlock()
			r, err := a.loadKEK()
			if err != nil {
				return err
			}
			added := 0
			for _, k := range in.Keys {
				if len(k.Key) != 32 || len(k.ID) != 16 {
					return errors.New("appliance: key-encryption key received is malformed")
				}
				if !slices.ContainsFunc(r.Keys, func(x kekEntry) bool { return x.ID == k.ID }) {
					r.Keys = append(r.Keys, k)
					added++
				}
			}
			if added == 0 {
				return nil
			}
			a.log.Info("secure: key-encryption key received from the cluster", slog.Int("keys", added))
			return a.saveKEK(r)
		},
	}
}

// kek returns the ring, fetching it from a peer when this member has none
// (or lacks the key id); with create, a member that still has none (and
// no peer has one) makes it.
func (a *Appliance) kek(ctx context.Context, id string, create bool) (kekRing, error) {
	have := func(r kekRing) bool {
		if id == "" {
			return len(r.Keys) > 0
		}
		return slices.ContainsFunc(r.Keys, func(k kekEntry) bool { return k.ID == id })
	}
	a.kekMu.Lock()
	r, err := a.loadKEK()
	a.kekMu.Unlock()
	if err != nil || have(r) {
		return r, err
	}
	a.clusterMu.Lock()
	c := a.cluster
	a.clusterMu.Unlock()
	if c != nil {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ferr := c.FetchSecrets(fctx)
		cancel()
		if ferr != nil && !errors.Is(ferr, cluster.ErrNotMember) && !errors.Is(ferr, cluster.ErrNoSecrets) {
			a.log.Warn("secure: fetching the key-encryption key from the cluster", slog.String("err", ferr.Error()))
		}
		a.kekMu.Lock()
		r, err = a.loadKEK()
		a.kekMu.Unlock()
		if err != nil || have(r) {
			return r, err
		}
	}
	if !create || id != "" {
		return r, ErrNoKEK
	}
	k := kekEntry{Key: make([]byte, 32), Created: time.Now().UTC()}
	idb := make([]byte, 8)
	if _, err := rand.Read(k.Key); err != nil {
		return r, err
	}
	rand.Read(idb)
	k.ID = hex.EncodeToString(idb)
	a.kekMu.Lock()
	defer a.kekMu.Unlock()
	if r, err = a.loadKEK(); err != nil || len(r.Keys) > 0 {
		return r, err
	}
	r.Keys = append(r.Keys, k)
	if err := a.saveKEK(r); err != nil {
		return r, err
	}
	a.log.Info("secure: key-encryption key made", slog.String("id", k.ID))
	return r, nil
}

// sealPrefix starts every sealed value: the format and the KEK's ID.
const sealPrefix = "kek1:"

func aad(owner, kind, fpr string) []byte {
	return []byte("postern private key\x00" + strings.ToLower(owner) + "\x00" + kind + "\x00" + fpr)
}

// seal encrypts a private key for the directory: the value of
// posternPrivateKey is "KIND FINGERPRINT kek1:ID:BASE64(nonce|ciphertext)".
// The owner, kind and fingerprint are authenticated with it, so a value
// copied onto another entry does not open.
func (a *Appliance) seal(ctx context.Context, owner, kind, fpr string, plain []byte) (string, error) {
	r, err := a.kek(ctx, "", true)
	if err != nil {
		return "", err
	}
	k := r.Keys[0]
	gcm, err := newGCM(k.Key)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, gcm.NonceSize())
	rand.Read(nonce)
	ct := gcm.Seal(nonce, nonce, plain, aad(owner, kind, fpr))
	return kind + " " + fpr + " " + sealPrefix + k.ID + ":" + base64.StdEncoding.EncodeToString(ct), nil
}

// sealed is a parsed posternPrivateKey value.
type sealed struct {
	kind, fpr, kekID string
	blob             []byte
}

func parseSealed(v string) (sealed, error) {
	f := strings.Fields(v)
	if len(f) != 3 || !strings.HasPrefix(f[2], sealPrefix) {
		return sealed{}, errors.New("appliance: malformed posternPrivateKey value")
	}
	id, b64, ok := strings.Cut(strings.TrimPrefix(f[2], sealPrefix), ":")
	blob, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil {
		return sealed{}, errors.New("appliance: malformed posternPrivateKey value")
	}
	return sealed{kind: f[0], fpr: f[1], kekID: id, blob: blob}, nil
}

// open decrypts a posternPrivateKey value of owner.
func (a *Appliance) open(ctx context.Context, owner string, s sealed) ([]byte, error) {
	r, err := a.kek(ctx, s.kekID, false)
	if err != nil {
		return nil, err
	}
	for _, k := range r.Keys {
		if k.ID != s.kekID {
			continue
		}
		gcm, err := newGCM(k.Key)
		if err != nil {
			return nil, err
		}
		if len(s.blob) < gcm.NonceSize() {
			return nil, errors.New("appliance: sealed private key too short")
		}
		plain, err := gcm.Open(nil, s.blob[:gcm.NonceSize()], s.blob[gcm.NonceSize():], aad(owner, s.kind, s.fpr))
		if err != nil {
			return nil, fmt.Errorf("appliance: private key %s of %s does not open with the key-encryption key", s.fpr, owner)
		}
		return plain, nil
	}
	return nil, ErrNoKEK
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}
