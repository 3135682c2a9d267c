package cluster

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"postern/ldapstore"
	"postern/ldapstore/csn"
)

// The consistency check: every CheckInterval each backend peer's directory
// is compared with this one's by context CSN vector and per-server-ID
// digest (ldapstore.DigestState), so that status tells the truth when the
// members hold different trees: "behind by N changes / N s", "ahead by …",
// or "diverged" when the vectors are equal and the trees are not (equal
// entry counts included). The result keeps the time of its measurement.

// CheckInfo is a member's answer to a check request.
type CheckInfo struct {
	Context []string          `json:"context"`           // the context CSN, one CSN per server ID
	Digests map[string]string `json:"digests,omitempty"` // server ID → hex digest
	Counts  map[string]int    `json:"counts,omitempty"`  // server ID → live entries last written by it
	Entries int               `json:"entries"`
	// Lacking is, in an answer, how many changes the asker's context CSN
	// (the request's Context) does not cover, up to checkLimit; Trimmed says
	// the asker is older than the changelog (then Lacking is a floor).
	Lacking int  `json:"lacking,omitempty"`
	Trimmed bool `json:"trimmed,omitempty"`
}

// checkLimit bounds the changes a check counts.
const checkLimit = 100000

// Check states (PeerCheck.State).
const (
	CheckStateInSync   = "in sync"
	CheckStateBehind   = "behind"
	CheckStateAhead    = "ahead"
	CheckStateDiverged = "diverged"
	CheckStateError    = "error"
)

// PeerCheck is the last comparison of a peer's directory with this one's.
type PeerCheck struct {
	State    string    `json:"state"`
	Measured time.Time `json:"measured"`
	// Behind: changes the peer holds that this member lacks, and how much
	// older this member's newest change of those server IDs is; Ahead the
	// other way round.
	BehindChanges int           `json:"behind_changes,omitempty"`
	BehindBy      time.Duration `json:"behind_by,omitempty"`
	AheadChanges  int           `json:"ahead_changes,omitempty"`
	AheadBy       time.Duration `json:"ahead_by,omitempty"`
	// DivergedSIDs are the server IDs (Cluster No.) whose entries differ
	// although both members hold the same changes of them.
	DivergedSIDs []int  `json:"diverged_sids,omitempty"`
	Err          string `json:"error,omitempty"`
}

// Text is the check in words, without the time.
func (c PeerCheck) Text() string {
	switch c.State {
	case CheckStateInSync:
		return "in sync"
	case CheckStateDiverged:
		nos := make([]string, len(c.DivergedSIDs))
		for i, s := range c.DivergedSIDs {
			nos[i] = strconv.Itoa(s)
		}
		return fmt.Sprintf("diverged: entries last written by Cluster No. %s differ although both members hold the same changes (see postern cluster compare)", strings.Join(nos, ", "))
	case CheckStateError:
		return "check failed: " + c.Err
	}
	var parts []string
	if c.BehindChanges > 0 || c.BehindBy > 0 {
		parts = append(parts, fmt.Sprintf("behind by %s / %s", changes(c.BehindChanges), roundDur(c.BehindBy)))
	}
	if c.AheadChanges > 0 || c.AheadBy > 0 {
		parts = append(parts, fmt.Sprintf("ahead by %s / %s", changes(c.AheadChanges), roundDur(c.AheadBy)))
	}
	return strings.Join(parts, ", ")
}

func changes(n int) string {
	if n == 1 {
		return "1 change"
	}
	if n >= checkLimit {
		return fmt.Sprintf("%d+ changes", n)
	}
	return fmt.Sprintf("%d changes", n)
}

// checkInfo describes this member's directory; asker is the requester's
// context CSN (nil: none).
func (a *Agent) checkInfo(ctx context.Context, asker csn.Vector) (*CheckInfo, *ldapstore.DigestState, error) {
	d, err := a.cfg.Store.Digest(ctx)
	if err != nil {
		return nil, nil, err
	}
	ci := &CheckInfo{Context: d.Context.Strings(), Digests: map[string]string{}, Counts: map[string]int{}, Entries: d.Entries}
	for sid, v := range d.Digests {
		ci.Digests[strconv.Itoa(int(sid))] = hex.EncodeToString(binary.BigEndian.AppendUint64(nil, v))
		ci.Counts[strconv.Itoa(int(sid))] = d.Counts[sid]
	}
	if asker != nil {
		n, err := a.cfg.Store.CountChangesSince(ctx, asker, checkLimit)
		if errors.Is(err, ldapstore.ErrChangelogTrimmed) {
			ci.Trimmed, err = true, nil
			n = checkLimit
		}
		if err != nil {
			return nil, nil, err
		}
		ci.Lacking = n
	}
	return ci, d, nil
}

func parseVector(csns []string) csn.Vector {
	v := csn.Vector{}
	for _, s := range csns {
		if c, err := csn.Parse(s); err == nil {
			v.Update(c)
		}
	}
	return v
}

// checkLoop compares every backend peer every CheckInterval.
func (a *Agent) checkLoop() {
	t := time.NewTicker(a.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
		}
		if a.state() == nil {
			continue
		}
		a.mu.Lock()
		peers := make([]*peer, 0, len(a.peers))
		for _, p := range a.peers {
			peers = append(peers, p)
		}
		a.mu.Unlock()
		for _, p := range peers {
			if a.ctx.Err() != nil {
				return
			}
			if paused, _ := p.paused(); paused {
				continue // nothing moves between versions: no verdict
			}
			c := a.checkPeer(a.ctx, p)
			p.mu.Lock()
			prev := p.check
			p.check = c
			p.mu.Unlock()
			if c.State != prev.State && (c.State == CheckStateDiverged || prev.State == CheckStateDiverged) {
				level := slog.LevelWarn
				if c.State != CheckStateDiverged {
					level = slog.LevelInfo
				}
				a.log.Log(a.ctx, level, "cluster: consistency check", slog.String("peer", p.id), slog.String("result", c.Text()))
			}
		}
	}
}

// checkRetries is how often a check asks again while the two vectors
// differ (changes in flight), checkPause the wait between.
const (
	checkRetries = 4
	checkPause   = 250 * time.Millisecond
)

// checkPeer compares p's directory with this one's now.
func (a *Agent) checkPeer(ctx context.Context, p *peer) PeerCheck {
	var mine *ldapstore.DigestState
	var theirs *CheckInfo
	var tv csn.Vector
	for try := range checkRetries {
		if try > 0 {
			select {
			case <-ctx.Done():
				return PeerCheck{State: CheckStateError, Err: "stopped", Measured: time.Now().UTC()}
			case <-time.After(checkPause):
			}
		}
		var err error
		_, mine, err = a.checkInfo(ctx, nil)
		if err != nil {
			return PeerCheck{State: CheckStateError, Err: err.Error(), Measured: time.Now().UTC()}
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ans, err := p.call(cctx, &Message{Type: msgCheck, Check: &CheckInfo{Context: mine.Context.Strings()}})
		cancel()
		if err == nil && ans.Check == nil {
			err = errors.New("no answer")
		}
		if err != nil {
			return PeerCheck{State: CheckStateError, Err: err.Error(), Measured: time.Now().UTC()}
		}
		theirs, tv = ans.Check, parseVector(ans.Check.Context)
		if vectorsEqual(mine.Context, tv) {
			break
		}
	}
	c := PeerCheck{Measured: time.Now().UTC()}
	if vectorsEqual(mine.Context, tv) {
		c.State = CheckStateInSync
		for sid, v := range mine.Digests {
			if theirs.Digests[strconv.Itoa(int(sid))] != hex.EncodeToString(binary.BigEndian.AppendUint64(nil, v)) {
				c.DivergedSIDs = append(c.DivergedSIDs, int(sid))
			}
		}
		for s := range theirs.Digests {
			if sid, err := strconv.Atoi(s); err == nil {
				if _, ok := mine.Digests[uint16(sid)]; !ok {
					c.DivergedSIDs = append(c.DivergedSIDs, sid)
				}
			}
		}
		if len(c.DivergedSIDs) > 0 {
			slices.Sort(c.DivergedSIDs)
			c.State = CheckStateDiverged
		}
		return c
	}
	c.BehindChanges = theirs.Lacking
	if n, err := a.cfg.Store.CountChangesSince(ctx, tv, checkLimit); err == nil {
		c.AheadChanges = n
	} else if errors.Is(err, ldapstore.ErrChangelogTrimmed) {
		c.AheadChanges = checkLimit
	}
	// how much older the lagging side's newest change of a server ID is
	// (a server ID one side has never seen counts by changes only)
	for sid, t := range tv {
		if m, ok := mine.Context[sid]; ok && t.Compare(m) > 0 {
			c.BehindBy = max(c.BehindBy, t.Time.Sub(m.Time))
		}
	}
	for sid, m := range mine.Context {
		if t, ok := tv[sid]; ok && m.Compare(t) > 0 {
			c.AheadBy = max(c.AheadBy, m.Time.Sub(t.Time))
		}
	}
	switch {
	case c.BehindChanges > 0 || c.BehindBy > 0:
		c.State = CheckStateBehind
	default:
		c.State = CheckStateAhead
	}
	return c
}

func vectorsEqual(a, b csn.Vector) bool {
	if len(a) != len(b) {
		return false
	}
	for sid, c := range a {
		if o, ok := b[sid]; !ok || o != c {
			return false
		}
	}
	return true
}
