package appliance

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Admin API tokens: bearer tokens for scripts that call the web menu's
// JSON API (/api/...). They are machine-local (never replicated), made and
// revoked with `postern admin token` through the control socket, and
// stored hashed (SHA-256 of 256 random bits: a token cannot be guessed, so
// a fast hash suffices) in DATA/admin_tokens.json, mode 0600. The token
// itself is shown once, when it is made.

const tokensFile = "admin_tokens.json"

// tokenPrefix marks a Postern admin token (so a leaked one is recognised).
const tokenPrefix = "pst_"

// AdminToken is a token's record (never the token itself).
type AdminToken struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used,omitzero"`
	Hash     string    `json:"hash,omitempty"` // hex SHA-256 of the token; not in answers
}

// AdminTokenCreated is the answer to POST /v1/admin/tokens: the token, once.
type AdminTokenCreated struct {
	AdminToken
	Token string `json:"token"`
}

// tokenStore is the data directory's token file and its in-memory copy.
type tokenStore struct {
	path string
	mu   sync.Mutex
	list []AdminToken
}

func loadTokens(dir string) (*tokenStore, error) {
	s := &tokenStore{path: filepath.Join(dir, tokensFile)}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("appliance: read admin tokens: %w", err)
	}
	if err := json.Unmarshal(b, &s.list); err != nil {
		return nil, fmt.Errorf("appliance: %s: %w", s.path, err)
	}
	return s, nil
}

func (s *tokenStore) saveLocked() error {
	b, err := json.MarshalIndent(s.list, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(s.path, append(b, '\n'), 0o600)
}

// create makes a token named name.
func (s *tokenStore) create(name string) (AdminTokenCreated, error) {
	name = strings.TrimSpace(name)
	if len(name) > 100 || strings.ContainsAny(name, "\n\r\t") {
		return AdminTokenCreated{}, badRequest("token name: at most 100 characters on one line")
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	tok := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	idb := make([]byte, 4)
	rand.Read(idb)
	sum := sha256.Sum256([]byte(tok))
	t := AdminToken{ID: hex.EncodeToString(idb), Name: name, Created: time.Now().UTC().Truncate(time.Second), Hash: hex.EncodeToString(sum[:])}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, t)
	if err := s.saveLocked(); err != nil {
		s.list = s.list[:len(s.list)-1]
		return AdminTokenCreated{}, err
	}
	t.Hash = ""
	return AdminTokenCreated{AdminToken: t, Token: tok}, nil
}

// tokens lists the records without their hashes.
func (s *tokenStore) tokens() []AdminToken {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []AdminToken{}
	for _, t := range s.list {
		t.Hash = ""
		out = append(out, t)
	}
	return out
}

// revoke deletes the token with this ID.
func (s *tokenStore) revoke(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, t := range s.list {
		if t.ID == id {
			s.list = append(s.list[:i:i], s.list[i+1:]...)
			return s.saveLocked()
		}
	}
	return &apiError{http.StatusNotFound, fmt.Sprintf("no admin token %q (see postern admin token list)", id)}
}

// verify reports whether tok is a live token, and notes its use (in
// memory; written with the next change).
func (s *tokenStore) verify(tok string) bool {
	if !strings.HasPrefix(tok, tokenPrefix) {
		return false
	}
	sum := sha256.Sum256([]byte(tok))
	want := hex.EncodeToString(sum[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := false
	for i := range s.list {
		if subtle.ConstantTimeCompare([]byte(s.list[i].Hash), []byte(want)) == 1 {
			s.list[i].LastUsed = time.Now().UTC().Truncate(time.Second)
			ok = true
		}
	}
	return ok
}

func (a *Appliance) tokenRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/admin/tokens", a.jsonHandler(func(r *http.Request) (any, error) { return a.tokens.tokens(), nil }))
	mux.HandleFunc("POST /v1/admin/tokens", a.jsonHandler(func(r *http.Request) (any, error) {
		var req struct {
			Name string `json:"name"`
		}
		if err := decodeJSON(r, &req); err != nil {
			return nil, err
		}
		t, err := a.tokens.create(req.Name)
		if err == nil {
			a.log.Warn("admin token created", "id", t.ID, "name", t.Name)
		}
		return t, err
	}))
	mux.HandleFunc("DELETE /v1/admin/tokens/{id}", a.jsonHandler(func(r *http.Request) (any, error) {
		id := r.PathValue("id")
		if err := a.tokens.revoke(id); err != nil {
			return nil, err
		}
		a.log.Warn("admin token revoked", "id", id)
		return map[string]string{"revoked": id}, nil
	}))
}
