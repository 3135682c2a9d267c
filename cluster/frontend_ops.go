package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/ssh"
)

// Attach, backend add/remove, detach and status of a frontend member.

// AttachRequest is `postern cluster frontend attach`: the same inputs as a
// join, and the problems the caller found on this appliance itself (its
// own directory that an attach would delete), listed with the others.
type AttachRequest struct {
	JoinRequest
	Local []Problem `json:"-"`
}

// AttachFrontend makes this standalone appliance a frontend of the
// backend req.Member: the pre-join checks (every problem at once), the
// registration of its record (role frontend, no Cluster No.) under the
// cluster key, a first connection with its own device key, and
// frontend.json. The caller (appliance) then closes and removes the local
// directory and runs as a frontend. progress receives what the CLI prints.
func (a *Agent) AttachFrontend(ctx context.Context, req AttachRequest, progress func(string)) error {
	a.joinMu.Lock()
	defer a.joinMu.Unlock()
	progress("checking")
	rep, c := a.check(ctx, req.JoinRequest)
	for _, s := range rep.OK {
		progress("ok: " + s)
	}
	for i := range rep.Problems {
		// the join's advice, in the attach's words
		rep.Problems[i].Fix = strings.ReplaceAll(rep.Problems[i].Fix, "--member", "--backend")
		rep.Problems[i].Fix = strings.ReplaceAll(rep.Problems[i].Fix, "a member's cluster SSH", "a backend's cluster SSH")
	}
	rep.Problems = append(rep.Problems, req.Local...)
	if len(rep.Problems) > 0 {
		if c != nil && c.client != nil {
			c.client.Close()
		}
		return &CheckError{Problems: rep.Problems, Op: "attach"}
	}
	defer c.client.Close()
	loc := a.cfg.Local()
	me := MemberInfo{DeviceID: a.cfg.DeviceID, UUID: a.cfg.UUID, Role: roleFrontend, Hostname: loc.Hostname, Addr: c.self.String(),
		Comment: loc.Comment, Location: loc.Location, Version: a.cfg.Version, NTPServer: loc.NTPServer,
		DeviceKey: string(trimNL(ssh.MarshalAuthorizedKey(a.key().PublicKey())))}
	ans, err := callClient(ctx, c.client, &Message{Type: msgAttach, Member: &me})
	if err != nil {
		return fmt.Errorf("cluster: attach: %w", err)
	}
	base := ans.Peer
	if base == nil || base.ClusterNo == 0 {
		return errors.New("cluster: the member to attach to is not a backend")
	}
	progress(fmt.Sprintf("registered at %s (%s, Cluster No. %d) as a frontend", c.member, base.DeviceID, base.ClusterNo))
	// the device key works: a tunnel to the backend's LDAP, read-only
	d := net.Dialer{Timeout: handshakeTimeout, LocalAddr: &net.TCPAddr{IP: c.self.Addr().AsSlice()}}
	mc, err := dialSSH(ctx, d, c.member, c.id.HostKey, a.key())
	if err != nil {
		return fmt.Errorf("cluster: connect with this device's key: %w", err)
	}
	mc.Close()
	st := frontendState{ClusterUUID: c.id.ClusterUUID, Addr: c.self.String(), Attached: time.Now().UTC(),
		Backends: []backendInfo{{DeviceID: base.DeviceID, ClusterNo: base.ClusterNo, Addr: c.member,
			HostKey: string(trimNL(ssh.MarshalAuthorizedKey(c.id.HostKey)))}}}
	if err := saveFrontendState(a.cfg.DataDir, st); err != nil {
		return err
	}
	progress(fmt.Sprintf("this appliance is now a frontend of %s (F(%d)); its local directory is removed, its machine-local data stays", base.DeviceID, base.ClusterNo))
	a.log.Info("cluster: attached as a frontend", slog.String("backend", base.DeviceID))
	return nil
}

// BackendStatus is a row of a frontend's Remote LDAP server table.
type BackendStatus struct {
	DeviceID  string    `json:"device_id"`
	ClusterNo int       `json:"cluster_no"`
	IP        string    `json:"ip"`
	Port      string    `json:"port"`
	Status    string    `json:"status"` // "OK (N entries in remote database)" or the error
	OK        bool      `json:"ok"`
	InUse     bool      `json:"in_use,omitempty"`
	Measured  time.Time `json:"measured"`
}

// FrontendStatus is `postern cluster status` on a frontend.
type FrontendStatus struct {
	Frontend    bool            `json:"frontend"`
	DeviceID    string          `json:"device_id"`
	UUID        string          `json:"uuid"`
	ClusterUUID string          `json:"cluster_uuid"`
	Addr        string          `json:"addr"`
	Number      string          `json:"number"` // F(1,2)
	Backends    []BackendStatus `json:"backends"`
	InjectTo    []string        `json:"inject_to,omitempty"`
	// ClusterBackends are every backend of the cluster as the backends'
	// hellos list them (the choices of Allow mail injection and Add
	// additional backend), by Cluster No.
	ClusterBackends []MemberBrief `json:"cluster_backends,omitempty"`
	Measured        time.Time     `json:"measured"`
}

// Status measures every backend now (its entry count through the read-only
// session), bounded by a few seconds.
func (f *Frontend) Status(ctx context.Context, count func(ctx context.Context, c net.Conn) (int, error)) *FrontendStatus {
	st := f.state()
	out := &FrontendStatus{Frontend: true, DeviceID: f.cfg.DeviceID, UUID: f.cfg.UUID, ClusterUUID: st.ClusterUUID, Addr: st.Addr,
		InjectTo: st.InjectTo, Measured: time.Now().UTC()}
	inUse, _ := f.InUse()
	var nos []string
	out.Backends = make([]BackendStatus, len(st.Backends))
	var wg sync.WaitGroup
	for i, b := range st.Backends {
		nos = append(nos, fmt.Sprint(b.ClusterNo))
		ip, port, _ := net.SplitHostPort(b.Addr)
		out.Backends[i] = BackendStatus{DeviceID: b.DeviceID, ClusterNo: b.ClusterNo, IP: ip, Port: port, InUse: b.DeviceID == inUse, Measured: time.Now().UTC()}
		f.mu.Lock()
		l := f.backends[b.DeviceID]
		f.mu.Unlock()
		row := &out.Backends[i]
		switch {
		case l == nil:
			row.Status = "error: not started"
		case !l.healthy():
			// known down: say since when, without waiting for it
			l.mu.Lock()
			msg, at := l.lastErr, l.errAt
			l.mu.Unlock()
			if msg == "" {
				msg = "connecting"
			}
			row.Status = "error: " + msg
			if !at.IsZero() {
				row.Status += " (since " + at.UTC().Format("2006-01-02 15:04:05Z") + ")"
			}
		default:
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				defer cancel()
				c, err := l.dial(cctx, func(h *PeerInfo) string { return h.LDAP })
				if err == nil {
					var n int
					n, err = count(cctx, c)
					c.Close()
					if err == nil {
						row.OK, row.Status = true, fmt.Sprintf("OK (%d entries in remote database)", n)
					}
				}
				if err != nil {
					row.Status = "error: " + err.Error()
				}
			}()
		}
	}
	wg.Wait()
	out.Number = "F(" + strings.Join(nos, ",") + ")"
	for _, m := range f.backendBriefs() {
		out.ClusterBackends = append(out.ClusterBackends, MemberBrief{DeviceID: m.DeviceID, Hostname: m.Hostname, Addr: m.Addr, ClusterNo: m.ClusterNo})
	}
	slices.SortFunc(out.ClusterBackends, func(a, b MemberBrief) int { return a.ClusterNo - b.ClusterNo })
	return out
}

// BackendAddr is one backend of a frontend as it is known without asking:
// its cluster address and, once it answered, its LDAP listener.
type BackendAddr struct {
	DeviceID string
	Cluster  string // IP:PORT of its cluster (SSH) listener
	LDAP     string // IP:PORT of its LDAP listener, from its last hello ("" before one)
	InUse    bool
}

// Backends lists this frontend's backends in order, from what it already
// knows (no connection is made: a refusal message can name them).
func (f *Frontend) Backends() []BackendAddr {
	inUse, _ := f.InUse()
	st := f.state()
	out := make([]BackendAddr, 0, len(st.Backends))
	for _, b := range st.Backends {
		ba := BackendAddr{DeviceID: b.DeviceID, Cluster: b.Addr, InUse: b.DeviceID == inUse}
		f.mu.Lock()
		l := f.backends[b.DeviceID]
		f.mu.Unlock()
		if l != nil {
			l.mu.Lock()
			if l.hello != nil {
				ba.LDAP = l.hello.LDAP
			}
			l.mu.Unlock()
		}
		out = append(out, ba)
	}
	return out
}

// AddBackend adds a backend of the cluster (IP:PORT, as a member record
// names it) to this frontend's list ("Add additional backend"), after the
// same checks as an attach: reachable, its host key the record's, the same
// firmware and NTP server.
func (f *Frontend) AddBackend(ctx context.Context, addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return fmt.Errorf("cluster: %q: want the backend's cluster IP:PORT", addr)
	}
	st := f.state()
	for _, b := range st.Backends {
		if b.Addr == ap.String() {
			return fmt.Errorf("cluster: %s is already a backend of this frontend", addr)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	l, _, err := f.current(cctx)
	if err != nil {
		return err
	}
	ans, err := l.call(cctx, &Message{Type: msgHello})
	if err != nil {
		return err
	}
	var found *MemberBrief
	for i, m := range ans.Peer.Members {
		if m.Addr == ap.String() && m.Role != roleFrontend {
			found = &ans.Peer.Members[i]
		}
	}
	if found == nil {
		return fmt.Errorf("cluster: no backend of the cluster has the address %s", addr)
	}
	pk, err := parseKey(found.DeviceKey)
	if err != nil {
		return fmt.Errorf("cluster: the backend's key: %v", err)
	}
	c, err := dialSSH(cctx, f.dialer(), ap.String(), pk, f.key)
	if err != nil {
		return fmt.Errorf("cluster: backend %s: %w", addr, err)
	}
	defer c.Close()
	h, err := callClient(cctx, c, &Message{Type: msgHello})
	if err != nil {
		return fmt.Errorf("cluster: backend %s: %w", addr, err)
	}
	var problems []string
	if h.Peer.Version != f.cfg.Version {
		problems = append(problems, fmt.Sprintf("firmware versions differ: %s here, %s there", f.cfg.Version, h.Peer.Version))
	}
	if loc := f.cfg.Local(); h.Peer.NTPServer != loc.NTPServer {
		problems = append(problems, fmt.Sprintf("NTP servers differ: %q here, %q there", loc.NTPServer, h.Peer.NTPServer))
	}
	if len(problems) > 0 {
		return fmt.Errorf("cluster: backend %s refused: %s", addr, strings.Join(problems, "; "))
	}
	st.Backends = append(st.Backends, backendInfo{DeviceID: found.DeviceID, ClusterNo: found.ClusterNo, Addr: ap.String(), HostKey: found.DeviceKey})
	if err := f.setState(st); err != nil {
		return err
	}
	f.mu.Lock()
	f.startBackend(st.Backends[len(st.Backends)-1])
	f.mu.Unlock()
	f.log.Info("cluster: backend added", slog.String("backend", found.DeviceID), slog.String("addr", addr))
	go f.beat() // the record names it now
	return nil
}

// RemoveBackend takes a backend off this frontend's list (not the last).
func (f *Frontend) RemoveBackend(ctx context.Context, addr string) error {
	st := f.state()
	i := slices.IndexFunc(st.Backends, func(b backendInfo) bool { return b.Addr == addr || b.DeviceID == addr })
	if i < 0 {
		return fmt.Errorf("cluster: %s is not a backend of this frontend", addr)
	}
	if len(st.Backends) == 1 {
		return fmt.Errorf("cluster: %s is this frontend's only backend: add another first, or detach", addr)
	}
	gone := st.Backends[i]
	st.Backends = slices.Delete(st.Backends, i, i+1)
	if err := f.setState(st); err != nil {
		return err
	}
	f.mu.Lock()
	l := f.backends[gone.DeviceID]
	delete(f.backends, gone.DeviceID)
	f.mu.Unlock()
	if l != nil {
		l.stop()
	}
	f.choose()
	f.beat()
	f.log.Info("cluster: backend removed", slog.String("backend", gone.DeviceID))
	return nil
}

// SetInject sets the backends this frontend may inject mail on (the
// backends' ACL then allows it); the record carries it with the next
// heartbeat.
func (f *Frontend) SetInject(ids []string) ([]string, error) {
	briefs := f.backendBriefs()
	to := []string{}
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		i := slices.IndexFunc(briefs, func(m MemberBrief) bool { return strings.EqualFold(m.DeviceID, id) })
		if i < 0 {
			return nil, fmt.Errorf("cluster: no backend %s in the cluster (as this frontend's backends list it)", id)
		}
		if !slices.Contains(to, briefs[i].DeviceID) {
			to = append(to, briefs[i].DeviceID)
		}
	}
	st := f.state()
	st.InjectTo = to
	if err := f.setState(st); err != nil {
		return nil, err
	}
	f.beat()
	return to, nil
}

// Detach deletes this frontend's record on a backend, which revokes its
// key, and removes frontend.json: the appliance is standalone again (the
// caller makes it a fresh default directory). It fails, changing nothing,
// when no backend can be told.
func (f *Frontend) Detach(ctx context.Context) (string, error) {
	st := f.state()
	var errs []string
	told := ""
	for _, b := range st.Backends {
		f.mu.Lock()
		l := f.backends[b.DeviceID]
		f.mu.Unlock()
		if l == nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := l.call(cctx, &Message{Type: msgDetach})
		cancel()
		if err == nil {
			told = b.DeviceID
			break
		}
		errs = append(errs, b.DeviceID+": "+err.Error())
	}
	if told == "" {
		return "", fmt.Errorf("cluster: no backend could be told (%s); nothing changed", strings.Join(errs, "; "))
	}
	if err := os.Remove(filepath.Join(f.cfg.DataDir, FrontendStateFile)); err != nil {
		return told, err
	}
	f.log.Warn("cluster: detached from the cluster; standalone now", slog.String("told", told))
	return told, nil
}

// frontendMetrics is a frontend's Prometheus collector.
type frontendMetrics struct {
	f        *Frontend
	reg      *prometheus.Registry
	up       *prometheus.Desc
	switches prometheus.Counter
}

func newFrontendMetrics(f *Frontend, reg *prometheus.Registry) *frontendMetrics {
	m := &frontendMetrics{f: f, reg: reg,
		up: prometheus.NewDesc("postern_frontend_backend_up", "1 while the frontend's backend answers, by Device ID; in_use marks the one lookups go to.", []string{"device_id", "in_use"}, nil),
		switches: prometheus.NewCounter(prometheus.CounterOpts{Name: "postern_frontend_backend_switches_total",
			Help: "Times the frontend moved its lookups to another backend."}),
	}
	if reg != nil {
		reg.MustRegister(m)
		m.switches = register(reg, m.switches)
	}
	return m
}

func (m *frontendMetrics) unregister() {
	if m.reg != nil {
		m.reg.Unregister(m)
		m.reg.Unregister(m.switches)
	}
}

func (m *frontendMetrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.up }

func (m *frontendMetrics) Collect(ch chan<- prometheus.Metric) {
	inUse, _ := m.f.InUse()
	m.f.mu.Lock()
	defer m.f.mu.Unlock()
	for id, l := range m.f.backends {
		v := 0.0
		if l.healthy() {
			v = 1
		}
		use := "false"
		if id == inUse {
			use = "true"
		}
		ch <- prometheus.MustNewConstMetric(m.up, prometheus.GaugeValue, v, id, use)
	}
}

// register registers c or takes the collector already registered.
func register[C prometheus.Collector](reg *prometheus.Registry, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old
			}
		}
	}
	return c
}
