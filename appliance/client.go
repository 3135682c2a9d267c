package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
)

// client talks to a running appliance through its control socket.
type client struct {
	http *http.Client
	sock string
}

func newClient(dataDir string) *client {
	sock := filepath.Join(dataDir, controlSocket)
	return &client{sock: sock, http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}}
}

// do sends a request and returns the response when its status is 2xx; a
// JSON error body becomes the error message.
func (c *client) do(ctx context.Context, method, path string, body io.Reader, ctype string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://postern"+path, body)
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			switch {
			case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
				return nil, fmt.Errorf("permission denied on the control socket %s: it is mode 0600, for the user the appliance runs as (run the command as that user, e.g. with sudo)", c.sock)
			case errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED):
				return nil, fmt.Errorf("no running appliance at %s (start it with `postern serve`, or give --data DIR)", c.sock)
			}
			return nil, fmt.Errorf("cannot reach the appliance at %s: %v", c.sock, oe.Err)
		}
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var e struct{ Error string }
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, errors.New(e.Error)
		}
		return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return resp, nil
}

// call sends in (when not nil) as JSON and decodes the JSON answer into
// out (when not nil).
func (c *client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	ctype := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ctype = strings.NewReader(string(b)), "application/json"
	}
	resp, err := c.do(ctx, method, path, body, ctype)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
