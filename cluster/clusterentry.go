package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"

	"postern/ldapstore"
	"postern/ldapstore/filter"
)

// clusterEntry is the cluster-wide configuration: the posternCluster entry
// cn=cluster,ou=cluster,<suffix> and its children.
//
// Replication resolves concurrent changes to one entry by last writer wins
// (the greater entryCSN keeps the whole entry). That is right for the
// single-valued settings (cluster UUID, protection on or off: the last
// admin decision wins), but the sets are edited independently on
// different members — a `cluster prepare` on one while `cluster protect
// --add` runs on another — and a set kept in one entry would lose one of
// the two edits. So each value of a set is an entry of its own below
// cn=cluster (cn=<set>-<hash of the value>): adding and removing values
// on different members touch different entries and all of them survive.
type clusterEntry struct {
	UUID       string
	Keys       []string // cluster public keys (authorized_keys form); one per outstanding clusterid.txt
	Protect    bool
	AllowedIPs []string // besides the members' own
	Revoked    []string // fingerprints of removed members' device keys

	read map[string][]string // the sets as read, so a write changes only what the caller changed
}

// The sets: the RDN prefix of their entries and the attribute holding the value.
var clusterSets = []struct{ prefix, attr string }{
	{"key", "posternClusterPublicKey"},
	{"ip", "posternAllowedIP"},
	{"revoked", "posternRevokedKey"},
}

func (c *clusterEntry) set(attr string) *[]string {
	switch attr {
	case "posternClusterPublicKey":
		return &c.Keys
	case "posternAllowedIP":
		return &c.AllowedIPs
	default:
		return &c.Revoked
	}
}

// valueDN names the entry holding one value of a set.
func valueDN(suffix, prefix, value string) string {
	h := sha256.Sum256([]byte(value))
	return "cn=" + prefix + "-" + hex.EncodeToString(h[:12]) + "," + clusterDN(suffix)
}

func readCluster(ctx context.Context, st *ldapstore.Store) (*clusterEntry, error) {
	e, err := st.Get(ctx, clusterDN(st.Suffix()))
	if err != nil {
		return nil, err
	}
	c := &clusterEntry{
		UUID:    e.First("posternClusterUUID"),
		Protect: !strings.EqualFold(e.First("posternProtect"), "FALSE"),
		read:    map[string][]string{},
	}
	// Replication keeps the loser of a concurrent add of the same value as
	// a conflict entry: visible to admins, not part of the configuration.
	f, err := filter.Parse("(&(objectClass=posternCluster)(!(objectClass=posternConflict)))")
	if err != nil {
		return nil, err
	}
	err = st.Search(ctx, &ldapstore.SearchRequest{BaseDN: clusterDN(st.Suffix()), Scope: ldapstore.ScopeOne, Filter: f}, func(v *ldapstore.Entry) error {
		for _, s := range clusterSets {
			for _, val := range v.Get(s.attr) {
				if p := c.set(s.attr); !slices.Contains(*p, val) {
					*p = append(*p, val)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, s := range clusterSets {
		c.read[s.attr] = slices.Clone(*c.set(s.attr))
	}
	return c, nil
}

// writeCluster stores the single-valued settings in the cluster entry and
// applies the changes the caller made to the sets since readCluster (all of
// them for a new clusterEntry).
func writeCluster(ctx context.Context, st *ldapstore.Store, c *clusterEntry, by string) error {
	if err := ensureOU(ctx, st, by); err != nil {
		return err
	}
	protect := "TRUE"
	if !c.Protect {
		protect = "FALSE"
	}
	dn := clusterDN(st.Suffix())
	_, err := st.Get(ctx, dn)
	switch {
	case ldapstore.CodeOf(err) == ldapstore.NoSuchObject:
		e := &ldapstore.Entry{DN: dn}
		e.Set("objectClass", "top", "posternCluster")
		e.Set("cn", "cluster")
		e.Set("posternClusterUUID", c.UUID)
		e.Set("posternProtect", protect)
		err = st.Add(ctx, e, by)
	case err == nil:
		err = st.Modify(ctx, dn, []ldapstore.Modification{
			{Op: ldapstore.ModReplace, Attr: ldapstore.Attribute{Type: "posternClusterUUID", Vals: []string{c.UUID}}},
			{Op: ldapstore.ModReplace, Attr: ldapstore.Attribute{Type: "posternProtect", Vals: []string{protect}}},
		}, by)
	}
	if err != nil {
		return err
	}
	for _, s := range clusterSets {
		now, before := *c.set(s.attr), c.read[s.attr]
		for _, v := range now {
			if slices.Contains(before, v) {
				continue
			}
			e := &ldapstore.Entry{DN: valueDN(st.Suffix(), s.prefix, v)}
			e.Set("objectClass", "top", "posternCluster")
			e.Set("cn", strings.TrimSuffix(strings.TrimPrefix(e.DN, "cn="), ","+dn))
			e.Set(s.attr, v)
			if err := st.Add(ctx, e, by); err != nil && ldapstore.CodeOf(err) != ldapstore.EntryAlreadyExists {
				return err
			}
		}
		for _, v := range before {
			if slices.Contains(now, v) {
				continue
			}
			if err := st.Delete(ctx, valueDN(st.Suffix(), s.prefix, v), by); err != nil && ldapstore.CodeOf(err) != ldapstore.NoSuchObject {
				return err
			}
		}
	}
	c.read = map[string][]string{}
	for _, s := range clusterSets {
		c.read[s.attr] = slices.Clone(*c.set(s.attr))
	}
	return nil
}
