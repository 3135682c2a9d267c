package cluster

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func testIdentifier(t testing.TB, pw string) (*Identifier, ssh.Signer) {
	t.Helper()
	signer, key, err := newClusterKey(pw)
	if err != nil {
		t.Fatal(err)
	}
	_, hk, _ := ed25519.GenerateKey(rand.Reader)
	hs, _ := ssh.NewSignerFromKey(hk)
	return &Identifier{ClusterUUID: "6f0c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3", Member: "192.0.2.10:22", HostKey: hs.PublicKey(),
		Created: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC), Key: key}, signer
}

// TestIdentifierRoundTrip: the file parses back to the same content and
// the key decrypts only with the password.
func TestIdentifierRoundTrip(t *testing.T) {
	id, signer := testIdentifier(t, "correct horse battery")
	text := id.Marshal()
	if bytes.Contains(text, []byte("correct horse")) {
		t.Fatal("password in the identifier")
	}
	got, err := ParseIdentifier(text)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	if got.ClusterUUID != id.ClusterUUID || got.Member != id.Member || !keysEqual(got.HostKey, id.HostKey) || !got.Created.Equal(id.Created) {
		t.Fatalf("round trip: %+v", got)
	}
	s, err := got.Signer("correct horse battery")
	if err != nil || !keysEqual(s.PublicKey(), signer.PublicKey()) {
		t.Fatalf("decrypt: %v", err)
	}
	if _, err := got.Signer("wrong horse battery"); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, _, err := newClusterKey("short"); !errors.Is(err, ErrShortPassword) {
		t.Fatalf("short password: %v", err)
	}
}

// TestParseIdentifierStrict: damaged files are refused with a reason.
func TestParseIdentifierStrict(t *testing.T) {
	id, _ := testIdentifier(t, "correct horse battery")
	good := string(id.Marshal())
	for _, tc := range []struct{ name, text, want string }{
		{"empty", "", "missing"},
		{"unknown header", strings.Replace(good, "Version: 1\n", "Version: 1\nColour: red\n", 1), "unknown header"},
		{"twice", strings.Replace(good, "Version: 1\n", "Version: 1\nVersion: 1\n", 1), "twice"},
		{"missing member", strings.Replace(good, "Member: 192.0.2.10:22\n", "", 1), "Member missing"},
		{"bad member", strings.Replace(good, "192.0.2.10:22", "example.com:22", 1), "IP:PORT"},
		{"bad uuid", strings.Replace(good, "6f0c1d2e", "zz0c1d2e", 1), "Cluster-UUID"},
		{"version 2", strings.Replace(good, "Version: 1", "Version: 2", 1), "version"},
		{"no key", good[:strings.Index(good, "-----BEGIN OPENSSH")] + idEnd + "\n", "cluster key"},
		{"trailing", good + "more\n", "missing"},
		{"bad host key", strings.Replace(good, "Host-Key: ssh-ed25519 ", "Host-Key: ssh-ed25519 x", 1), "Host-Key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseIdentifier([]byte(tc.text))
			if !errors.Is(err, ErrBadIdentifier) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// FuzzParseIdentifier: no input panics, and what parses marshals back to
// something that parses the same.
func FuzzParseIdentifier(f *testing.F) {
	id, _ := testIdentifier(f, "correct horse battery")
	f.Add(id.Marshal())
	f.Add([]byte(idBegin + "\n" + idEnd + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseIdentifier(b)
		if err != nil {
			return
		}
		again, err := ParseIdentifier(got.Marshal())
		if err != nil || again.ClusterUUID != got.ClusterUUID || again.Member != got.Member {
			t.Fatalf("re-parse: %v", err)
		}
	})
}
