package secure

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"log/slog"

	"github.com/emersion/go-msgauth/dkim"

	"postern/smtp"
)

// dkimHeaders are the fields signed (RFC 6376 §5.4.1's recommendation;
// From is required). Fields a message lacks are signed as absent, so none
// can be added later.
var dkimHeaders = []string{"From", "Reply-To", "Subject", "Date", "To", "Cc", "Resent-Date", "Resent-From", "Resent-To",
	"Resent-Cc", "In-Reply-To", "References", "List-Id", "List-Help", "List-Unsubscribe", "List-Subscribe", "List-Post",
	"List-Owner", "List-Archive", "Message-ID", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"}

// Seal DKIM-signs (RFC 6376, relaxed/relaxed, rsa-sha256 or ed25519-sha256)
// outgoing mail of a managed domain that has a DKIM key: the domain of the
// From header, else of the envelope sender.
func (p *Processor) Seal(ctx context.Context, env smtp.Envelope, content []byte) ([]byte, *smtp.Error) {
	outgoing := false
	for _, r := range env.Rcpts {
		in, err := p.internal(ctx, r)
		if err != nil {
			return nil, errLookup(err)
		}
		outgoing = outgoing || !in
	}
	if !outgoing {
		return content, nil
	}
	var domain string
	for _, a := range []string{headerAddress(content, "from"), env.From} {
		if in, err := p.internal(ctx, a); err != nil {
			return nil, errLookup(err)
		} else if in {
			domain = domainOf(a)
			break
		}
	}
	if domain == "" {
		return content, nil
	}
	k, ok, err := p.cfg.Keys.DKIM(ctx, domain)
	if err != nil {
		return nil, errLookup(err)
	}
	if !ok {
		return content, nil
	}
	signed, err := dkimSign(content, domain, k)
	if err != nil {
		p.met.count("dkim", KindDKIM, "error")
		p.log.Error("secure: DKIM signing failed", slog.String("id", env.ID), slog.String("domain", domain), slog.String("err", err.Error()))
		return nil, &smtp.Error{Code: 451, Enhanced: [3]int{4, 7, 0}, Message: "Message could not be DKIM-signed", Err: err}
	}
	p.met.count("dkim", KindDKIM, "ok")
	p.log.Info("secure: dkim", slog.String("id", env.ID), slog.String("domain", domain), slog.String("selector", k.Selector), slog.String("fingerprint", k.Fingerprint))
	return signed, nil
}

func dkimSign(content []byte, domain string, k PrivateKey) ([]byte, error) {
	key, err := x509.ParsePKCS8PrivateKey(k.Key)
	if err != nil {
		return nil, err
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("DKIM key of type %T cannot sign", key)
	}
	var out bytes.Buffer
	out.Grow(len(content) + 1024)
	err = dkim.Sign(&out, bytes.NewReader(content), &dkim.SignOptions{
		Domain: domain, Selector: k.Selector, Signer: s,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
		HeaderKeys: dkimHeaders,
	})
	return out.Bytes(), err
}
