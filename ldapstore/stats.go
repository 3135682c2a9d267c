package ldapstore

import (
	"encoding/binary"
	"log/slog"
	"sync/atomic"
)

// Stats are counters of the store's work since Open.
type Stats struct {
	Commits         uint64 // write transactions committed (each one fsync)
	Writes          uint64 // write operations acknowledged
	EntriesExamined uint64 // entries decoded by searches
	IndexLookups    uint64 // equality index lookups by the planner
	ScopeScans      uint64 // searches that fell back to a scope scan
	MappedReleases  uint64 // releases of mapped pages over Options.MappedBudget
}

type counters struct {
	commits, writes, examined, lookups, scans, releases atomic.Uint64
}

// Stats returns the current counters.
func (s *Store) Stats() Stats {
	return Stats{
		Commits:         s.stats.commits.Load(),
		Writes:          s.stats.writes.Load(),
		EntriesExamined: s.stats.examined.Load(),
		IndexLookups:    s.stats.lookups.Load(),
		ScopeScans:      s.stats.scans.Load(),
		MappedReleases:  s.stats.releases.Load(),
	}
}

func putUint64(b []byte, v uint64) { binary.BigEndian.PutUint64(b, v) }

func errAttr(err error) slog.Attr { return slog.String("err", err.Error()) }
