package secure

import (
	"context"
	"crypto/x509"
	"log/slog"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"postern/smtp"
)

// outgoing is one message on its way from an internal sender to external
// recipients: the sender's policy, signing key and what was built.
type outgoing struct {
	p       *Processor
	env     smtp.Envelope
	now     time.Time
	msg     []byte // cleaned; the subject trigger removed when it fired
	pol     Policy
	polErr  error
	trigger bool

	signers   map[string]*signer // by kind, looked up once
	signErr   error
	signDone  bool
	plans     map[string]plan
	byKeyDone map[string]bool
}

// plan is what one recipient gets: encrypted for rk (nil: not encrypted),
// signed by s (nil: not signed).
type plan struct {
	rk *recipientKey
	s  *signer
}

func (p *Processor) newOutgoing(ctx context.Context, env smtp.Envelope, msg []byte, now time.Time) *outgoing {
	o := &outgoing{p: p, env: env, now: now, msg: msg, plans: map[string]plan{}}
	o.pol, o.polErr = p.cfg.Keys.Policy(ctx, strings.ToLower(env.From))
	if o.polErr == nil && hasTrigger(msg, o.pol.Trigger) {
		o.trigger = true
		o.msg = removeTrigger(msg, o.pol.Trigger)
	}
	return o
}

// forRecipient decides what rcpt gets and returns the plan's key; content
// is nil until build, unless the recipient is refused (e).
func (o *outgoing) forRecipient(ctx context.Context, rcpt string) (key string, c []byte, e *smtp.Error) {
	if o.polErr != nil {
		return "", nil, errLookup(o.polErr)
	}
	var pl plan
	must := o.pol.Encrypt == EncryptAlways || o.trigger
	if o.pol.Encrypt != EncryptNever || o.trigger {
		rk, err := o.p.recipientKey(ctx, rcpt, o.pol.Method, o.now)
		if err != nil {
			return "", nil, errLookup(err)
		}
		if rk == nil && must {
			o.p.met.count("encrypt", string(o.pol.Method), "nokey")
			o.p.log.Warn("secure: encryption required, no key: bounced", slog.String("id", o.env.ID), slog.String("rcpt", rcpt), slog.String("method", string(o.pol.Method)))
			return "", nil, errNoKeyFor(rcpt)
		}
		pl.rk = rk
	}
	if o.pol.Sign == SignAlways {
		want := string(o.pol.Method)
		if pl.rk != nil {
			want = pl.rk.kind
		}
		s, err := o.signer(ctx, want)
		if err != nil {
			return "", nil, errLookup(err)
		}
		if s == nil {
			o.p.met.count("sign", want, "nokey")
			o.p.log.Warn("secure: signing required, no key for the sender: deferred", slog.String("id", o.env.ID), slog.String("from", o.env.From))
			return "", nil, &smtp.Error{Code: 451, Enhanced: [3]int{4, 7, 0}, Message: "Signing required but no S/MIME or OpenPGP key of " + o.env.From + " or its domain is held"}
		}
		pl.s = s
	}
	key = "plain"
	if pl.rk != nil {
		key = "enc " + pl.rk.kind + " " + pl.rk.fpr
	}
	if pl.s != nil {
		key += " sig " + pl.s.kind + " " + pl.s.fpr
	}
	if _, ok := o.plans[key]; !ok {
		o.plans[key] = pl
	}
	if pl.rk != nil {
		o.p.log.Info("secure: encrypt", slog.String("id", o.env.ID), slog.String("rcpt", rcpt), slog.String("method", pl.rk.kind),
			slog.String("fingerprint", pl.rk.fpr), slog.String("key_of", pl.rk.owner), slog.Bool("trigger", o.trigger))
	}
	return key, nil, nil
}

// build makes the content of a plan.
func (o *outgoing) build(key string) ([]byte, *smtp.Error) {
	pl := o.plans[key]
	if pl.rk == nil && pl.s == nil {
		return o.msg, nil
	}
	outer, entity := splitMessage(o.msg)
	prot, err := protect(entity, pl.s, pl.rk, o.p.cfg.KeyTransport, o.now, smtp.SevenBit)
	if err != nil {
		op, method := "sign", ""
		if pl.rk != nil {
			op, method = "encrypt", pl.rk.kind
		} else {
			method = pl.s.kind
		}
		o.p.met.count(op, method, "error")
		o.p.log.Error("secure: protecting a message failed", slog.String("id", o.env.ID), slog.String("err", err.Error()))
		return nil, &smtp.Error{Code: 451, Enhanced: [3]int{4, 7, 0}, Message: "Message could not be signed or encrypted", Err: err}
	}
	if pl.s != nil {
		o.p.met.count("sign", pl.s.kind, "ok")
		o.p.log.Info("secure: sign", slog.String("id", o.env.ID), slog.String("method", pl.s.kind), slog.String("fingerprint", pl.s.fpr))
	}
	if pl.rk != nil {
		o.p.met.count("encrypt", pl.rk.kind, "ok")
	}
	return message(outer, prot), nil
}

// signer returns the sender's signing key of a kind (else of the other
// kind; the sender's own before its domain's), nil when none is held.
func (o *outgoing) signer(ctx context.Context, kind string) (*signer, error) {
	if !o.signDone {
		o.signDone = true
		o.signers = map[string]*signer{}
		keys, err := o.p.cfg.Keys.Private(ctx, strings.ToLower(o.env.From))
		if err != nil {
			o.signErr = err
		}
		for i := range keys {
			k := &keys[i]
			if o.signers[k.Kind] != nil {
				continue // the sender's own came first
			}
			switch k.Kind {
			case KindSMIME:
				cert, key, err := parseSMIMEKey(k)
				if err != nil || o.now.After(cert.NotAfter) || o.now.Before(cert.NotBefore) {
					continue
				}
				o.signers[KindSMIME] = &signer{kind: KindSMIME, fpr: k.Fingerprint, cert: cert, key: key}
			case KindPGP:
				es, err := readEntities(k.Key)
				if err != nil || len(es) == 0 || es[0].PrivateKey == nil {
					continue
				}
				if _, ok := es[0].SigningKey(o.now); !ok {
					continue
				}
				o.signers[KindPGP] = &signer{kind: KindPGP, fpr: k.Fingerprint, pgp: es[0]}
			}
		}
	}
	if o.signErr != nil {
		return nil, o.signErr
	}
	if s := o.signers[kind]; s != nil {
		return s, nil
	}
	for _, s := range o.signers {
		return s, nil
	}
	return nil, nil
}

// recipientKey picks the key to encrypt for rcpt: the recipient's own
// before its domain's, the preferred method before the other, only keys
// usable now (not expired, able to encrypt). nil when none is.
func (p *Processor) recipientKey(ctx context.Context, rcpt string, prefer Method, now time.Time) (*recipientKey, error) {
	pubs, err := p.cfg.Keys.Public(ctx, strings.ToLower(rcpt))
	if err != nil {
		return nil, err
	}
	order := []string{string(prefer), KindPGP}
	if prefer == MethodPGP {
		order[1] = KindSMIME
	}
	for _, domain := range []bool{false, true} {
		for _, kind := range order {
			for _, pk := range pubs {
				if pk.Domain != domain || pk.Kind != kind {
					continue
				}
				switch kind {
				case KindSMIME:
					c, err := x509.ParseCertificate(pk.Data)
					if err != nil || usableForEncryption(c, now) != nil {
						continue
					}
					return &recipientKey{kind: KindSMIME, fpr: Fingerprint(c.Raw), owner: pk.Owner, cert: c}, nil
				case KindPGP:
					es, err := readEntities(pk.Data)
					if err != nil {
						continue
					}
					for _, e := range es {
						if pgpEncryptable(e, now) {
							return &recipientKey{kind: KindPGP, fpr: pgpFingerprint(e), owner: pk.Owner, pgp: e}, nil
						}
					}
				}
			}
		}
	}
	return nil, nil
}

var _ = openpgp.EntityList{}
