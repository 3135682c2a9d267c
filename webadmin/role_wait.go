package webadmin

import (
	"context"
	"fmt"
	"time"
)

// An attach makes the appliance a frontend and a detach makes it
// standalone again: on success it makes itself anew in the same process
// in its new role (the menu keeps serving, its requests to the appliance
// wait meanwhile). The job of either is done only once the appliance
// answers in its new role, so its result page, and every page after it,
// shows the appliance as it now is.

// rolePoll is how often awaitRole asks.
const rolePoll = 250 * time.Millisecond

// awaitRole asks for the cluster status until the appliance is a
// frontend (wantFrontend) or standalone, bounded by Config.RoleWait.
func (s *Server) awaitRole(ctx context.Context, wantFrontend bool) (*clusterStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RoleWait)
	defer cancel()
	var last string
	for {
		var st clusterStatus
		err := s.be.call(ctx, "GET", "/v1/cluster/status", nil, &st)
		switch {
		case err != nil:
			last = errorText(err)
		case wantFrontend && st.Frontend != nil, !wantFrontend && !st.Member:
			return &st, nil
		case st.Frontend != nil:
			last = "it still runs as a frontend"
		case st.Member:
			last = "it is a cluster member (backend)"
		default:
			last = "it is still standalone"
		}
		select {
		case <-ctx.Done():
			role := map[bool]string{true: "a frontend", false: "a standalone appliance"}[wantFrontend]
			return nil, fmt.Errorf("the appliance did not answer as %s within %s (%s): see the Logs page", role, s.cfg.RoleWait, last)
		case <-time.After(rolePoll):
		}
	}
}
