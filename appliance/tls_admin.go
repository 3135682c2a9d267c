package appliance

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"time"
)

// The machine certificate (machine-local, never replicated) serves LDAPS,
// StartTLS, SMTP STARTTLS and the admin menu. It is read through
// GetCertificate, so a certificate uploaded in the menu (or with the API)
// is in force for the next handshake of every listener without a restart.

// TLSInfo describes the machine certificate.
type TLSInfo struct {
	Subject    string    `json:"subject"`
	Issuer     string    `json:"issuer"`
	DNSNames   []string  `json:"dns_names"`
	IPs        []string  `json:"ip_addresses"`
	NotBefore  time.Time `json:"not_before"`
	NotAfter   time.Time `json:"not_after"`
	SelfSigned bool      `json:"self_signed"`
	Chain      int       `json:"chain"`  // certificates in the chain, the leaf included
	SHA256     string    `json:"sha256"` // fingerprint of the leaf
}

// TLSUpload is POST /v1/tls: a certificate chain (leaf first) and its
// private key, both PEM.
type TLSUpload struct {
	CertPEM string `json:"cert_pem"`
	KeyPEM  string `json:"key_pem"`
}

// machineCert is the tls.Config's GetCertificate.
func (a *Appliance) machineCert(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return a.cert.Load(), nil
}

// TLS describes the certificate in force.
func (a *Appliance) TLS() (TLSInfo, error) {
	return describeCert(a.cert.Load())
}

func describeCert(c *tls.Certificate) (TLSInfo, error) {
	if c == nil || len(c.Certificate) == 0 {
		return TLSInfo{}, fmt.Errorf("appliance: no machine certificate")
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return TLSInfo{}, err
	}
	sum := sha256.Sum256(leaf.Raw)
	info := TLSInfo{Subject: leaf.Subject.String(), Issuer: leaf.Issuer.String(), DNSNames: slices.Clone(leaf.DNSNames), IPs: []string{},
		NotBefore: leaf.NotBefore.UTC(), NotAfter: leaf.NotAfter.UTC(), Chain: len(c.Certificate), SHA256: hex.EncodeToString(sum[:])}
	if info.DNSNames == nil {
		info.DNSNames = []string{}
	}
	for _, ip := range leaf.IPAddresses {
		info.IPs = append(info.IPs, ip.String())
	}
	info.SelfSigned = bytes.Equal(leaf.RawIssuer, leaf.RawSubject) && leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) == nil
	return info, nil
}

// SetTLS checks an uploaded chain and key and, when they are usable, stores
// them in the data directory and puts them in force. Checked: the PEM
// parses, the key belongs to the leaf, the leaf is valid now and for
// server authentication, and each certificate of the chain is signed by
// the next one.
func (a *Appliance) SetTLS(u TLSUpload) (TLSInfo, error) {
	c, err := tls.X509KeyPair([]byte(u.CertPEM), []byte(u.KeyPEM))
	if err != nil {
		return TLSInfo{}, badRequest("certificate and key do not make a pair: %v (want the chain in PEM, leaf first, and its private key in PEM)", err)
	}
	var chain []*x509.Certificate
	for _, der := range c.Certificate {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return TLSInfo{}, badRequest("certificate %d of the chain: %v", len(chain)+1, err)
		}
		chain = append(chain, cert)
	}
	leaf := chain[0]
	now := time.Now()
	if now.Before(leaf.NotBefore) {
		return TLSInfo{}, badRequest("the certificate is not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(leaf.NotAfter) {
		return TLSInfo{}, badRequest("the certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if len(leaf.ExtKeyUsage) > 0 && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return TLSInfo{}, badRequest("the certificate is not for server authentication (its extended key usage lacks serverAuth)")
	}
	for i := 0; i+1 < len(chain); i++ {
		if err := chain[i].CheckSignatureFrom(chain[i+1]); err != nil {
			return TLSInfo{}, badRequest("certificate %d of the chain (%s) is not signed by certificate %d (%s): put the chain in order, leaf first", i+1, chain[i].Subject, i+2, chain[i+1].Subject)
		}
	}
	c.Leaf = leaf
	if err := writeFileAtomic(filepath.Join(a.cfg.DataDir, keyFile), []byte(u.KeyPEM), 0o600); err != nil {
		return TLSInfo{}, err
	}
	if err := writeFileAtomic(filepath.Join(a.cfg.DataDir, certFile), []byte(u.CertPEM), 0o644); err != nil {
		return TLSInfo{}, err
	}
	a.cert.Store(&c)
	a.log.Warn("machine certificate replaced", "subject", leaf.Subject.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	return describeCert(&c)
}

func (a *Appliance) tlsRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/tls", a.jsonHandler(func(r *http.Request) (any, error) { return a.TLS() }))
	mux.HandleFunc("POST /v1/tls", a.jsonHandler(func(r *http.Request) (any, error) {
		var u TLSUpload
		if err := decodeJSON(r, &u); err != nil {
			return nil, err
		}
		return a.SetTLS(u)
	}))
}
