package replication

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"postern/ldapstore/csn"
)

// providerInfo is what a consumer reads from the provider's Root DSE
// before a sync search.
type providerInfo struct {
	postern bool       // vendorName Postern: it sends parents, tombstones and its pruning horizon
	version string     // vendorVersion: a Postern provider's firmware version
	context csn.Vector // contextCSN
	pruned  csn.Vector // posternPrunedCSN: the newest change pruned per server ID
	entries int        // posternEntryCount, -1 when not published
}

// readProviderInfo reads the provider's Root DSE (RFC 4512 §5.1) on l.
func readProviderInfo(l *ldap.Conn) (providerInfo, error) {
	info := providerInfo{context: csn.Vector{}, pruned: csn.Vector{}, entries: -1}
	res, err := l.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"vendorName", "vendorVersion", "contextCSN", "posternPrunedCSN", "posternEntryCount"}, nil))
	if err != nil {
		return info, err
	}
	if len(res.Entries) != 1 {
		return info, errors.New("no root DSE")
	}
	e := res.Entries[0]
	info.postern = strings.EqualFold(e.GetAttributeValue("vendorName"), "Postern")
	info.version = e.GetAttributeValue("vendorVersion")
	for _, v := range e.GetAttributeValues("contextCSN") {
		if c, err := csn.Parse(v); err == nil {
			info.context.Update(c)
		}
	}
	for _, v := range e.GetAttributeValues("posternPrunedCSN") {
		if c, err := csn.Parse(v); err == nil {
			info.pruned.Update(c)
		}
	}
	if v := e.GetAttributeValue("posternEntryCount"); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			info.entries = n
		}
	}
	return info, nil
}

// errTimeout ends a session whose provider did not answer in time.
var errTimeout = errors.New("replication: provider did not answer in time")

// bounded runs fn (a request on l) and closes l when it has not returned
// within d: go-ldap's own request timeout would also end the persistent
// sync search, so requests beside it are bounded here instead.
func bounded(ctx context.Context, d time.Duration, l *ldap.Conn, fn func() error) error {
	done := make(chan error, 1)
	go func() { done <- fn() }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		l.Close()
		<-done
		return fmt.Errorf("%w (%v)", errTimeout, d)
	case <-ctx.Done():
		l.Close()
		<-done
		return ctx.Err()
	}
}

// probe runs beside the sync search once the refresh is applied: every
// ProbeInterval it reads the provider's Root DSE, bounded by Timeout, and
// ends the session (cancel) when the provider does not answer, so a dead
// peer behind a live socket is noticed without ending a healthy persist
// stage. It refreshes the remote entry count from the same read (a Postern
// provider publishes posternEntryCount), or every CountInterval by listing
// the tree's DNs for other providers (slapd).
func (c *Consumer) probe(ctx context.Context, cancel context.CancelFunc, l *ldap.Conn, refreshed <-chan struct{}) {
	select {
	case <-ctx.Done():
		return
	case <-refreshed:
	}
	var counted time.Time
	for {
		var info providerInfo
		err := bounded(ctx, c.cfg.Timeout, l, func() (err error) { info, err = readProviderInfo(l); return err })
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			c.log.Warn("replication: provider does not answer; ending the session", "err", err)
			c.update(func(s *LinkStatus) { s.Err = err.Error() })
			cancel()
			return
		}
		switch {
		case info.entries >= 0:
			c.update(func(s *LinkStatus) { s.RemoteEntries = info.entries })
		case time.Since(counted) >= c.cfg.CountInterval:
			counted = time.Now()
			var n int
			err := bounded(ctx, c.cfg.Timeout, l, func() error {
				res, err := l.Search(ldap.NewSearchRequest(c.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
					"(objectClass=*)", []string{"1.1"}, nil))
				if err == nil {
					n = len(res.Entries)
				}
				return err
			})
			if err == nil {
				c.update(func(s *LinkStatus) { s.RemoteEntries = n })
			} else if ctx.Err() == nil {
				c.log.Debug("replication: remote count", "err", err)
			}
		}
		c.update(func(s *LinkStatus) { s.RemoteContext = info.context; s.Probed = time.Now() })
		if !sleep(ctx, min(c.cfg.ProbeInterval, c.cfg.CountInterval)) {
			return
		}
	}
}
