package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/ssh"

	"postern/ldapstore"
	"postern/ldapstore/filter"
)

// Member records (objectClass posternMember) and the cluster entry
// (posternCluster) live in ou=cluster of the replicated tree:
//
//	cn=<Device ID>,ou=cluster,<suffix>   one per member, written by the member itself
//	cn=cluster,ou=cluster,<suffix>       cluster UUID and protection (clusterentry.go),
//	cn=<set>-<hash>,cn=cluster,...       one per cluster key, allowed IP, revoked key

// MemberInfo is one member record.
type MemberInfo struct {
	DeviceID    string    `json:"device_id"`
	UUID        string    `json:"uuid"`
	ClusterNo   int       `json:"cluster_no"`
	Role        string    `json:"role"` // "backend" ("frontend" once frontends exist)
	Hostname    string    `json:"hostname,omitempty"`
	Addr        string    `json:"addr,omitempty"` // cluster address ip:port
	Comment     string    `json:"comment,omitempty"`
	Location    string    `json:"location,omitempty"`
	Version     string    `json:"version,omitempty"`
	NTPServer   string    `json:"ntp_server,omitempty"`
	DeviceKey   string    `json:"device_key,omitempty"` // authorized_keys form
	Fingerprint string    `json:"fingerprint,omitempty"`
	LastUpdate  time.Time `json:"last_update"`
	InjectTo    []string  `json:"inject_to,omitempty"`  // device IDs this member may inject mail on
	BackendOf   []string  `json:"backend_of,omitempty"` // frontends using this backend
}

var deviceIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,63}$`)

func (m *MemberInfo) validate() error {
	if !deviceIDRe.MatchString(m.DeviceID) {
		return fmt.Errorf("device ID %q", m.DeviceID)
	}
	if _, err := uuid.Parse(m.UUID); err != nil {
		return fmt.Errorf("UUID %q", m.UUID)
	}
	if m.ClusterNo < 0 || m.ClusterNo > 4095 {
		return fmt.Errorf("cluster no. %d", m.ClusterNo)
	}
	if m.Addr != "" {
		if _, err := netip.ParseAddrPort(m.Addr); err != nil {
			return fmt.Errorf("address %q", m.Addr)
		}
	}
	if m.DeviceKey != "" {
		if _, err := parseKey(m.DeviceKey); err != nil {
			return fmt.Errorf("device key: %v", err)
		}
	}
	for _, id := range append(slices.Clone(m.InjectTo), m.BackendOf...) {
		if !deviceIDRe.MatchString(id) {
			return fmt.Errorf("device ID %q", id)
		}
	}
	return nil
}

func parseKey(s string) (ssh.PublicKey, error) {
	pk, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(s))
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, fmt.Errorf("data after the key")
	}
	return pk, nil
}

func memberDN(suffix, deviceID string) string { return "cn=" + deviceID + ",ou=cluster," + suffix }
func clusterDN(suffix string) string          { return "cn=cluster,ou=cluster," + suffix }

func memberFromEntry(e *ldapstore.Entry) MemberInfo {
	m := MemberInfo{
		DeviceID: e.First("posternDeviceID"), UUID: e.First("posternUUID"), Role: e.First("posternRole"),
		Hostname: e.First("posternHostname"), Addr: e.First("posternClusterAddress"),
		Comment: e.First("posternComment"), Location: e.First("posternLocation"),
		Version: e.First("posternFirmwareVersion"), NTPServer: e.First("posternNTPServer"),
		DeviceKey: e.First("posternDeviceKey"), Fingerprint: e.First("posternHostKeyFingerprint"),
		InjectTo: e.Get("posternInjectTo"), BackendOf: e.Get("posternBackendOf"),
	}
	m.ClusterNo, _ = strconv.Atoi(e.First("posternClusterNo"))
	m.LastUpdate, _ = time.Parse("20060102150405Z", e.First("posternLastUpdate"))
	return m
}

// attrs returns the record's attributes (empty ones as empty lists, so a
// replace removes them).
func (m *MemberInfo) attrs() []ldapstore.Attribute {
	one := func(v string) []string {
		if v == "" {
			return nil
		}
		return []string{v}
	}
	no := ""
	if m.ClusterNo > 0 {
		no = strconv.Itoa(m.ClusterNo)
	}
	return []ldapstore.Attribute{
		{Type: "posternDeviceID", Vals: one(m.DeviceID)},
		{Type: "posternUUID", Vals: one(m.UUID)},
		{Type: "posternClusterNo", Vals: one(no)},
		{Type: "posternRole", Vals: one(m.Role)},
		{Type: "posternHostname", Vals: one(m.Hostname)},
		{Type: "posternClusterAddress", Vals: one(m.Addr)},
		{Type: "posternComment", Vals: one(m.Comment)},
		{Type: "posternLocation", Vals: one(m.Location)},
		{Type: "posternFirmwareVersion", Vals: one(m.Version)},
		{Type: "posternNTPServer", Vals: one(m.NTPServer)},
		{Type: "posternDeviceKey", Vals: one(m.DeviceKey)},
		{Type: "posternHostKeyFingerprint", Vals: one(m.Fingerprint)},
		{Type: "posternLastUpdate", Vals: one(m.LastUpdate.UTC().Format("20060102150405Z"))},
		{Type: "posternInjectTo", Vals: m.InjectTo},
		{Type: "posternBackendOf", Vals: m.BackendOf},
	}
}

// readMembers returns every member record, by Cluster No.
func readMembers(ctx context.Context, st *ldapstore.Store) ([]MemberInfo, error) {
	f, _ := filter.Parse("(objectClass=posternMember)")
	var out []MemberInfo
	err := st.Search(ctx, &ldapstore.SearchRequest{BaseDN: "ou=cluster," + st.Suffix(), Scope: ldapstore.ScopeOne, Filter: f},
		func(e *ldapstore.Entry) error {
			out = append(out, memberFromEntry(e))
			return nil
		})
	if ldapstore.CodeOf(err) == ldapstore.NoSuchObject {
		err = nil
	}
	slices.SortFunc(out, func(a, b MemberInfo) int {
		if a.ClusterNo != b.ClusterNo {
			return a.ClusterNo - b.ClusterNo
		}
		return strings.Compare(a.DeviceID, b.DeviceID)
	})
	return out, err
}

// writeMember adds the record or replaces its attributes.
func writeMember(ctx context.Context, st *ldapstore.Store, m *MemberInfo, by string) error {
	dn := memberDN(st.Suffix(), m.DeviceID)
	if err := ensureOU(ctx, st, by); err != nil {
		return err
	}
	_, err := st.Get(ctx, dn)
	if ldapstore.CodeOf(err) == ldapstore.NoSuchObject {
		e := &ldapstore.Entry{DN: dn}
		e.Set("objectClass", "top", "posternMember")
		e.Set("cn", m.DeviceID)
		for _, a := range m.attrs() {
			e.Set(a.Type, a.Vals...)
		}
		return st.Add(ctx, e, by)
	}
	if err != nil {
		return err
	}
	var mods []ldapstore.Modification
	for _, a := range m.attrs() {
		mods = append(mods, ldapstore.Modification{Op: ldapstore.ModReplace, Attr: a})
	}
	return st.Modify(ctx, dn, mods, by)
}

func ensureOU(ctx context.Context, st *ldapstore.Store, by string) error {
	dn := "ou=cluster," + st.Suffix()
	if _, err := st.Get(ctx, dn); ldapstore.CodeOf(err) != ldapstore.NoSuchObject {
		return err
	}
	e := &ldapstore.Entry{DN: dn}
	e.Set("objectClass", "top", "organizationalUnit")
	e.Set("ou", "cluster")
	if err := st.Add(ctx, e, by); ldapstore.CodeOf(err) != ldapstore.EntryAlreadyExists {
		return err
	}
	return nil
}
