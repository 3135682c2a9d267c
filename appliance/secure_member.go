package appliance

import (
	"context"
	"encoding/json"
	"fmt"

	"postern/smtp/secure"
)

// Secure mail on a frontend. A frontend keeps no key material: its
// secure.Keys (remoteKeys) asks a backend per message through the cluster's
// member calls (cluster.Config.Call, op names below), and the backend
// answers from its directory (ldapKeys), private keys opened with its KEK
// and sent over the SSH tunnel, to be used in memory and dropped.
//
// The frontend side needs one transport function (MemberCaller): the
// cluster layer's call of one backend, with failover, e.g.
//
//	keys := &remoteKeys{call: func(ctx context.Context, op string, arg, out any) error {
//		b, _ := json.Marshal(arg)
//		res, err := agent.CallBackend(ctx, op, b) // the frontend's backend, failing over
//		if err != nil {
//			return err
//		}
//		return json.Unmarshal(res, out)
//	}}
//	secure.New(secure.Config{Keys: keys, ...})
//
// and the backend lists secureOps in cluster.Config.FrontendOps.

// secureOps are the member-call operations of secure mail.
var secureOps = []string{"secure.managed", "secure.policy", "secure.public", "secure.private", "secure.dkim", "secure.roots", "secure.collect"}

// secureArg is the argument of every secure.* operation.
type secureArg struct {
	Name string `json:"name"`           // address or domain
	Cert []byte `json:"cert,omitempty"` // secure.collect
}

// secureCall answers a secure.* member call from the local directory.
func (a *Appliance) secureCall(ctx context.Context, op string, raw json.RawMessage) (any, error) {
	var arg secureArg
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &arg); err != nil {
			return nil, fmt.Errorf("appliance: %s: %w", op, err)
		}
	}
	k := &ldapKeys{a: a}
	switch op {
	case "secure.managed":
		return k.Managed(ctx, arg.Name)
	case "secure.policy":
		return k.Policy(ctx, arg.Name)
	case "secure.public":
		return k.Public(ctx, arg.Name)
	case "secure.private":
		pks, err := k.Private(ctx, arg.Name)
		if err == nil {
			a.log.Info("secure: private keys handed to a member for one message", "address", arg.Name, "keys", len(pks))
		}
		return pks, err
	case "secure.dkim":
		pk, ok, err := k.DKIM(ctx, arg.Name)
		return dkimAnswer{Key: pk, OK: ok}, err
	case "secure.roots":
		return k.Roots(ctx)
	case "secure.collect":
		return true, k.Collect(ctx, arg.Name, arg.Cert)
	}
	return nil, fmt.Errorf("unknown operation %q", op)
}

type dkimAnswer struct {
	Key secure.PrivateKey `json:"key"`
	OK  bool              `json:"ok"`
}

// MemberCaller runs one member call on a backend and decodes its answer
// into out.
type MemberCaller func(ctx context.Context, op string, arg, out any) error

// remoteKeys is secure.Keys on a frontend: every lookup asks a backend.
type remoteKeys struct{ call MemberCaller }

var _ secure.Keys = (*remoteKeys)(nil)

func (r *remoteKeys) Managed(ctx context.Context, d string) (ok bool, err error) {
	err = r.call(ctx, "secure.managed", secureArg{Name: d}, &ok)
	return
}

func (r *remoteKeys) Policy(ctx context.Context, a string) (p secure.Policy, err error) {
	err = r.call(ctx, "secure.policy", secureArg{Name: a}, &p)
	return
}

func (r *remoteKeys) Public(ctx context.Context, a string) (out []secure.PublicKey, err error) {
	err = r.call(ctx, "secure.public", secureArg{Name: a}, &out)
	return
}

func (r *remoteKeys) Private(ctx context.Context, a string) (out []secure.PrivateKey, err error) {
	err = r.call(ctx, "secure.private", secureArg{Name: a}, &out)
	return
}

func (r *remoteKeys) DKIM(ctx context.Context, d string) (secure.PrivateKey, bool, error) {
	var ans dkimAnswer
	err := r.call(ctx, "secure.dkim", secureArg{Name: d}, &ans)
	return ans.Key, ans.OK, err
}

func (r *remoteKeys) Roots(ctx context.Context) (out [][]byte, err error) {
	err = r.call(ctx, "secure.roots", secureArg{}, &out)
	return
}

func (r *remoteKeys) Collect(ctx context.Context, a string, cert []byte) error {
	var ok bool
	return r.call(ctx, "secure.collect", secureArg{Name: a, Cert: cert}, &ok)
}
