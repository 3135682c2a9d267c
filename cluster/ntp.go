package cluster

import (
	"errors"
	"fmt"
	"time"

	"github.com/beevik/ntp"
)

// ntpCache keeps the last NTP measurement for a short while, so status
// and heartbeats do not query the server on every call.
type ntpCache struct {
	server string
	at     time.Time
	offset time.Duration
	err    error
}

const ntpCacheTTL = 10 * time.Second

// measureNTP returns this machine's clock offset against its NTP server
// (beevik/ntp: QueryWithOptions, Validate, ClockOffset).
func (a *Agent) measureNTP(server string) (time.Duration, error) {
	if server == "" {
		return 0, errors.New("NTP is not enabled")
	}
	a.mu.Lock()
	c := a.ntp
	a.mu.Unlock()
	if c.server == server && time.Since(c.at) < ntpCacheTTL {
		return c.offset, c.err
	}
	off, err := queryNTP(server)
	a.mu.Lock()
	a.ntp = ntpCache{server: server, at: time.Now(), offset: off, err: err}
	a.mu.Unlock()
	return off, err
}

func queryNTP(server string) (time.Duration, error) {
	r, err := ntp.QueryWithOptions(server, ntp.QueryOptions{Timeout: 2 * time.Second})
	if err != nil {
		return 0, fmt.Errorf("NTP server %s: %v", server, err)
	}
	if err := r.Validate(); err != nil {
		return 0, fmt.Errorf("NTP server %s: %v", server, err)
	}
	return r.ClockOffset, nil
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
