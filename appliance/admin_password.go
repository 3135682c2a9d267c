package appliance

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"postern/ldapstore"
)

// MinAdminPasswordLen is the shortest admin password `postern admin
// password` accepts.
const MinAdminPasswordLen = 12

// AdminPasswordRequest is POST /v1/admin/password: Password "" means
// generate one.
type AdminPasswordRequest struct {
	Password string `json:"password,omitempty"`
}

// AdminPasswordAnswer carries a generated password (shown once).
type AdminPasswordAnswer struct {
	Generated string `json:"generated,omitempty"`
}

// SetAdminPassword replaces the machine-local admin password (the LDAP
// root DN's, and the web menu's): the argon2id hash is stored (mode 0600)
// and in force for every later bind. An empty password makes a new random
// one, returned once. The password is never logged or stored in plain.
func (a *Appliance) SetAdminPassword(pw string) (generated string, err error) {
	if pw == "" {
		pw = randomPassword()
		generated = pw
	} else if len(pw) < MinAdminPasswordLen {
		return "", badRequest("the admin password needs at least %d characters", MinAdminPasswordLen)
	}
	hash, err := ldapstore.HashPassword(pw)
	if err != nil {
		return "", err
	}
	if err := storeAdminHash(a.cfg.DataDir, hash); err != nil {
		return "", err
	}
	a.adminMu.Lock()
	a.adminHash = hash
	a.adminMu.Unlock()
	a.ldap.SetRootPassword(hash)
	a.log.Warn("admin password reset through the control socket")
	return generated, nil
}

func (a *Appliance) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/admin/password", a.jsonHandler(func(r *http.Request) (any, error) {
		var req AdminPasswordRequest
		if err := decodeJSON(r, &req); err != nil {
			return nil, err
		}
		g, err := a.SetAdminPassword(req.Password)
		return AdminPasswordAnswer{Generated: g}, err
	}))
}

// cmdAdmin is `postern admin password [--password-file F]`.
func cmdAdmin(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("want password or token")
	}
	if args[0] == "token" {
		return cmdAdminToken(ctx, args[1:], stdout)
	}
	fs, data, _ := clientFlags("admin " + args[0])
	pwFile := fs.String("password-file", "", "file holding the new admin password (first line); without it one is generated and printed once")
	if err := parseAll(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	var req AdminPasswordRequest
	if *pwFile != "" {
		pw, err := readPassword(*pwFile)
		if err != nil {
			return err
		}
		req.Password = pw
	}
	var ans AdminPasswordAnswer
	if err := newClient(*data).call(ctx, "POST", "/v1/admin/password", req, &ans); err != nil {
		return err
	}
	if ans.Generated != "" {
		fmt.Fprintf(stdout, "new admin password (shown once): %s\n", ans.Generated)
		return nil
	}
	fmt.Fprintln(stdout, "admin password changed")
	return nil
}
