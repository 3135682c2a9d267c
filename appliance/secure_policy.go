package appliance

import (
	"context"
	"errors"
	"fmt"
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

// check reports what `postern policy set` refuses before it asks the
// appliance (a usage error there, 400 from the API): a value outside a
// setting's values, global settings on a level, --domain with --user.
func (req PolicySet) check() error {
	check := secure.Layer{}
	if v := req.Encrypt; v != "" && v != "inherit" {
		check.Encrypt = secure.Encrypt(v)
	}
	if v := req.Sign; v != "" && v != "inherit" {
		check.Sign = secure.Sign(v)
	}
	if v := req.Method; v != "" && v != "inherit" {
		check.Method = secure.Method(v)
	}
	if v := req.NoKey; v != "" && v != "inherit" {
		check.NoKey = secure.NoKey(v)
	}
	if v := req.Trigger; v != "" && v != "inherit" {
		check.Trigger = &v
	}
	if err := check.Check(); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "secure: "))
	}
	if (req.Domain != "" || req.User != "") && (req.Trigger != "" || req.NoKey != "") {
		return errors.New("--trigger and --no-key are global settings")
	}
	return checkPolicyLevel(req.Domain, req.User)
}

// checkPolicyLevel checks the syntax of --domain and --user.
func checkPolicyLevel(domain, user string) error {
	switch {
	case domain != "" && user != "":
		return errors.New("give --domain or --user, not both")
	case domain != "" && strings.Contains(domain, "@"):
		return fmt.Errorf("--domain wants a domain name, got the address %q (use --user)", domain)
	case domain != "":
		return checkOwnerName(domain)
	case user != "" && !strings.Contains(user, "@"):
		return fmt.Errorf("--user wants an address, got %q (use --domain for a domain)", user)
	case user != "":
		return checkOwnerName(user)
	}
	return nil
}

// policyLevel resolves the level of `policy set|show`: a managed domain,
// an address in one, or global (neither given). Anything else has no
// policy here, and both commands say so.
func (a *Appliance) policyLevel(ctx context.Context, domain, user string) (string, *owner, error) {
	if err := checkPolicyLevel(domain, user); err != nil {
		return "", nil, badRequest("%v", err)
	}
	switch {
	case domain != "":
		d, err := normalizeDomain(domain)
		if err != nil {
			return "", nil, err
		}
		if _, err := a.store.Get(ctx, a.domainDN(d)); ldapstore.CodeOf(err) == ldapstore.NoSuchObject {
			return "", nil, notFound("no managed domain %q (postern domain add %s ...)", d, d)
		} else if err != nil {
			return "", nil, err
		}
		o, err := a.findOwner(ctx, d)
		return d, o, err
	case user != "":
		o, err := a.findOwner(ctx, user)
		if err != nil {
			return "", nil, err
		}
		if !o.managed {
			return "", nil, notFound("%s is not in a managed domain: policy is for internal senders", o.name)
		}
		return o.name, o, nil
	}
	return "", nil, nil
}

// SetPolicy changes the policy of one level.
func (a *Appliance) SetPolicy(ctx context.Context, req PolicySet) (PolicyReport, error) {
	if err := req.check(); err != nil {
		return PolicyReport{}, badRequest("%v", err)
	}
	vals := map[string]string{"encrypt": req.Encrypt, "sign": req.Sign, "method": req.Method, "trigger": req.Trigger, "no_key": req.NoKey}
	by := a.cfg.AdminDN()
	level, o, err := a.policyLevel(ctx, req.Domain, req.User)
	if err != nil {
		return PolicyReport{}, err
	}
	var target string
	if o != nil {
		if target, err = a.home(ctx, o); err != nil {
			return PolicyReport{}, err
		}
	} else {
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
	return a.policyReport(ctx, level)
}

// ShowPolicy returns the effective policy of a managed domain, of an
// address in one, or the global one (neither given).
func (a *Appliance) ShowPolicy(ctx context.Context, domain, user string) (PolicyReport, error) {
	level, _, err := a.policyLevel(ctx, domain, user)
	if err != nil {
		return PolicyReport{}, err
	}
	return a.policyReport(ctx, level)
}

func (a *Appliance) policyReport(ctx context.Context, level string) (PolicyReport, error) {
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
		return a.ShowPolicy(r.Context(), q.Get("domain"), q.Get("user"))
	}))
	mux.HandleFunc("POST /v1/secure/policy", a.jsonHandler(func(r *http.Request) (any, error) {
		var req PolicySet
		if err := decodeJSON(r, &req); err != nil {
			return nil, err
		}
		return a.SetPolicy(r.Context(), req)
	}))
}
