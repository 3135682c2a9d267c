// Package form parses and checks the web menu's forms into the requests
// the control API takes. It checks what a form can get wrong (a missing
// field, a file too large); the control API checks the rest and says why.
package form

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// maxUpload bounds an uploaded clusterid.txt or PEM file.
const maxUpload = 256 << 10

// Lines splits a textarea into its non-empty trimmed lines (commas and
// blanks separate too).
func Lines(s string) []string {
	out := []string{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' || r == ' ' || r == '\t' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Login is the login form.
type Login struct {
	Password string
	Next     string
}

// ParseLogin reads the login form; Next is kept only when it is a path of
// the menu (no open redirect).
func ParseLogin(r *http.Request) Login {
	l := Login{Password: r.PostFormValue("password"), Next: LocalPath(r.PostFormValue("next"))}
	if l.Next == "" || strings.HasPrefix(l.Next, "/login") {
		l.Next = "/cluster"
	}
	return l
}

// LocalPath returns next when it is a path on this site to go to after a
// login, else "". Browsers drop tabs and newlines from a URL and read a
// backslash as a slash (WHATWG URL), so "/\t/evil.example" is
// "//evil.example" to them: anything with a control character or a
// backslash is refused, and what remains must parse as a path with no
// scheme and no host that does not begin "//".
func LocalPath(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || len(next) > 2048 {
		return ""
	}
	for _, c := range next {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return ""
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return ""
	}
	return next
}

// Prepare is "Prepare for cluster".
type Prepare struct {
	Password string        `json:"password"`
	Allow    []string      `json:"allow,omitempty"`
	Valid    time.Duration `json:"valid,omitempty"`
	Once     bool          `json:"once,omitempty"`
}

// ParsePrepare reads the prepare form.
func ParsePrepare(r *http.Request) (Prepare, error) {
	p := Prepare{Password: r.PostFormValue("password"), Allow: Lines(r.PostFormValue("allow")), Once: r.PostFormValue("once") != ""}
	if p.Password == "" {
		return p, errors.New("enter a cluster password (at least 12 characters): it protects the cluster key in clusterid.txt")
	}
	if c := r.PostFormValue("confirm"); c != "" && c != p.Password {
		return p, errors.New("the two cluster passwords differ: enter the same password twice")
	}
	if v := r.PostFormValue("valid"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return p, fmt.Errorf("validity %q: want a duration such as 1h or 24h", v)
		}
		p.Valid = d
	}
	return p, nil
}

// Join is "Add this device to existing cluster".
type Join struct {
	ID       []byte `json:"id"`
	Password string `json:"password"`
	Member   string `json:"member"`
	Self     string `json:"self"`
	// DiscardLocal (attach only): attach although this device's directory
	// holds entries of its own, which a frontend does not keep
	DiscardLocal bool `json:"discard_local,omitempty"`
}

// ParseJoin reads the multipart join form with its uploaded clusterid.txt.
func ParseJoin(r *http.Request) (Join, error) {
	var j Join
	if err := r.ParseMultipartForm(maxUpload); err != nil {
		return j, fmt.Errorf("the form did not arrive whole: %v", err)
	}
	id, err := File(r, "clusterid")
	if err != nil {
		return j, err
	}
	if len(id) == 0 {
		return j, errors.New("choose the clusterid.txt made on the base machine (Prepare for cluster there)")
	}
	j.ID = id
	j.Password = r.PostFormValue("password")
	j.Member = strings.TrimSpace(r.PostFormValue("member"))
	j.Self = strings.TrimSpace(r.PostFormValue("self"))
	if j.Password == "" {
		return j, errors.New("enter the cluster password given when clusterid.txt was made")
	}
	if j.Self == "" {
		return j, errors.New("enter this device's cluster address IP:PORT (the address the members reach it on)")
	}
	return j, nil
}

// ParseAttach reads the multipart form of "Add this device as frontend
// server": the same request as a join, the member being the backend
// ("Existing appliance IP"; empty: the one clusterid.txt was made on).
func ParseAttach(r *http.Request) (Join, error) {
	var j Join
	if err := r.ParseMultipartForm(maxUpload); err != nil {
		return j, fmt.Errorf("the form did not arrive whole: %v", err)
	}
	id, err := File(r, "clusterid")
	if err != nil {
		return j, err
	}
	if len(id) == 0 {
		return j, errors.New("choose the clusterid.txt made on the backend (Prepare for cluster there)")
	}
	j.ID = id
	j.Password = r.PostFormValue("password")
	j.Member = strings.TrimSpace(r.PostFormValue("backend"))
	j.Self = strings.TrimSpace(r.PostFormValue("self"))
	j.DiscardLocal = r.PostFormValue("discard_local") != ""
	if j.Password == "" {
		return j, errors.New("enter the cluster password given when clusterid.txt was made")
	}
	if j.Member != "" {
		if err := addrPort(j.Member, "the backend's address"); err != nil {
			return j, err
		}
	}
	if j.Self == "" {
		return j, errors.New("enter this device's cluster address IP:PORT (the address the backends reach it on)")
	}
	return j, addrPort(j.Self, "this device's address")
}

// Backend is "Add additional backend" and a backend to remove: a
// backend's cluster address.
type Backend struct {
	Addr string `json:"addr"`
}

// ParseBackend reads "Existing appliance IP" of Add additional backend.
func ParseBackend(r *http.Request) (Backend, error) {
	b := Backend{Addr: strings.TrimSpace(r.PostFormValue("addr"))}
	if b.Addr == "" {
		return b, errors.New("enter the backend's cluster address IP:PORT (its row in Cluster Setup on a backend shows it)")
	}
	return b, addrPort(b.Addr, "the backend's address")
}

// addrPort checks an IP:PORT field (a cluster address is an IP, never a
// name: the physical address, no alias).
func addrPort(s, what string) error {
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 {
		return fmt.Errorf("%s %q is not IP:PORT: enter an IP address and the cluster SSH port, e.g. 192.0.2.12:22", what, s)
	}
	return nil
}

// File returns an uploaded file's content (nil when none was chosen).
func File(r *http.Request, field string) ([]byte, error) {
	f, _, err := r.FormFile(field)
	if errors.Is(err, http.ErrMissingFile) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("upload %s: %v", field, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxUpload+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxUpload {
		return nil, fmt.Errorf("the file for %s is larger than %d KiB", field, maxUpload>>10)
	}
	return b, nil
}

// Protect is "Protect cluster identifier".
type Protect struct {
	Off bool     `json:"off,omitempty"`
	IPs []string `json:"ips"`
}

// ParseProtect reads the checkbox and the IPs, one per line.
func ParseProtect(r *http.Request) Protect {
	return Protect{Off: r.PostFormValue("limit") == "", IPs: Lines(r.PostFormValue("ips"))}
}

// Inject is "Allow mail injection".
type Inject struct {
	Backends  []string `json:"backends"`
	Frontends []string `json:"frontends"`
}

// ParseInject reads the two multi-selects.
func ParseInject(r *http.Request) Inject {
	r.ParseForm()
	in := Inject{Backends: []string{}, Frontends: []string{}}
	for _, v := range r.PostForm["backends"] {
		if v = strings.TrimSpace(v); v != "" {
			in.Backends = append(in.Backends, v)
		}
	}
	for _, v := range r.PostForm["frontends"] {
		if v = strings.TrimSpace(v); v != "" {
			in.Frontends = append(in.Frontends, v)
		}
	}
	return in
}

// System is the machine-local settings form.
type System struct {
	Hostname  *string `json:"hostname,omitempty"`
	Comment   *string `json:"comment,omitempty"`
	Location  *string `json:"location,omitempty"`
	NTPServer *string `json:"ntp_server,omitempty"`
}

// ParseSystem reads the System form: every field is set as given.
func ParseSystem(r *http.Request) System {
	v := func(k string) *string { s := strings.TrimSpace(r.PostFormValue(k)); return &s }
	return System{Hostname: v("hostname"), Comment: v("comment"), Location: v("location"), NTPServer: v("ntp_server")}
}

// Domain is a managed domain.
type Domain struct {
	Name      string `json:"name"`
	DeliverTo string `json:"deliver_to"`
	TLS       string `json:"tls"`
}

// ParseDomain reads the add-domain form.
func ParseDomain(r *http.Request) (Domain, error) {
	d := Domain{Name: strings.TrimSpace(r.PostFormValue("name")), DeliverTo: strings.TrimSpace(r.PostFormValue("deliver_to")), TLS: r.PostFormValue("tls")}
	if d.Name == "" || d.DeliverTo == "" {
		return d, errors.New("enter the domain and the server its mail goes to (HOST:PORT)")
	}
	return d, nil
}

// Relay is the relay settings form.
type Relay struct {
	Networks  *[]string `json:"networks,omitempty"`
	Smarthost *string   `json:"smarthost,omitempty"`
}

// ParseRelay reads the relay networks (one per line) and the smarthost
// (empty: deliver to the MX hosts).
func ParseRelay(r *http.Request) Relay {
	nets := Lines(r.PostFormValue("networks"))
	sh := strings.TrimSpace(r.PostFormValue("smarthost"))
	return Relay{Networks: &nets, Smarthost: &sh}
}

// Certificate is an uploaded certificate chain and key.
type Certificate struct {
	CertPEM string `json:"cert_pem"`
	KeyPEM  string `json:"key_pem"`
}

// ParseCertificate reads the chain and the key, each from a file or a
// text field.
func ParseCertificate(r *http.Request) (Certificate, error) {
	var c Certificate
	if err := r.ParseMultipartForm(maxUpload); err != nil {
		return c, fmt.Errorf("the form did not arrive whole: %v", err)
	}
	get := func(field string) (string, error) {
		b, err := File(r, field+"_file")
		if err != nil {
			return "", err
		}
		if len(b) > 0 {
			return string(b), nil
		}
		return strings.TrimSpace(r.PostFormValue(field)), nil
	}
	var err error
	if c.CertPEM, err = get("cert"); err != nil {
		return c, err
	}
	if c.KeyPEM, err = get("key"); err != nil {
		return c, err
	}
	if c.CertPEM == "" || c.KeyPEM == "" {
		return c, errors.New("give both the certificate chain (PEM, leaf first) and its private key (PEM)")
	}
	return c, nil
}
