package secure

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/mail"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"postern/smtp"
)

// ResultHeader is the field that records what the gateway did with
// incoming mail. Every copy of it in a message is removed before the
// gateway writes its own, so that only the gateway's can be read.
const ResultHeader = "X-Postern-Secure"

// Config configures a Processor. Zero values get the documented defaults.
type Config struct {
	Keys         Keys                 // keys and policy (required)
	Hostname     string               // names the gateway in ResultHeader; default "postern"
	KeyTransport KeyTransport         // RSA key transport of outgoing S/MIME; default TransportOAEP
	Registry     *prometheus.Registry // metrics; nil = not registered
	Logger       *slog.Logger         // default discards
	Now          func() time.Time     // default time.Now
}

// Processor is the secure-mail step (smtp.Processor).
type Processor struct {
	cfg Config
	log *slog.Logger
	met *metrics
	sys *x509.CertPool
}

var _ smtp.Processor = (*Processor)(nil)

// New returns a Processor.
func New(cfg Config) (*Processor, error) {
	if cfg.Keys == nil {
		return nil, errors.New("secure: Config.Keys is required")
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "postern"
	}
	if cfg.KeyTransport == "" {
		cfg.KeyTransport = TransportOAEP
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	met, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	sys, err := x509.SystemCertPool()
	if err != nil || sys == nil {
		sys = x509.NewCertPool()
	}
	return &Processor{cfg: cfg, log: cfg.Logger, met: met, sys: sys}, nil
}

// Close unregisters the metrics.
func (p *Processor) Close() { p.met.unregister() }

// Replies. RFC 3463 X.7.1: delivery not authorised; X.7.0 other security.
var (
	errLookup = func(err error) *smtp.Error {
		if errors.Is(err, smtp.ErrDirectoryUnavailable) {
			// RFC 3463 X.4.3: a frontend none of whose backends answers
			return &smtp.Error{Code: 451, Enhanced: [3]int{4, 4, 3}, Message: "Directory server unavailable, try again later", Err: err}
		}
		return &smtp.Error{Code: 451, Enhanced: [3]int{4, 3, 0}, Message: "Temporary lookup failure", Err: err}
	}
)

func errNoKeyFor(rcpt string) *smtp.Error {
	return &smtp.Error{Code: 554, Enhanced: [3]int{5, 7, 1}, Message: "Encryption required but no certificate or OpenPGP key is known for " + rcpt}
}

func domainOf(addr string) string {
	return strings.ToLower(addr[strings.LastIndexByte(addr, '@')+1:])
}

// internal reports whether addr is in a managed domain.
func (p *Processor) internal(ctx context.Context, addr string) (bool, error) {
	if addr == "" || !strings.Contains(addr, "@") {
		return false, nil
	}
	return p.cfg.Keys.Managed(ctx, domainOf(addr))
}

// senderPolicy returns the policy of an internal sender (ok false for
// anyone else).
func (p *Processor) senderPolicy(ctx context.Context, from string) (Policy, bool, error) {
	in, err := p.internal(ctx, from)
	if err != nil || !in {
		return Policy{}, false, err
	}
	pol, err := p.cfg.Keys.Policy(ctx, strings.ToLower(from))
	return pol, err == nil, err
}

// CheckRecipient refuses, at RCPT, an outgoing recipient whose mail must
// be encrypted (policy "always", no-key action "reject") but whose key is
// unknown: 554 5.7.1.
func (p *Processor) CheckRecipient(ctx context.Context, from, rcpt string) *smtp.Error {
	pol, ok, err := p.senderPolicy(ctx, from)
	if err != nil {
		return errLookup(err)
	}
	if !ok || pol.Encrypt != EncryptAlways || pol.NoKey != NoKeyReject {
		return nil
	}
	return p.checkKey(ctx, rcpt, pol)
}

// checkKey refuses an external recipient without a usable key.
func (p *Processor) checkKey(ctx context.Context, rcpt string, pol Policy) *smtp.Error {
	in, err := p.internal(ctx, rcpt)
	if err != nil {
		return errLookup(err)
	}
	if in {
		return nil
	}
	rk, err := p.recipientKey(ctx, rcpt, pol.Method, p.cfg.Now())
	if err != nil {
		return errLookup(err)
	}
	if rk == nil {
		p.met.count("encrypt", string(pol.Method), "nokey")
		p.log.Info("secure: refused, no key", slog.String("rcpt", rcpt), slog.String("policy", "always"))
		return errNoKeyFor(rcpt)
	}
	return nil
}

// CheckMessage refuses, at the end of the data, a message whose subject
// trigger asks for encryption when an outgoing recipient has no key and
// the no-key action is "reject".
func (p *Processor) CheckMessage(ctx context.Context, from string, rcpts []string, content []byte) *smtp.Error {
	pol, ok, err := p.senderPolicy(ctx, from)
	if err != nil {
		return errLookup(err)
	}
	if !ok || pol.NoKey != NoKeyReject || !hasTrigger(content, pol.Trigger) {
		return nil
	}
	for _, r := range rcpts {
		if e := p.checkKey(ctx, r, pol); e != nil {
			return e
		}
	}
	return nil
}

// Prepare gives each recipient its content: outgoing mail signed and
// encrypted by the sender's policy, incoming mail decrypted and verified,
// and everything cleaned of forged result headers.
func (p *Processor) Prepare(ctx context.Context, env smtp.Envelope, content []byte) []smtp.Variant {
	now := p.cfg.Now()
	clean := stripField(content, ResultHeader)
	var out []smtp.Variant
	byKey := map[string]int{}
	add := func(key string, i int, c []byte, e *smtp.Error) {
		if e != nil {
			key = "err " + e.Error()
		}
		if j, ok := byKey[key]; ok {
			out[j].Rcpts = append(out[j].Rcpts, i)
			return
		}
		byKey[key] = len(out)
		out = append(out, smtp.Variant{Rcpts: []int{i}, Content: c, Err: e})
	}
	fromIn, err := p.internal(ctx, env.From)
	if err != nil {
		for i := range env.Rcpts {
			add("", i, nil, errLookup(err))
		}
		return out
	}
	var o *outgoing
	var in *incoming
	for i, rcpt := range env.Rcpts {
		rcptIn, err := p.internal(ctx, rcpt)
		switch {
		case err != nil:
			add("", i, nil, errLookup(err))
		case rcptIn:
			if in == nil {
				in = p.newIncoming(ctx, env, clean, now)
			}
			key, c, e := in.forRecipient(ctx, strings.ToLower(rcpt))
			add("in "+key, i, c, e)
		case fromIn:
			if o == nil {
				o = p.newOutgoing(ctx, env, clean, now)
			}
			key, c, e := o.forRecipient(ctx, strings.ToLower(rcpt))
			if c == nil && e == nil {
				if k, ok := byKey["out "+key]; ok {
					out[k].Rcpts = append(out[k].Rcpts, i)
					continue
				}
				c, e = o.build(key)
			}
			add("out "+key, i, c, e)
		default:
			add("plain", i, clean, nil)
		}
	}
	return out
}

// hasTrigger reports whether the subject starts with the trigger.
func hasTrigger(msg []byte, trigger string) bool {
	if trigger == "" {
		return false
	}
	hdr, _ := splitEntity(msg)
	subj := get(parseFields(hdr), "subject")
	return len(subj) >= len(trigger) && strings.EqualFold(subj[:len(trigger)], trigger)
}

// removeTrigger takes the trigger off the subject (it was for the
// gateway, not for the recipient).
func removeTrigger(msg []byte, trigger string) []byte {
	hdr, body := splitEntity(msg)
	fs := parseFields(hdr)
	for i, f := range fs {
		if f.name != "subject" {
			continue
		}
		v := f.value()
		if len(v) >= len(trigger) && strings.EqualFold(v[:len(trigger)], trigger) {
			fs[i] = newField("Subject", strings.TrimSpace(v[len(trigger):]))
		}
		break
	}
	var b bytes.Buffer
	b.Write(join(fs))
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// stripField removes every copy of a header field from a message.
func stripField(msg []byte, name string) []byte {
	hdr, body := splitEntity(msg)
	n := strings.ToLower(name)
	if !bytes.Contains(bytes.ToLower(hdr), []byte(n)) {
		return msg
	}
	fs := without(parseFields(hdr), n)
	var b bytes.Buffer
	b.Write(join(fs))
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// headerAddress returns the address of a header field (From), lower-cased.
func headerAddress(msg []byte, name string) string {
	hdr, _ := splitEntity(msg)
	v := get(parseFields(hdr), name)
	if v == "" {
		return ""
	}
	a, err := mail.ParseAddress(v)
	if err != nil {
		return ""
	}
	return strings.ToLower(a.Address)
}

// soleFrom returns the address of the From field when the message has
// exactly one From field naming exactly one mailbox (RFC 5322 §3.6.2 asks
// for one field), lower-cased; "" otherwise: a signature is then checked
// against no address, and trusted for none.
func soleFrom(msg []byte) string {
	hdr, _ := splitEntity(msg)
	var vals []string
	for _, f := range parseFields(hdr) {
		if f.name == "from" {
			vals = append(vals, f.value())
		}
	}
	if len(vals) != 1 {
		return ""
	}
	as, err := mail.ParseAddressList(vals[0])
	if err != nil || len(as) != 1 {
		return ""
	}
	return strings.ToLower(as[0].Address)
}
