package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Secrets are machine-local secrets that every backend holds alike and the
// replicated tree must never carry (secure mail's key-encryption key). A
// joiner gets them from the member it joins through, after the copy of the
// tree; a backend that lacks them (it joined before they existed) asks its
// peers with FetchSecrets. Frontends never get them. The agent moves the
// octets and knows nothing of what they are.
type Secrets struct {
	// Export returns this member's secrets (nil: none yet).
	Export func() ([]byte, error)
	// Import merges secrets a member sent into this member's.
	Import func([]byte) error
}

// msgSecrets: backend member → backend member: send your Secrets → ok with
// Result (a JSON string, base64 of the octets; "" when there are none).
const msgSecrets = "secrets"

func init() { knownMsg[msgSecrets] = true } // one more type for ReadMessage (wire.go)

// ErrNoSecrets: no member had secrets to send.
var ErrNoSecrets = errors.New("cluster: no member holds the secrets")

// serveSecrets answers msgSecrets: only a backend member, authenticated by
// its device key, gets them.
func (a *Agent) serveSecrets(ctx context.Context, ch ssh.Channel, c caller) {
	fail := func(err error) { WriteMessage(ch, &Message{Type: msgError, Error: err.Error()}) }
	if c.role != roleMember || a.cfg.Secrets == nil || a.cfg.Secrets.Export == nil {
		fail(fmt.Errorf("cluster: secrets are not available here"))
		return
	}
	rec, err := a.member(ctx, c.device)
	if err != nil {
		fail(err)
		return
	}
	if rec.Role != "" && rec.Role != "backend" {
		a.log.Warn("cluster: secrets refused to a member that is no backend", slog.String("member", c.device), slog.String("role", rec.Role))
		fail(fmt.Errorf("cluster: secrets go to backends only"))
		return
	}
	b, err := a.cfg.Secrets.Export()
	if err != nil {
		fail(err)
		return
	}
	res, _ := json.Marshal(b)
	a.log.Info("cluster: secrets sent to a backend", slog.String("member", c.device), slog.Bool("any", len(b) > 0))
	WriteMessage(ch, &Message{Type: msgOK, Result: res})
}

// takeSecrets imports the secrets of an answer; false when it held none.
func (a *Agent) takeSecrets(ans *Message) (bool, error) {
	var b []byte
	if err := json.Unmarshal(ans.Result, &b); err != nil {
		return false, fmt.Errorf("cluster: secrets: %w", err)
	}
	if len(b) == 0 {
		return false, nil
	}
	return true, a.cfg.Secrets.Import(b)
}

// joinSecrets fetches the secrets from the member a join went through.
func (a *Agent) joinSecrets(ctx context.Context, c *ssh.Client, progress func(string)) error {
	if a.cfg.Secrets == nil || a.cfg.Secrets.Import == nil {
		return nil
	}
	ans, err := callClient(ctx, c, &Message{Type: msgSecrets})
	if err != nil {
		if strings.Contains(err.Error(), "not available") {
			return nil // a member without secrets support
		}
		return fmt.Errorf("cluster: secrets: %w", err)
	}
	got, err := a.takeSecrets(ans)
	if err != nil {
		return err
	}
	if got {
		progress("received the cluster's secrets (key-encryption key), kept machine-local")
	}
	return nil
}

// FetchSecrets asks the backend peers, in Cluster No. order, for their
// secrets and imports the first it gets: for a backend that joined before
// they existed.
func (a *Agent) FetchSecrets(ctx context.Context) error {
	if a.cfg.Secrets == nil || a.cfg.Secrets.Import == nil {
		return ErrNoSecrets
	}
	if a.state() == nil {
		return ErrNotMember
	}
	members, err := readMembers(ctx, a.cfg.Store)
	if err != nil {
		return err
	}
	var errs []string
	for _, m := range members {
		if m.DeviceID == a.cfg.DeviceID || (m.Role != "" && m.Role != "backend") {
			continue
		}
		p := a.peer(m.DeviceID)
		if p == nil {
			continue
		}
		ans, err := p.call(ctx, &Message{Type: msgSecrets})
		if err != nil {
			errs = append(errs, m.DeviceID+": "+err.Error())
			continue
		}
		got, err := a.takeSecrets(ans)
		if err != nil {
			return err
		}
		if got {
			a.log.Info("cluster: secrets received from a peer", slog.String("member", m.DeviceID))
			return nil
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w (%s)", ErrNoSecrets, strings.Join(errs, "; "))
	}
	return ErrNoSecrets
}
