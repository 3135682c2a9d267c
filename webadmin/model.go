package webadmin

import (
	"net"
	"strings"
	"time"
)

// What the pages read from the control API: webadmin's own small structs,
// decoded from the JSON the CLI reads too (it imports none of the
// appliance's types).

type clusterStatus struct {
	Member      bool              `json:"member"`
	DeviceID    string            `json:"device_id"`
	UUID        string            `json:"uuid"`
	ClusterUUID string            `json:"cluster_uuid"`
	ClusterNo   int               `json:"cluster_no"`
	Addr        string            `json:"addr"`
	Members     []memberRow       `json:"members"`
	Setup       []setupRow        `json:"setup"`
	Replication []replRow         `json:"replication"`
	LastChange  string            `json:"last_change"`
	Protection  *protection       `json:"protection"`
	InjectTo    []string          `json:"inject_to"`
	NTP         ntpStatus         `json:"ntp"`
	Frontend    *frontendStatus   `json:"frontend"` // set on a cluster frontend only
	Measured    time.Time         `json:"measured"`
	Roles       map[string]string `json:"-"` // device ID → role, from Setup
}

// frontendStatus is a frontend's side of the cluster: its backends (the
// Remote LDAP server table), the cluster's backends and where it may
// inject mail.
type frontendStatus struct {
	DeviceID        string        `json:"device_id"`
	UUID            string        `json:"uuid"`
	ClusterUUID     string        `json:"cluster_uuid"`
	Addr            string        `json:"addr"`
	Number          string        `json:"number"` // F(1,2)
	Backends        []backendRow  `json:"backends"`
	ClusterBackends []memberBrief `json:"cluster_backends"`
	InjectTo        []string      `json:"inject_to"`
	Measured        time.Time     `json:"measured"`
}

// backendRow is a row of the Remote LDAP server table.
type backendRow struct {
	DeviceID  string    `json:"device_id"`
	ClusterNo int       `json:"cluster_no"`
	IP        string    `json:"ip"`
	Port      string    `json:"port"`
	Status    string    `json:"status"` // "OK (N entries in remote database)" or the error
	OK        bool      `json:"ok"`
	InUse     bool      `json:"in_use"`
	Measured  time.Time `json:"measured"`
}

// Addr is the backend's cluster address, IP:PORT.
func (b backendRow) Addr() string { return net.JoinHostPort(b.IP, b.Port) }

// memberBrief is a backend of the cluster as a frontend knows it.
type memberBrief struct {
	DeviceID  string `json:"device_id"`
	Hostname  string `json:"hostname"`
	Addr      string `json:"addr"`
	ClusterNo int    `json:"cluster_no"`
}

type memberRow struct {
	DeviceID   string    `json:"device_id"`
	IP         string    `json:"ip"`
	Port       string    `json:"port"`
	Status     string    `json:"status"`
	OK         bool      `json:"ok"`
	State      string    `json:"state"`
	Measured   time.Time `json:"measured"`
	Self       bool      `json:"self"`
	Comment    string    `json:"comment"`
	Location   string    `json:"location"`
	Version    string    `json:"version"`
	LastUpdate time.Time `json:"last_update"`
}

type setupRow struct {
	DeviceID   string    `json:"device_id"`
	UUID       string    `json:"uuid"`
	ClusterNo  string    `json:"cluster_no"`
	Hostname   string    `json:"hostname"`
	IP         string    `json:"ip"`
	Port       string    `json:"port"`
	FrontendOf []string  `json:"frontend_of"`
	BackendOf  []string  `json:"backend_of"`
	Comment    string    `json:"comment"`
	Location   string    `json:"location"`
	Version    string    `json:"version"`
	NTPServer  string    `json:"ntp_server"`
	Parity     string    `json:"parity"`
	LastUpdate time.Time `json:"last_update"`
	Self       bool      `json:"self"`
}

// Frontend reports whether the row is a frontend member ("F(…)").
func (r setupRow) Frontend() bool { return len(r.ClusterNo) > 0 && r.ClusterNo[0] == 'F' }

type replRow struct {
	DeviceID   string    `json:"device_id"`
	UUID       string    `json:"uuid"`
	ClusterNo  int       `json:"cluster_no"`
	ContextCSN string    `json:"context_csn"`
	Time       time.Time `json:"time"`
	Self       bool      `json:"self"`
}

type protection struct {
	On         bool     `json:"on"`
	AllowedIPs []string `json:"allowed_ips"`
	MemberIPs  []string `json:"member_ips"`
}

type ntpStatus struct {
	Server        string    `json:"server"`
	OffsetMS      float64   `json:"offset_ms"`
	Error         string    `json:"error"`
	Measured      time.Time `json:"measured"`
	MaxOffset     string    `json:"max_offset"`
	WritesRefused bool      `json:"writes_refused"`
}

type statusReport struct {
	DeviceID   string            `json:"device_id"`
	UUID       string            `json:"uuid"`
	Hostname   string            `json:"hostname"`
	Version    string            `json:"version"`
	Build      string            `json:"build"`
	DataDir    string            `json:"data_dir"`
	Uptime     string            `json:"uptime"`
	Listeners  map[string]string `json:"listeners"`
	Entries    int               `json:"entries"`
	ContextCSN []string          `json:"context_csn"`
	Role       string            `json:"role"` // "frontend (no local directory)" on a frontend
}

// Frontend reports whether the appliance runs as a cluster frontend.
func (r statusReport) Frontend() bool { return strings.HasPrefix(r.Role, "frontend") }

type systemSettings struct {
	Hostname  string `json:"hostname"`
	Comment   string `json:"comment"`
	Location  string `json:"location"`
	NTPServer string `json:"ntp_server"`
}

type domain struct {
	Name      string `json:"name"`
	DeliverTo string `json:"deliver_to"`
	TLS       string `json:"tls"`
}

type relaySettings struct {
	Networks  []string `json:"networks"`
	Smarthost string   `json:"smarthost"`
}

type queueEntry struct {
	ID         string           `json:"id"`
	Arrival    time.Time        `json:"arrival"`
	From       string           `json:"from"`
	Size       int64            `json:"size"`
	Recipients []queueRecipient `json:"recipients"`
	Header     string           `json:"header"`
}

type queueRecipient struct {
	Address     string    `json:"address"`
	Status      string    `json:"status"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
	Diagnostic  string    `json:"diagnostic"`
}

type importProgress struct {
	Entries int     `json:"entries"`
	Added   int     `json:"added"`
	Updated int     `json:"updated"`
	Applied int     `json:"applied"`
	Stale   int     `json:"stale"`
	Skipped int     `json:"skipped"`
	Rate    float64 `json:"rate"`
	Done    bool    `json:"done"`
	Error   string  `json:"error"`
}

type joinProgress struct {
	Line  string `json:"line"`
	Error string `json:"error"`
	Done  bool   `json:"done"`
}

type tlsInfo struct {
	Subject    string    `json:"subject"`
	Issuer     string    `json:"issuer"`
	DNSNames   []string  `json:"dns_names"`
	IPs        []string  `json:"ip_addresses"`
	NotBefore  time.Time `json:"not_before"`
	NotAfter   time.Time `json:"not_after"`
	SelfSigned bool      `json:"self_signed"`
	Chain      int       `json:"chain"`
	SHA256     string    `json:"sha256"`
}

type logLine struct {
	Time  time.Time `json:"time"`
	Level string    `json:"level"`
	Msg   string    `json:"msg"`
	Attrs string    `json:"attrs"`
}

type metricFamily struct {
	Name    string         `json:"name"`
	Help    string         `json:"help"`
	Type    string         `json:"type"`
	Samples []metricSample `json:"samples"`
}

type metricSample struct {
	Labels map[string]string `json:"labels"`
	Value  float64           `json:"value"`
}

type metricPoint struct {
	Time  time.Time `json:"time"`
	Value float64   `json:"value"`
}

type statsReport struct {
	Metrics []metricFamily           `json:"metrics"`
	History map[string][]metricPoint `json:"history"`
}
