package appliance

import (
	"context"
	"net/http"
	"strings"

	"postern/ldapstore"
	"postern/smtp/secure"
)

// Secure-mail policy, inherited global → domain → user (`postern policy
// set|show`): posternEncrypt, posternSign and posternSecureMethod on
// cn=secure,ou=config, a posternDomain entry or a user's entry;
// posternSubjectTrigger and posternNoKeyAction on the global entry only.

// PolicySet is `postern policy set`: the level (neither Domain nor User:
// global) and the settings to change ("" leaves one as it is, "inherit"
// removes it from the level).
type PolicySet struct {
	Domain  string `json:"domain,omitempty"`
	User    string `json:"user,omitempty"`
	Encrypt string `json:"encrypt,omitempty"`
	Sign    string `json:"sign,omitempty"`
	Method  string `json:"method,omitempty"`
	Trigger string `json:"trigger,omitempty"` // global: a subject prefix, or "none"
	NoKey   string `json:"no_key,omitempty"`  // global: reject or bounce
}

// PolicyReport is `postern policy show`: the effective policy of a level
// and where each value comes from.
type PolicyReport struct {
	Level     string         `json:"level"`
	Effective secure.Policy  `json:"effective"`
	Sources   secure.Sources `json:"sources"`
}

var policyAttrs = map[string]string{
	"encrypt": "posternEncrypt", "sign": "posternSign", "method": "posternSecureMethod",
	"trigger": "posternSubjectTrigger", "no_key": "posternNoKeyAction",
}

func layerOf(e *ldapstore.Entry) secure.Layer {
	if e == nil {
		return secure.Layer{}
	}
	l := secure.Layer{Encrypt: secure.Encrypt(e.First("posternEncrypt")), Sign: secure.Sign(e.First("posternSign")),
		Method: secure.Method(e.First("posternSecureMethod")), NoKey: secure.NoKey(e.First("posternNoKeyAction"))}
	if t := e.First("posternSubjectTrigger"); t != "" {
		if strings.EqualFold(t, "none") {
			t = ""
		}
		l.Trigger = &t
	}
	return l
}

// effectivePolicy resolves the policy of an address (or a domain, or the
// global level for "").
func (a *Appliance) effectivePolicy(ctx context.Context, name string) (secure.Policy, secure.Sources, error) {
	layers := []secure.Named{}
	g, err := a.store.Get(ctx, a.secureDN())
	switch {
	case err == nil:
		layers = append(layers, secure.Named{Name: "global", Layer: layerOf(g)})
	case ldapstore.CodeOf(err) != ldapstore.NoSuchObject:
		return secure.Policy{}, secure.Sources{}, err
	}
	if name != "" {
		n, isDomain, err := normalizeOwner(name)
		if err != nil {
			return secure.Policy{}, secure.Sources{}, err
		}
		dom := n
		if !isDomain {
			dom = n[strings.LastIndexByte(n, '@')+1:]
		}
		if d, err := a.store.Get(ctx, a.domainDN(dom)); err == nil {
			dl := layerOf(d)
			dl.Trigger, dl.NoKey = nil, ""
			layers = append(layers, secure.Named{Name: "domain " + dom, Layer: dl})
		} else if ldapstore.CodeOf(err) != ldapstore.NoSuchObject {
			return secure.Policy{}, secure.Sources{}, err
		}
		if !isDomain {
			o, err := a.findOwner(ctx, n)
			if err != nil {
				return secure.Policy{}, secure.Sources{}, err
			}
			for i := len(o.entries) - 1; i >= 0; i-- { // the user entry wins over ou=keys
				ul := layerOf(o.entries[i])
				ul.Trigger, ul.NoKey = nil, ""
				layers = append(layers, secure.Named{Name: "user " + n, Layer: ul})
			}
		}
	}
	p, s := secure.Resolve(layers...)
	return p, s, nil
}

// SetPolicy changes the policy of one level.
func (a *Appliance) SetPolicy(ctx context.Context, req PolicySet) (PolicyReport, error) {
	if req.Domain != "" && req.User != "" {
		return PolicyReport{}, badRequest("give --domain or --user, not both")
	}
	vals := map[string]string{"encrypt": req.Encrypt, "sign": req.Sign, "method": req.Method, "trigger": req.Trigger, "no_key": req.NoKey}
	check := secure.Layer{}
	for k, v := range vals {
		if v == "" || v == "inherit" {
			continue
		}
		switch k {
		case "encrypt":
			check.Encrypt = secure.Encrypt(v)
		case "sign":
			check.Sign = secure.Sign(v)
		case "method":
			check.Method = secure.Method(v)
		case "no_key":
			check.NoKey = secure.NoKey(v)
		case "trigger":
			check.Trigger = &v
		}
	}
	if err := check.Check(); err != nil {
		return PolicyReport{}, badRequest("%s", strings.TrimPrefix(err.Error(), "secure: "))
	}
	if (req.Domain != "" || req.User != "") && (req.Trigger != "" || req.NoKey != "") {
		return PolicyReport{}, badRequest("--trigger and --no-key are global settings")
	}
	by := a.cfg.AdminDN()
	var target, level string
	switch {
	case req.Domain != "":
		d, err := normalizeDomain(req.Domain)
		if err != nil {
			return PolicyReport{}, err
		}
		if _, err := a.store.Get(ctx, a.domainDN(d)); ldapstore.CodeOf(err) == ldapstore.NoSuchObject {
			return PolicyReport{}, notFound("no managed domain %q (postern domain add %s ...)", d, d)
		} else if err != nil {
			return PolicyReport{}, err
		}
		o, err := a.findOwner(ctx, d)
		if err != nil {
			return PolicyReport{}, err
		}
		if target, err = a.home(ctx, o); err != nil {
			return PolicyReport{}, err
		}
		level = d
	case req.User != "":
		n, isDomain, err := normalizeOwner(req.User)
		if err != nil || isDomain {
			return PolicyReport{}, badRequest("--user wants an address, got %q", req.User)
		}
		o, err := a.findOwner(ctx, n)
		if err != nil {
			return PolicyReport{}, err
		}
		if !o.managed {
			return PolicyReport{}, badRequest("%s is not in a managed domain: policy is for internal senders", n)
		}
		if target, err = a.home(ctx, o); err != nil {
			return PolicyReport{}, err
		}
		level = n
	default:
		target = a.secureDN()
		if _, err := a.store.Get(ctx, target); ldapstore.CodeOf(err) == ldapstore.NoSuchObject {
			e := &ldapstore.Entry{DN: target}
			e.Set("objectClass", "top", "posternKeyEntry", "posternSecure")
			e.Set("cn", "secure")
			e.Set("description", "secure mail: the global policy")
			if err := a.store.Add(ctx, e, by); err != nil && ldapstore.CodeOf(err) != ldapstore.EntryAlreadyExists {
				return PolicyReport{}, err
			}
		} else if err != nil {
			return PolicyReport{}, err
		}
	}
	var mods []ldapstore.Modification
	for k, v := range vals {
		switch v {
		case "":
		case "inherit":
			mods = append(mods, ldapstore.Modification{Op: ldapstore.ModReplace, Attr: ldapstore.Attribute{Type: policyAttrs[k]}})
		default:
			mods = append(mods, ldapstore.Modification{Op: ldapstore.ModReplace, Attr: ldapstore.Attribute{Type: policyAttrs[k], Vals: []string{v}}})
		}
	}
	if len(mods) > 0 {
		if err := a.store.Modify(ctx, target, mods, by); err != nil {
			return PolicyReport{}, err
		}
	}
	return a.ShowPolicy(ctx, level)
}

// ShowPolicy returns the effective policy of a level ("" global).
func (a *Appliance) ShowPolicy(ctx context.Context, level string) (PolicyReport, error) {
	p, s, err := a.effectivePolicy(ctx, level)
	if err != nil {
		return PolicyReport{}, err
	}
	if level == "" {
		level = "global"
	}
	return PolicyReport{Level: level, Effective: p, Sources: s}, nil
}

func (a *Appliance) securePolicyRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/secure/policy", a.jsonHandler(func(r *http.Request) (any, error) {
		q := r.URL.Query()
		return a.ShowPolicy(r.Context(), q.Get("domain")+q.Get("user"))
	}))
	mux.HandleFunc("POST /v1/secure/policy", a.jsonHandler(func(r *http.Request) (any, error) {
		var req PolicySet
		if err := decodeJSON(r, &req); err != nil {
			return nil, err
		}
		return a.SetPolicy(r.Context(), req)
	}))
}
