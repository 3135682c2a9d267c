package cluster

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
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
	Measured    time.Time   `json:"measured"`
}

// MemberRow is a row of the Cluster members table (backends).
type MemberRow struct {
	DeviceID   string    `json:"device_id"`
	IP         string    `json:"ip"`
	Port       string    `json:"port"`
	Status     string    `json:"status"`
	OK         bool      `json:"ok"`
	Self       bool      `json:"self,omitempty"`
	Comment    string    `json:"comment"`
	Location   string    `json:"location"`
	Version    string    `json:"version"`
	LastUpdate time.Time `json:"last_update"`
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

// Status measures the cluster now: every peer is asked for its entry
// count (bounded by a few seconds), nothing is a cached page.
func (a *Agent) Status(ctx context.Context) (*Status, error) {
	s := &Status{DeviceID: a.cfg.DeviceID, UUID: a.cfg.UUID, Measured: time.Now().UTC()}
	st := a.state()
	if st == nil {
		return s, nil
	}
	s.Member, s.ClusterUUID, s.ClusterNo, s.Addr = true, st.ClusterUUID, st.ClusterNo, st.Addr
	members, err := readMembers(ctx, a.cfg.Store)
	if err != nil {
		return nil, err
	}
	local, _ := a.cfg.Store.Count(ctx)
	hellos := make([]*PeerInfo, len(members))
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		p := a.peer(m.DeviceID)
		if p == nil || m.DeviceID == a.cfg.DeviceID {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			ans, err := p.call(cctx, &Message{Type: msgHello})
			if err == nil && ans.Peer == nil {
				err = fmt.Errorf("no answer")
			}
			if err != nil {
				errs[i] = err
				return
			}
			hellos[i] = ans.Peer
			p.setHello(ans.Peer)
		}()
	}
	wg.Wait()
	loc := a.cfg.Local()
	frontendOf := map[string][]string{}
	for _, m := range members {
		for _, b := range m.BackendOf {
			frontendOf[b] = append(frontendOf[b], m.DeviceID)
		}
	}
	for i, m := range members {
		ip, port, _ := net.SplitHostPort(m.Addr)
		self := m.DeviceID == a.cfg.DeviceID
		row := SetupRow{DeviceID: m.DeviceID, UUID: m.UUID, ClusterNo: strconv.Itoa(m.ClusterNo), Hostname: m.Hostname,
			IP: ip, Port: port, FrontendOf: frontendOf[m.DeviceID], BackendOf: m.BackendOf, Comment: m.Comment, Location: m.Location,
			Version: m.Version, NTPServer: m.NTPServer, LastUpdate: m.LastUpdate, Self: self, Parity: "OK"}
		version, ntpServer := m.Version, m.NTPServer
		if h := hellos[i]; h != nil {
			version, ntpServer = h.Version, h.NTPServer
		}
		var diffs []string
		if version != a.cfg.Version {
			diffs = append(diffs, fmt.Sprintf("firmware %s here, %s there", a.cfg.Version, version))
		}
		if ntpServer != loc.NTPServer {
			diffs = append(diffs, fmt.Sprintf("NTP server %q here, %q there", loc.NTPServer, ntpServer))
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
		switch {
		case self:
			mr.OK, mr.Status = true, fmt.Sprintf("this device (%d entries in local database)", local)
		case hellos[i] != nil:
			mr.Version = hellos[i].Version
			mr.Status, mr.OK = a.linkText(m.DeviceID, hellos[i], local)
		case errs[i] != nil:
			mr.Status = "error: " + errs[i].Error()
		default:
			mr.Status = "error: no link to this member yet"
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
	return s, nil
}

// linkText is a peer's status cell: the replication link's error or pause
// when there is one, else the entry counts measured now.
func (a *Agent) linkText(id string, h *PeerInfo, local int) (string, bool) {
	p := a.peer(id)
	if p != nil {
		if paused, why := p.paused(); paused {
			return why, false
		}
		if p.link != nil {
			if ls := p.link.Status(); !ls.OK && ls.Text != "" {
				return ls.Text, false
			}
		}
	}
	return fmt.Sprintf("OK (%d entries in remote database, %d entries in local database)", h.Entries, local), true
}
