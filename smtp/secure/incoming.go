package secure

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"postern/smtp"
)

// incoming is one message for internal recipients: decrypted with the
// recipient's (or the domain's) key, its signatures verified, the outcome
// in ResultHeader.
type incoming struct {
	p      *Processor
	env    smtp.Envelope
	now    time.Time
	msg    []byte
	from   string // the From header's address; "" unless exactly one
	secure bool   // the message is signed or encrypted at all

	pubs    []PublicKey // the sender's, for signatures (looked up once)
	pubDone bool
	roots   *x509.CertPool
	pinned  [][]byte
	plain   []byte // the result when nothing depends on the recipient
	plainK  string
}

// outcome is what the gateway found and did.
type outcome struct {
	decrypted, decKey string // method and key fingerprint
	undecrypted       string // method of an encryption no key here opens
	sig, sigMethod    string // valid, invalid; smime or pgp
	signer, signerFpr string
	mismatch          string // the From address the signer does not name ("no-from": none to compare)
	trusted           bool
	note              string
}

// maxLayers bounds the nesting of signatures and encryptions unwrapped.
const maxLayers = 4

func (p *Processor) newIncoming(ctx context.Context, env smtp.Envelope, msg []byte, now time.Time) *incoming {
	in := &incoming{p: p, env: env, now: now, msg: msg, from: soleFrom(msg)}
	_, entity := splitMessage(msg)
	in.secure = kindOf(entity) != ""
	return in
}

// kindOf names the protection of an entity: "smime-enveloped",
// "smime-signed", "smime-opaque", "pgp-encrypted", "pgp-signed" or "".
func kindOf(entity []byte) string {
	hdr, _ := splitEntity(entity)
	mt, params := mediaType(get(parseFields(hdr), "content-type"))
	proto := strings.ToLower(params["protocol"])
	switch mt {
	case "application/pkcs7-mime", "application/x-pkcs7-mime":
		switch strings.ToLower(params["smime-type"]) {
		case "signed-data":
			return "smime-opaque"
		case "certs-only", "compressed-data":
			return ""
		}
		return "smime-enveloped"
	case "multipart/signed":
		switch proto {
		case "application/pkcs7-signature", "application/x-pkcs7-signature":
			return "smime-signed"
		case "application/pgp-signature":
			return "pgp-signed"
		}
	case "multipart/encrypted":
		if proto == "application/pgp-encrypted" {
			return "pgp-encrypted"
		}
	}
	return ""
}

// forRecipient returns the message rcpt gets and a key that is the same
// for recipients who get the same.
func (in *incoming) forRecipient(ctx context.Context, rcpt string) (string, []byte, *smtp.Error) {
	if !in.secure {
		return "plain", in.msg, nil
	}
	if in.plain != nil {
		return in.plainK, in.plain, nil
	}
	outer, entity := splitMessage(in.msg)
	var o outcome
	var privs []PrivateKey
	privDone := false
	private := func() ([]PrivateKey, error) {
		if !privDone {
			privDone = true
			var err error
			privs, err = in.p.cfg.Keys.Private(ctx, rcpt)
			if err != nil {
				return nil, err
			}
		}
		return privs, nil
	}
	perRecipient := false
	for layer := 0; layer < maxLayers; layer++ {
		k := kindOf(entity)
		if k == "" {
			break
		}
		next, err := in.unwrap(ctx, k, entity, &o, private)
		if err != nil {
			return "", nil, errLookup(err)
		}
		if k == "smime-enveloped" || k == "pgp-encrypted" {
			perRecipient = true
		}
		if next == nil {
			break
		}
		entity = crlf(next)
	}
	res := in.rebuild(outer, entity, o)
	key := "decrypted " + o.decKey
	if !perRecipient {
		in.plain, in.plainK = res, "verified"
		key = in.plainK
	}
	in.p.log.Info("secure: incoming", slog.String("id", in.env.ID), slog.String("rcpt", rcpt), slog.String("decrypted", o.decrypted),
		slog.String("fingerprint", o.decKey), slog.String("signature", o.sig), slog.String("method", o.sigMethod), slog.String("signer", o.signer), slog.String("signer_fingerprint", o.signerFpr))
	return key, res, nil
}

// unwrap opens one layer; nil when it cannot be opened (the entity stays).
func (in *incoming) unwrap(ctx context.Context, kind string, entity []byte, o *outcome, private func() ([]PrivateKey, error)) ([]byte, error) {
	hdr, body := splitEntity(entity)
	_, params := mediaType(get(parseFields(hdr), "content-type"))
	switch kind {
	case "smime-enveloped":
		der, err := decodeBase64(body)
		if err != nil {
			o.note = "undecodable S/MIME"
			in.p.met.count("decrypt", KindSMIME, "invalid")
			return nil, nil
		}
		keys, err := private()
		if err != nil {
			return nil, err
		}
		out, k, err := smimeDecrypt(der, keys)
		if err != nil {
			o.undecrypted = KindSMIME
			outcome := "nokey"
			if err != errNoRecipientKey {
				outcome, o.note = "invalid", "S/MIME decryption failed"
			}
			in.p.met.count("decrypt", KindSMIME, outcome)
			return nil, nil
		}
		o.decrypted, o.decKey = KindSMIME, k.Fingerprint
		in.p.met.count("decrypt", KindSMIME, "ok")
		return out, nil
	case "smime-opaque":
		der, err := decodeBase64(body)
		if err != nil {
			o.sig, o.sigMethod = "invalid", KindSMIME
			in.p.met.count("verify", KindSMIME, "invalid")
			return nil, nil
		}
		roots, pinned := in.trust(ctx)
		v, content := smimeVerify(der, nil, roots, pinned, in.now)
		in.smimeOutcome(ctx, v, o)
		return content, nil
	case "smime-signed":
		parts, err := multipartParts(body, params["boundary"])
		if err != nil || len(parts) != 2 {
			o.sig, o.sigMethod = "invalid", KindSMIME
			in.p.met.count("verify", KindSMIME, "invalid")
			return nil, nil
		}
		_, sigBody := splitEntity(parts[1])
		der, err := decodeBase64(sigBody)
		if err != nil {
			o.sig, o.sigMethod = "invalid", KindSMIME
			in.p.met.count("verify", KindSMIME, "invalid")
			return parts[0], nil
		}
		roots, pinned := in.trust(ctx)
		v, _ := smimeVerify(der, parts[0], roots, pinned, in.now)
		in.smimeOutcome(ctx, v, o)
		return parts[0], nil
	case "pgp-signed":
		parts, err := multipartParts(body, params["boundary"])
		if err != nil || len(parts) != 2 {
			o.sig, o.sigMethod = "invalid", KindPGP
			in.p.met.count("verify", KindPGP, "invalid")
			return nil, nil
		}
		_, sig := splitEntity(parts[1])
		ring, err := in.senderRing(ctx)
		if err != nil {
			return nil, err
		}
		in.pgpOutcome(pgpVerify(parts[0], sig, ring, in.now), o)
		return parts[0], nil
	case "pgp-encrypted":
		parts, err := multipartParts(body, params["boundary"])
		if err != nil || len(parts) != 2 {
			o.note = "malformed PGP/MIME"
			in.p.met.count("decrypt", KindPGP, "invalid")
			return nil, nil
		}
		_, armoured := splitEntity(parts[1])
		keys, err := private()
		if err != nil {
			return nil, err
		}
		ring, err := in.senderRing(ctx)
		if err != nil {
			return nil, err
		}
		fprs := map[*openpgp.Entity]string{}
		for i := range keys {
			if keys[i].Kind != KindPGP {
				continue
			}
			es, err := readEntities(keys[i].Key)
			if err != nil {
				continue
			}
			for _, e := range es {
				fprs[e] = keys[i].Fingerprint
			}
			ring = append(es, ring...)
		}
		out, v, used, err := pgpDecrypt(armoured, ring, in.now)
		if err != nil {
			o.undecrypted = KindPGP
			outcome := "nokey"
			if err != errNoRecipientKey {
				outcome, o.note = "invalid", "OpenPGP decryption failed"
			}
			in.p.met.count("decrypt", KindPGP, outcome)
			return nil, nil
		}
		o.decrypted = KindPGP
		if used != nil {
			o.decKey = fprs[used]
			if o.decKey == "" {
				o.decKey = pgpFingerprint(used)
			}
		}
		in.p.met.count("decrypt", KindPGP, "ok")
		if v.signed {
			in.pgpOutcome(v, o)
		}
		return out, nil
	}
	return nil, nil
}

// senderPublic returns the sender's keys from the directory (once).
func (in *incoming) senderPublic(ctx context.Context) ([]PublicKey, error) {
	if !in.pubDone && in.from != "" {
		pubs, err := in.p.cfg.Keys.Public(ctx, in.from)
		if err != nil {
			return nil, err
		}
		in.pubs, in.pubDone = pubs, true
	}
	return in.pubs, nil
}

// senderRing is the sender's OpenPGP public keys.
func (in *incoming) senderRing(ctx context.Context) (openpgp.EntityList, error) {
	pubs, err := in.senderPublic(ctx)
	if err != nil {
		return nil, err
	}
	var ring openpgp.EntityList
	for _, pk := range pubs {
		if pk.Kind == KindPGP && !pk.Domain {
			if es, err := readEntities(pk.Data); err == nil {
				ring = append(ring, es...)
			}
		}
	}
	return ring, nil
}

// trust returns what S/MIME signatures are checked against: the pool of
// trust anchors (the system's roots and the directory's CA certificates:
// the internal CA and those imported with --ca) and the certificates the
// directory holds for the sender, pinned: each is trusted as the signer's
// own certificate, never as the issuer of another, whatever its
// basicConstraints say.
func (in *incoming) trust(ctx context.Context) (*x509.CertPool, [][]byte) {
	if in.roots != nil {
		return in.roots, in.pinned
	}
	pool := in.p.sys.Clone()
	if roots, err := in.p.cfg.Keys.Roots(ctx); err == nil {
		for _, der := range roots {
			// a root is a CA certificate; anything else in the list does
			// not become an issuer
			if c, err := x509.ParseCertificate(der); err == nil && c.BasicConstraintsValid && c.IsCA {
				pool.AddCert(c)
			}
		}
	}
	if pubs, err := in.senderPublic(ctx); err == nil {
		for _, pk := range pubs {
			if pk.Kind == KindSMIME && !pk.Domain {
				in.pinned = append(in.pinned, pk.Data)
			}
		}
	}
	in.roots = pool
	return pool, in.pinned
}

// fromNamed checks the From address against the addresses of a signer (a
// certificate's or a key's): RFC 8550 §3, a receiving agent checks that
// the From address matches an address of the signer's certificate and
// processes the message otherwise when it does not. Here the signature is
// then not trusted and the header says so (signer-mismatch). It returns
// the address to report as the signer.
func (in *incoming) fromNamed(addrs []string, o *outcome) string {
	switch {
	case in.from == "":
		o.mismatch = "no-from"
	case slices.Contains(addrs, in.from):
		return in.from
	default:
		o.mismatch = in.from
	}
	if len(addrs) > 0 {
		return addrs[0]
	}
	return ""
}

func (in *incoming) smimeOutcome(ctx context.Context, v smimeVerdict, o *outcome) {
	o.sigMethod, o.signer, o.signerFpr, o.mismatch, o.trusted = KindSMIME, "", "", "", false
	named := false
	if v.signer != nil {
		o.signerFpr = Fingerprint(v.signer.Raw)
		o.signer = in.fromNamed(CertAddresses(v.signer), o)
		named = o.mismatch == ""
	} else if v.err == nil {
		o.note = "several signers"
	}
	switch {
	case v.err != nil:
		o.sig, o.mismatch = "invalid", ""
		in.p.met.count("verify", KindSMIME, "invalid")
	case !v.trusted || !named:
		o.sig = "valid"
		in.p.met.count("verify", KindSMIME, "untrusted")
	default:
		o.sig, o.trusted = "valid", true
		in.p.met.count("verify", KindSMIME, "ok")
		in.collect(ctx, v.signer)
	}
}

// collect keeps the certificate of a valid, trusted signature of an
// external sender whose From address it names (smimeOutcome trusts no
// other).
func (in *incoming) collect(ctx context.Context, c *x509.Certificate) {
	if c == nil || in.from == "" || c.PublicKeyAlgorithm != x509.RSA || !slices.Contains(CertAddresses(c), in.from) {
		return
	}
	if internal, err := in.p.internal(ctx, in.from); err != nil || internal {
		return
	}
	if err := in.p.cfg.Keys.Collect(ctx, in.from, c.Raw); err != nil {
		in.p.log.Warn("secure: collecting a certificate", slog.String("address", in.from), slog.String("err", err.Error()))
		return
	}
}

func (in *incoming) pgpOutcome(v pgpVerdict, o *outcome) {
	o.sigMethod, o.signer, o.signerFpr, o.mismatch, o.trusted = KindPGP, "", "", "", false
	if v.signer != nil {
		o.signerFpr = pgpFingerprint(v.signer)
		o.signer = in.fromNamed(entityAddresses(v.signer, in.now), o)
	} else if v.keyID != 0 {
		o.signerFpr = fmt.Sprintf("%016X", v.keyID)
	}
	switch {
	case v.signer == nil:
		o.sig = "unknown-key"
		in.p.met.count("verify", KindPGP, "nokey")
	case v.err != nil:
		o.sig, o.mismatch = "invalid", ""
		in.p.met.count("verify", KindPGP, "invalid")
	case o.mismatch != "":
		// a key whose user IDs do not name the From address vouches for
		// someone else (RFC 8550 §3 applied to OpenPGP user IDs)
		o.sig = "valid"
		in.p.met.count("verify", KindPGP, "untrusted")
	default:
		// a key the directory holds for the sender, naming it: trusted
		// as imported
		o.sig, o.trusted = "valid", true
		in.p.met.count("verify", KindPGP, "ok")
	}
}

// rebuild writes the message the recipient gets: the outer fields, the
// result, and the innermost entity the gateway could open.
func (in *incoming) rebuild(outer []field, entity []byte, o outcome) []byte {
	var r []string
	switch {
	case o.decrypted != "":
		r = append(r, "decrypted="+o.decrypted, "key="+o.decKey)
	case o.undecrypted != "":
		r = append(r, "decrypted=no", "encrypted="+o.undecrypted)
	}
	if o.sig != "" {
		r = append(r, "signature="+o.sig, "method="+o.sigMethod)
		if o.signer != "" {
			r = append(r, "signer="+headerToken(o.signer))
		}
		if o.mismatch != "" {
			r = append(r, "signer-mismatch="+headerToken(o.mismatch))
		}
		if o.signerFpr != "" {
			r = append(r, "signer-key="+o.signerFpr)
		}
		r = append(r, fmt.Sprintf("trusted=%s", map[bool]string{true: "yes", false: "no"}[o.trusted]))
	} else {
		r = append(r, "signature=none")
	}
	if o.note != "" {
		r = append(r, "note=\""+strings.ReplaceAll(o.note, "\"", "'")+"\"")
	}
	val := in.p.cfg.Hostname + "; " + strings.Join(r, "; ")
	// Inner header fields other than Content-* (protected headers) never
	// duplicate the outer ones.
	ih, ib := splitEntity(entity)
	have := map[string]bool{}
	for _, f := range outer {
		have[f.name] = true
	}
	var inner []field
	for _, f := range parseFields(ih) {
		if f.name == "mime-version" || f.name == strings.ToLower(ResultHeader) || (!isContent(f.name) && have[f.name]) {
			continue
		}
		inner = append(inner, f)
	}
	var b bytes.Buffer
	b.Write(join(outer))
	b.Write(foldField(ResultHeader, val))
	b.WriteString("MIME-Version: 1.0\r\n")
	b.Write(join(inner))
	b.WriteString("\r\n")
	b.Write(ib)
	return b.Bytes()
}

// foldField writes "Name: value" folded at "; " to lines under 78 octets.
func foldField(name, value string) []byte {
	var b bytes.Buffer
	line := name + ":"
	for i, part := range strings.Split(value, "; ") {
		sep := " "
		if i > 0 {
			line += ";"
		}
		if len(line)+1+len(part) > 76 && i > 0 {
			b.WriteString(line + "\r\n")
			line, sep = "", "\t"
		}
		line += sep + part
	}
	b.WriteString(line + "\r\n")
	return b.Bytes()
}
