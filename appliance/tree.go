package appliance

import (
	"context"
	"fmt"
	"strings"

	"postern/ldapstore"
)

// Organisational units the appliance keeps its data in (DESIGN: Data).
var baseOUs = []string{"people", "domains", "config", "cluster"}

// bootstrapTree creates the suffix entry and the base organisational units
// when they are missing (the first start), and nothing else.
func (a *Appliance) bootstrapTree(ctx context.Context) error {
	suffix := a.cfg.Suffix
	by := a.cfg.AdminDN()
	if _, err := a.store.Get(ctx, suffix); ldapstore.CodeOf(err) == ldapstore.NoSuchObject {
		first, _, _ := strings.Cut(suffix, ",")
		typ, val, _ := strings.Cut(first, "=")
		e := &ldapstore.Entry{DN: suffix}
		switch strings.ToLower(typ) {
		case "dc":
			e.Set("objectClass", "top", "dcObject", "organization")
			e.Set("dc", val)
			e.Set("o", "Postern")
		case "o":
			e.Set("objectClass", "top", "organization")
			e.Set("o", val)
		default:
			return fmt.Errorf("appliance: suffix %q must start with dc= or o=", suffix)
		}
		if err := a.store.Add(ctx, e, by); err != nil {
			return fmt.Errorf("appliance: create %s: %w", suffix, err)
		}
	} else if err != nil {
		return fmt.Errorf("appliance: read %s: %w", suffix, err)
	}
	for _, ou := range baseOUs {
		dn := "ou=" + ou + "," + suffix
		if _, err := a.store.Get(ctx, dn); ldapstore.CodeOf(err) != ldapstore.NoSuchObject {
			if err != nil {
				return fmt.Errorf("appliance: read %s: %w", dn, err)
			}
			continue
		}
		e := &ldapstore.Entry{DN: dn}
		e.Set("objectClass", "top", "organizationalUnit")
		e.Set("ou", ou)
		if err := a.store.Add(ctx, e, by); err != nil {
			return fmt.Errorf("appliance: create %s: %w", dn, err)
		}
	}
	return nil
}
