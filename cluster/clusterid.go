package cluster

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/ssh"
)

// Identifier is the content of clusterid.txt: what a joiner needs to reach
// and trust the base member, and the cluster key it proves itself with.
//
// The file is text: a header block, the cluster key in OpenSSH's encrypted
// private key format (the password never appears), and a trailer:
//
//	-----BEGIN POSTERN CLUSTER IDENTIFIER-----
//	Version: 1
//	Cluster-UUID: 6f0c…
//	Member: 192.0.2.10:22
//	Host-Key: ssh-ed25519 AAAA…
//	Created: 2026-05-01T10:00:00Z
//	Expires: 2026-05-02T10:00:00Z
//	Once: yes                       (only for `prepare --once`)
//
//	-----BEGIN OPENSSH PRIVATE KEY-----
//	…
//	-----END OPENSSH PRIVATE KEY-----
//	-----END POSTERN CLUSTER IDENTIFIER-----
type Identifier struct {
	ClusterUUID string
	Member      string        // the base's cluster address, ip:port
	HostKey     ssh.PublicKey // the base's SSH host key (pinned by the joiner)
	Created     time.Time
	// Expires is when the members stop accepting the identifier's key (zero
	// in files of earlier firmware: no expiry); Once that the key admits
	// one join or attach only.
	Expires time.Time
	Once    bool
	Key     []byte // the "OPENSSH PRIVATE KEY" PEM block, encrypted
}

const (
	idBegin    = "-----BEGIN POSTERN CLUSTER IDENTIFIER-----"
	idEnd      = "-----END POSTERN CLUSTER IDENTIFIER-----"
	keyBegin   = "-----BEGIN OPENSSH PRIVATE KEY-----"
	keyEnd     = "-----END OPENSSH PRIVATE KEY-----"
	maxIDBytes = 16 << 10

	// MinPasswordLen is the shortest cluster password accepted.
	MinPasswordLen = 12
)

// Errors of the identifier.
var (
	ErrBadIdentifier = errors.New("cluster: not a valid clusterid.txt")
	ErrWrongPassword = errors.New("cluster: wrong cluster password")
	ErrShortPassword = fmt.Errorf("cluster: the cluster password needs at least %d characters", MinPasswordLen)
)

// newClusterKey makes a cluster key and returns its signer, its public key
// and the private key encrypted under password (OpenSSH format).
func newClusterKey(password string) (ssh.Signer, []byte, error) {
	if len(password) < MinPasswordLen {
		return nil, nil, ErrShortPassword
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	blk, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "postern cluster key", []byte(password))
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: encrypt cluster key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, nil, err
	}
	return signer, pem.EncodeToMemory(blk), nil
}

// Marshal returns the file content.
func (id *Identifier) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\nVersion: 1\nCluster-UUID: %s\nMember: %s\nHost-Key: %s\nCreated: %s\n",
		idBegin, id.ClusterUUID, id.Member, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(id.HostKey))),
		id.Created.UTC().Format(time.RFC3339))
	if !id.Expires.IsZero() {
		fmt.Fprintf(&b, "Expires: %s\n", id.Expires.UTC().Format(time.RFC3339))
	}
	if id.Once {
		b.WriteString("Once: yes\n")
	}
	b.WriteString("\n")
	b.Write(bytes.TrimSpace(id.Key))
	b.WriteString("\n" + idEnd + "\n")
	return b.Bytes()
}

// ParseIdentifier parses clusterid.txt strictly: every header exactly once,
// nothing unknown, nothing after the trailer but white space. It does not
// decrypt the key (Signer does).
func ParseIdentifier(data []byte) (*Identifier, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadIdentifier, fmt.Sprintf(format, args...))
	}
	if len(data) > maxIDBytes {
		return nil, bad("larger than %d bytes", maxIDBytes)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxIDBytes)
	var lines []string
	for sc.Scan() {
		lines = append(lines, strings.TrimRight(sc.Text(), "\r"))
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) < 4 || lines[0] != idBegin || lines[len(lines)-1] != idEnd {
		return nil, bad("missing %s ... %s", idBegin, idEnd)
	}
	lines = lines[1 : len(lines)-1]
	id := &Identifier{}
	seen := map[string]bool{}
	i := 0
	for ; i < len(lines) && lines[i] != ""; i++ {
		k, v, ok := strings.Cut(lines[i], ": ")
		if !ok || v == "" {
			return nil, bad("line %d: want \"Name: value\"", i+2)
		}
		if seen[k] {
			return nil, bad("header %s given twice", k)
		}
		seen[k] = true
		switch k {
		case "Version":
			if v != "1" {
				return nil, bad("version %q (this firmware reads version 1)", v)
			}
		case "Cluster-UUID":
			u, err := uuid.Parse(v)
			if err != nil || u.String() != v {
				return nil, bad("Cluster-UUID %q", v)
			}
			id.ClusterUUID = v
		case "Member":
			ap, err := netip.ParseAddrPort(v)
			if err != nil || ap.Port() == 0 {
				return nil, bad("Member %q: want IP:PORT", v)
			}
			id.Member = ap.String()
		case "Host-Key":
			pk, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(v))
			if err != nil || len(bytes.TrimSpace(rest)) != 0 {
				return nil, bad("Host-Key: not an SSH public key")
			}
			id.HostKey = pk
		case "Created":
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return nil, bad("Created %q", v)
			}
			id.Created = t
		case "Expires":
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return nil, bad("Expires %q", v)
			}
			id.Expires = t
		case "Once":
			if v != "yes" {
				return nil, bad("Once %q (want yes)", v)
			}
			id.Once = true
		default:
			return nil, bad("unknown header %q", k)
		}
	}
	for _, k := range []string{"Version", "Cluster-UUID", "Member", "Host-Key", "Created"} {
		if !seen[k] {
			return nil, bad("header %s missing", k)
		}
	}
	if i >= len(lines) {
		return nil, bad("no cluster key")
	}
	keyLines := lines[i+1:]
	if len(keyLines) < 3 || keyLines[0] != keyBegin || keyLines[len(keyLines)-1] != keyEnd {
		return nil, bad("the cluster key must be one %s block", keyBegin)
	}
	key := []byte(strings.Join(keyLines, "\n") + "\n")
	blk, rest := pem.Decode(key)
	if blk == nil || blk.Type != "OPENSSH PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 || len(blk.Headers) != 0 {
		return nil, bad("cluster key block is damaged")
	}
	id.Key = key
	return id, nil
}

// Signer decrypts the cluster key with the cluster password.
func (id *Identifier) Signer(password string) (ssh.Signer, error) {
	raw, err := ssh.ParseRawPrivateKeyWithPassphrase(id.Key, []byte(password))
	if err != nil {
		if errors.Is(err, x509.IncorrectPasswordError) {
			return nil, ErrWrongPassword
		}
		return nil, fmt.Errorf("%w: cluster key: %v", ErrBadIdentifier, err)
	}
	return ssh.NewSignerFromKey(raw)
}

// keyMeta is what a member knows of a cluster key besides the key: the
// comment of its authorized_keys line, "postern expires=T[ once][ used=T]".
type keyMeta struct {
	Expires time.Time // zero: no expiry (a key of earlier firmware)
	Once    bool
	Used    time.Time // when a once key admitted its join
}

// keyLine returns the authorized_keys line of a cluster key with its meta.
func keyLine(pk ssh.PublicKey, m keyMeta) string {
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))) + " postern"
	if !m.Expires.IsZero() {
		line += " expires=" + m.Expires.UTC().Format(time.RFC3339)
	}
	if m.Once {
		line += " once"
	}
	if !m.Used.IsZero() {
		line += " used=" + m.Used.UTC().Format(time.RFC3339)
	}
	return line
}

// parseKeyLine parses a cluster key line (keyLine's form, or a bare key).
func parseKeyLine(line string) (ssh.PublicKey, keyMeta, error) {
	pk, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, keyMeta{}, err
	}
	var m keyMeta
	for _, f := range strings.Fields(comment) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "expires":
			m.Expires, _ = time.Parse(time.RFC3339, v)
		case "used":
			m.Used, _ = time.Parse(time.RFC3339, v)
		case "once":
			m.Once = true
		}
	}
	return pk, m, nil
}

// refusal says why a cluster key no longer admits joins ("" when it does).
func (m keyMeta) refusal(now time.Time) string {
	switch {
	case !m.Used.IsZero():
		return fmt.Sprintf("this cluster identifier admitted one join (prepare --once) and was used at %s; make a new one on a member with `postern cluster prepare`", m.Used.UTC().Format(time.RFC3339))
	case !m.Expires.IsZero() && now.After(m.Expires):
		return fmt.Sprintf("this cluster identifier expired at %s; make a new one on a member with `postern cluster prepare` (--valid sets how long it is valid)", m.Expires.UTC().Format(time.RFC3339))
	}
	return ""
}
