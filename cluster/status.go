package cluster

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Status is what `postern cluster status` shows: the three tables of the
// cluster menu, measured when asked.
type Status struct {
	Member      bool        `json:"member"`
	DeviceID    string      `json:"device_id"`
	UUID        string      `json:"uuid"`
	ClusterUUID string      `json:"cluster_uuid,omitempty"`
	ClusterNo   int         `json:"cluster_no,omitempty"`
	Addr        string      `json:"addr,omitempty"`
	Members     []MemberRow `json:"members"`
	Setup       []SetupRow  `json:"setup"`
	Replication []ReplRow   `json:"replication"`
	LastChange  string      `json:"last_change,omitempty"` // "Cluster No. N at TIME"
	Protection  *Protection `json:"protection,omitempty"`
	InjectTo    []string    `json:"inject_to,omitempty"`
	NTP         NTPStatus   `json:"ntp"`
	Standalone  string      `json:"standalone,omitempty"` // why this device is standalone, when it was removed while away
	Measured    time.Time   `json:"measured"`
}

// NTPStatus is this member's last clock measurement.
type NTPStatus struct {
	Server        string    `json:"server"`
	OffsetMS      float64   `json:"offset_ms"`
	Error         string    `json:"error,omitempty"`
	FailingSince  time.Time `json:"failing_since,omitzero"`
	Measured      time.Time `json:"measured,omitzero"`
	MaxOffset     string    `json:"max_offset"`
	WritesRefused bool      `json:"writes_refused,omitempty"`
}

// MemberRow is a row of the Cluster members table (backends).
type MemberRow struct {
	DeviceID string `json:"device_id"`
	IP       string `json:"ip"`
	Port     string `json:"port"`
	Status   string `json:"status"`
	OK       bool   `json:"ok"`
	// State is the status in one word: ok, unreachable, paused,
	// replication (the link's error), behind, ahead, diverged, writes
	// refused; Measured is when the facts it rests on were measured.
	State      string     `json:"state"`
	Measured   time.Time  `json:"measured,omitzero"`
	Check      *PeerCheck `json:"check,omitempty"`
	Self       bool       `json:"self,omitempty"`
	Comment    string     `json:"comment"`
	Location   string     `json:"location"`
	Version    string     `json:"version"`
	LastUpdate time.Time  `json:"last_update"`
}

// SetupRow is a row of the Cluster Setup table (every partner).
type SetupRow struct {
	DeviceID   string    `json:"device_id"`
	UUID       string    `json:"uuid"`
	ClusterNo  string    `json:"cluster_no"` // "2", or "F(1,2)" for a frontend
	Hostname   string    `json:"hostname"`
	IP         string    `json:"ip"`
	Port       string    `json:"port"`
	FrontendOf []string  `json:"frontend_of"`
	BackendOf  []string  `json:"backend_of"`
	Comment    string    `json:"comment"`
	Location   string    `json:"location"`
	Version    string    `json:"version"`
	NTPServer  string    `json:"ntp_server"`
	Parity     string    `json:"parity"` // "OK" or what differs from this device
	LastUpdate time.Time `json:"last_update"`
	Self       bool      `json:"self,omitempty"`
}

// ReplRow is a row of the Cluster replication table (backends).
type ReplRow struct {
	DeviceID   string    `json:"device_id"`
	UUID       string    `json:"uuid"`
	ClusterNo  int       `json:"cluster_no"`
	ContextCSN string    `json:"context_csn"` // newest change made by this member, as seen here
	Time       time.Time `json:"time,omitzero"`
	Self       bool      `json:"self,omitempty"`
}

// Status answers at once from what the agent measures continuously: the
// peers' last heartbeat answers, the replication links' states, the last
// consistency check of each peer and the last NTP measurement, each with
// the time it was measured. It never dials a peer while the caller waits.
func (a *Agent) Status(ctx context.Context) (*Status, error) {
	s := &Status{DeviceID: a.cfg.DeviceID, UUID: a.cfg.UUID, Measured: time.Now().UTC()}
	st := a.state()
	if st == nil {
		a.mu.Lock()
		s.Standalone = a.removedNote
		a.mu.Unlock()
		return s, nil
	}
	s.Member, s.ClusterUUID, s.ClusterNo, s.Addr = true, st.ClusterUUID, st.ClusterNo, st.Addr
	members, err := readMembers(ctx, a.cfg.Store)
	if err != nil {
		return nil, err
	}
	local, _ := a.cfg.Store.Count(ctx)
	loc := a.cfg.Local()
	ntpNow := a.ntpState()
	frontendOf := map[string][]string{}
	for _, m := range members {
		for _, b := range m.BackendOf {
			frontendOf[b] = append(frontendOf[b], m.DeviceID)
		}
	}
	for _, m := range members {
		ip, port, _ := net.SplitHostPort(m.Addr)
		self := m.DeviceID == a.cfg.DeviceID
		row := SetupRow{DeviceID: m.DeviceID, UUID: m.UUID, ClusterNo: strconv.Itoa(m.ClusterNo), Hostname: m.Hostname,
			IP: ip, Port: port, FrontendOf: frontendOf[m.DeviceID], BackendOf: m.BackendOf, Comment: m.Comment, Location: m.Location,
			Version: m.Version, NTPServer: m.NTPServer, LastUpdate: m.LastUpdate, Self: self, Parity: "OK"}
		var view peerView
		if p := a.peer(m.DeviceID); p != nil && !self {
			view = p.view(a.cfg.Heartbeat)
		}
		version, ntpServer := m.Version, m.NTPServer
		if h := view.hello; h != nil {
			version, ntpServer = h.Version, h.NTPServer
		}
		var diffs []string
		if version != a.cfg.Version {
			diffs = append(diffs, fmt.Sprintf("firmware %s here, %s there", a.cfg.Version, version))
		}
		if ntpServer != loc.NTPServer {
			diffs = append(diffs, fmt.Sprintf("NTP server %q here, %q there", loc.NTPServer, ntpServer))
		}
		switch {
		case self:
			diffs = append(diffs, ntpProblems(loc.NTPServer, ntpNow.err, ntpNow.offset, ntpNow.failingSince, a.cfg.MaxOffset)...)
		case view.hello != nil:
			diffs = append(diffs, peerNTPProblems(view.hello, a.cfg.MaxOffset)...)
		}
		if len(diffs) > 0 {
			row.Parity = strings.Join(diffs, "; ")
		}
		if m.Role == "frontend" {
			row.ClusterNo = "F(" + strings.Join(m.BackendOf, ",") + ")"
		}
		s.Setup = append(s.Setup, row)
		if m.Role == "frontend" {
			continue
		}
		mr := MemberRow{DeviceID: m.DeviceID, IP: ip, Port: port, Comment: m.Comment, Location: m.Location,
			Version: m.Version, LastUpdate: m.LastUpdate, Self: self}
		if self {
			mr.OK, mr.State, mr.Measured = true, "ok", s.Measured
			mr.Status = fmt.Sprintf("this device (%d entries in local database)", local)
			if blk := a.cfg.Store.WriteBlock(); blk != "" {
				mr.OK, mr.State = false, "writes refused"
				mr.Status += "; " + blk
			}
			if known, was := a.keyKnown(ctx); !known {
				mr.OK, mr.State = false, "key unknown"
				mr.Status += fmt.Sprintf("; this device's key is not the one the cluster knows (%s): run `postern cluster rekey --id clusterid.txt --password-file F` with a new identifier", was)
			}
		} else {
			a.peerRow(&mr, m, view, local)
		}
		s.Members = append(s.Members, mr)
	}
	vec := a.cfg.Store.ContextCSN()
	var newest *ReplRow
	for _, m := range members {
		if m.Role == "frontend" {
			continue
		}
		r := ReplRow{DeviceID: m.DeviceID, UUID: m.UUID, ClusterNo: m.ClusterNo, Self: m.DeviceID == a.cfg.DeviceID}
		if c, ok := vec[uint16(m.ClusterNo)]; ok {
			r.ContextCSN, r.Time = c.String(), c.Time.UTC()
		}
		s.Replication = append(s.Replication, r)
		if r.ContextCSN != "" && (newest == nil || r.Time.After(newest.Time)) {
			rr := r
			newest = &rr
		}
	}
	if newest != nil {
		s.LastChange = fmt.Sprintf("Cluster No. %d at %s", newest.ClusterNo, newest.Time.Format(time.RFC3339))
	}
	if p, err := a.Protection(ctx); err == nil {
		s.Protection = &p
	}
	for _, m := range members {
		if m.DeviceID == a.cfg.DeviceID {
			s.InjectTo = m.InjectTo
		}
	}
	s.NTP = NTPStatus{Server: loc.NTPServer, Measured: ntpNow.at.UTC(), MaxOffset: a.cfg.MaxOffset.String()}
	if ntpNow.err != nil {
		s.NTP.Error = ntpNow.err.Error()
		if !ntpNow.failingSince.IsZero() {
			s.NTP.FailingSince = ntpNow.failingSince.UTC()
		}
	} else if !ntpNow.at.IsZero() {
		s.NTP.OffsetMS = float64(ntpNow.offset) / float64(time.Millisecond)
	}
	s.NTP.WritesRefused = a.cfg.Store.WriteBlock() != ""
	return s, nil
}

// peerView is what the agent knows of a peer at one moment.
type peerView struct {
	connected bool // SSH connection up and a heartbeat answered within 3 heartbeats
	hello     *PeerInfo
	helloAt   time.Time
	lastErr   string
	errAt     time.Time
	lastOK    time.Time
	check     PeerCheck
	link      *LinkStatus
	paused    string
}

func (p *peer) view(heartbeat time.Duration) peerView {
	p.mu.Lock()
	v := peerView{hello: p.hello, helloAt: p.helloAt, lastErr: p.lastErr, errAt: p.errAt, lastOK: p.lastOK, check: p.check}
	v.connected = p.client != nil && time.Since(p.lastOK) < 3*heartbeat
	link := p.link
	p.mu.Unlock()
	if link != nil {
		ls := link.Status()
		v.link = &ls
	}
	if paused, why := p.paused(); paused {
		v.paused = why
	}
	return v
}

// peerRow fills a Cluster members row of a peer from what was measured.
func (a *Agent) peerRow(mr *MemberRow, m MemberInfo, v peerView, local int) {
	if v.hello != nil {
		mr.Version = v.hello.Version
	}
	mr.Measured = v.helloAt.UTC()
	if v.check.State != "" {
		c := v.check
		mr.Check = &c
	}
	switch {
	case !v.connected:
		mr.State = "unreachable"
		since := v.errAt
		if since.IsZero() {
			since = v.lastOK
		}
		why := v.lastErr
		if why == "" {
			why = "no heartbeat answer"
		}
		if since.IsZero() {
			mr.Status = "error: not connected yet: " + why
		} else {
			mr.Status = fmt.Sprintf("error: unreachable (since %s): %s", since.UTC().Format(time.RFC3339), why)
		}
		mr.Measured = v.errAt.UTC()
	case v.paused != "":
		mr.State, mr.Status = "paused", v.paused
	case v.link != nil && !v.link.OK && v.link.Text != "":
		mr.State, mr.Status = "replication", v.link.Text
		if !v.link.Since.IsZero() {
			mr.Status += fmt.Sprintf(" (since %s)", v.link.Since.UTC().Format(time.RFC3339))
		}
	case v.check.State == CheckStateDiverged || v.check.State == CheckStateBehind || v.check.State == CheckStateAhead:
		mr.State = v.check.State
		mr.Status = fmt.Sprintf("%s (measured %s)", v.check.Text(), v.check.Measured.Format(time.RFC3339))
		mr.Measured = v.check.Measured
	default:
		remote := 0
		if v.hello != nil {
			remote = v.hello.Entries
		}
		if v.link != nil && v.link.RemoteEntries > 0 {
			remote = v.link.RemoteEntries
		}
		mr.OK, mr.State = true, "ok"
		mr.Status = fmt.Sprintf("OK (%d entries in remote database, %d entries in local database)", remote, local)
	}
}

// ntpProblems says what is wrong with this member's clock parity.
func ntpProblems(server string, err error, off time.Duration, failingSince time.Time, bound time.Duration) []string {
	switch {
	case server == "":
		return []string{"NTP is not enabled"}
	case err != nil && !failingSince.IsZero():
		return []string{fmt.Sprintf("NTP server %s does not answer (since %s)", server, failingSince.UTC().Format(time.RFC3339))}
	case err != nil:
		return []string{"NTP: " + err.Error()}
	case absDur(off) > bound:
		return []string{clockText(off, server, bound)}
	}
	return nil
}

func peerNTPProblems(h *PeerInfo, bound time.Duration) []string {
	switch {
	case h.NTPError != "":
		return []string{"there: " + h.NTPError}
	case h.NTPMeasured != "":
		off := time.Duration(h.NTPOffsetMS * float64(time.Millisecond))
		if absDur(off) > bound {
			return []string{"there: " + clockText(off, h.NTPServer, bound)}
		}
	}
	return nil
}

// clockText says how far a clock is off its NTP server (off is the
// server's time minus the clock's).
func clockText(off time.Duration, server string, bound time.Duration) string {
	dir := "behind"
	if off < 0 {
		dir = "ahead of"
	}
	return fmt.Sprintf("clock %s %s NTP server %s (the cluster allows %s)", roundDur(absDur(off)), dir, server, bound)
}
