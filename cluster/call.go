package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Member calls: an appliance-level operation (the mail queue, say) run on
// every backend member through the control channel, for the views an
// admin needs of the whole cluster at once (`postern queue list --cluster`).
// The agent carries them; the appliance implements them (Config.Call).

// CallResult is one member's answer to CallAll.
type CallResult struct {
	DeviceID  string          `json:"device_id"`
	ClusterNo int             `json:"cluster_no"`
	Self      bool            `json:"self,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     string          `json:"error,omitempty"`
}

// CallAll runs op with arg on this member and every backend peer (10 s at
// most each) and returns their answers in Cluster No. order.
func (a *Agent) CallAll(ctx context.Context, op string, arg json.RawMessage) ([]CallResult, error) {
	if a.cfg.Call == nil {
		return nil, fmt.Errorf("cluster: member calls are not available")
	}
	st := a.state()
	if st == nil {
		return nil, ErrNotMember
	}
	members, err := readMembers(ctx, a.cfg.Store)
	if err != nil {
		return nil, err
	}
	members = slices.DeleteFunc(members, func(m MemberInfo) bool { return m.Role == "frontend" })
	out := make([]CallResult, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		out[i] = CallResult{DeviceID: m.DeviceID, ClusterNo: m.ClusterNo, Self: m.DeviceID == a.cfg.DeviceID}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			var res json.RawMessage
			var err error
			if out[i].Self {
				res, err = a.localCall(cctx, op, arg)
			} else if p := a.peer(m.DeviceID); p == nil {
				err = fmt.Errorf("no link to this member")
			} else if err = p.knownDown(); err != nil {
				// a member known to be down is not waited for
			} else {
				var ans *Message
				if ans, err = p.call(cctx, &Message{Type: msgCall, Op: op, Arg: arg}); err == nil {
					res = ans.Result
				}
			}
			if err != nil {
				out[i].Error = err.Error()
			}
			out[i].Result = res
		}()
	}
	wg.Wait()
	slices.SortFunc(out, func(x, y CallResult) int { return x.ClusterNo - y.ClusterNo })
	return out, nil
}

func (a *Agent) localCall(ctx context.Context, op string, arg json.RawMessage) (json.RawMessage, error) {
	v, err := a.cfg.Call(ctx, op, arg)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// RetireIdentifiers makes every cluster identifier handed out so far
// useless (`postern cluster password`: the next `prepare` takes the new
// password) and returns how many it retired. Members keep working on their
// device keys.
func (a *Agent) RetireIdentifiers(ctx context.Context) (int, error) {
	if a.state() == nil {
		return 0, ErrNotMember
	}
	ce, err := readCluster(ctx, a.cfg.Store)
	if err != nil {
		return 0, err
	}
	n := len(ce.Keys)
	ce.Keys = nil
	if err := writeCluster(ctx, a.cfg.Store, ce, a.cfg.RootDN); err != nil {
		return 0, err
	}
	a.log.Warn("cluster: every cluster identifier retired (cluster password changed)", slog.Int("identifiers", n))
	return n, nil
}
