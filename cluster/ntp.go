package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/beevik/ntp"
)

// ntpCache is the last NTP measurement: the heartbeat loop refreshes it in
// the background, status, heartbeats and metrics read it.
type ntpCache struct {
	server string
	at     time.Time // when measured
	offset time.Duration
	err    error
	// failingSince is when the server stopped answering (zero while it
	// answers).
	failingSince time.Time
	// blocked is whether this agent refused local writes for the offset.
	blocked bool
}

const ntpCacheTTL = 10 * time.Second

// measureNTP returns this machine's clock offset against its NTP server
// (beevik/ntp: QueryWithOptions, Validate, ClockOffset), from the last
// measurement when it is recent.
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
	return a.refreshNTP(server)
}

// refreshNTP measures now and keeps the result; a cluster member whose
// clock is off by more than MaxOffset refuses local writes until it is back
// within the bound (their CSNs would carry the wrong time: a clock an hour
// ahead wins every conflict for an hour).
func (a *Agent) refreshNTP(server string) (time.Duration, error) {
	var off time.Duration
	err := errors.New("NTP is not enabled")
	if server != "" {
		off, err = queryNTP(server)
		off -= a.cfg.ClockSkew
	}
	a.mu.Lock()
	prev := a.ntp
	c := ntpCache{server: server, at: time.Now(), offset: off, err: err, blocked: prev.blocked}
	if err != nil {
		c.failingSince = prev.failingSince
		if c.failingSince.IsZero() || prev.server != server {
			c.failingSince = c.at
		}
	}
	member := a.st != nil
	a.ntp = c
	a.mu.Unlock()
	switch {
	case err != nil:
		if prev.err == nil && server != "" {
			a.log.Warn("cluster: NTP server does not answer; clock parity cannot be checked", slog.String("server", server), slog.Any("err", err))
		}
	case member && absDur(off) > a.cfg.MaxOffset:
		msg := fmt.Sprintf("this member's %s: local writes are refused until the clock is back within the bound (their change sequence numbers would carry the wrong time)", strings.Replace(clockText(off, server, a.cfg.MaxOffset), "clock ", "clock is ", 1))
		a.cfg.Store.SetWriteBlock(msg)
		if !prev.blocked {
			a.log.Warn("cluster: clock off; refusing local writes", slog.Duration("offset", off), slog.String("server", server))
		}
		a.setBlocked(true)
	case prev.blocked:
		a.cfg.Store.SetWriteBlock("")
		a.setBlocked(false)
		a.log.Info("cluster: clock back within the bound; local writes accepted again", slog.Duration("offset", off))
	}
	return off, err
}

func (a *Agent) setBlocked(b bool) {
	a.mu.Lock()
	a.ntp.blocked = b
	a.mu.Unlock()
}

func (a *Agent) ntpState() ntpCache {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ntp
}

// ntpLoop measures the clock offset every Heartbeat.
func (a *Agent) ntpLoop() {
	t := time.NewTicker(a.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
		}
		a.refreshNTP(a.cfg.Local().NTPServer)
	}
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

// roundDur rounds d for people: milliseconds below a second.
func roundDur(d time.Duration) time.Duration {
	if absDur(d) < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}
