package webadmin

import (
	"context"
	"errors"
	"net/http"
)

// A frontend keeps no directory: its control API answers the routes that
// need one (LDIF, managed domains, relay settings, ...) with 409 and a
// message that names the backends to use instead. The pages that need a
// directory show that message where their tables and forms would be, and
// never fail for it.

// refusal returns the control API's message when err is its 409 answer.
func refusal(err error) (string, bool) {
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusConflict {
		return e.Msg, true
	}
	return "", false
}

// directoryRefusal returns the control API's refusal of the directory's
// routes when this appliance is a frontend, and "" when it has a
// directory. It asks for the export, which a frontend refuses at once.
func (s *Server) directoryRefusal(ctx context.Context) (string, error) {
	var st statusReport
	if err := s.be.call(ctx, "GET", "/v1/status", nil, &st); err != nil {
		return "", err
	}
	if !st.Frontend() {
		return "", nil
	}
	resp, err := s.be.do(ctx, "GET", "/v1/ldif/export", nil, "")
	if err == nil {
		resp.Body.Close()
		return "this appliance is a cluster frontend without a local directory: use a backend", nil
	}
	if msg, ok := refusal(err); ok {
		return msg, nil
	}
	return "", err
}
