package secure

import (
	"crypto/x509"
	"encoding/asn1"
	"slices"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// Whom a certificate or key names. A signature vouches for a message only
// when its signer names the message's From address, and the appliance
// stores a certificate or key only for an address or domain it names.

// oidEmailAddress is PKCS #9 emailAddress, the address in a subject DN.
var oidEmailAddress = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}

// CertAddresses returns the mail addresses a certificate names, lower
// case: its subjectAltName rfc822Names and (RFC 8550 §3: receiving agents
// recognise it) the emailAddress attribute of its subject.
func CertAddresses(c *x509.Certificate) []string {
	var out []string
	add := func(a string) {
		if a = strings.ToLower(strings.TrimSpace(a)); a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	for _, e := range c.EmailAddresses {
		add(e)
	}
	for _, n := range c.Subject.Names {
		if n.Type.Equal(oidEmailAddress) {
			if s, ok := n.Value.(string); ok {
				add(s)
			}
		}
	}
	return out
}

// CertNames reports whether a certificate names owner: an address among
// its addresses; a domain when it names an address in the domain, or the
// domain as a dNSName or as its subject's common name (a domain
// encryption certificate). owner is lower case.
func CertNames(c *x509.Certificate, owner string) bool {
	addrs := CertAddresses(c)
	if strings.Contains(owner, "@") {
		return slices.Contains(addrs, owner)
	}
	for _, a := range addrs {
		if strings.HasSuffix(a, "@"+owner) {
			return true
		}
	}
	for _, d := range c.DNSNames {
		if strings.EqualFold(strings.TrimSuffix(d, "."), owner) {
			return true
		}
	}
	return strings.EqualFold(strings.TrimSuffix(c.Subject.CommonName, "."), owner)
}

// entityAddresses returns the mail addresses of an OpenPGP key's user IDs
// that are not revoked at now, lower case.
func entityAddresses(e *openpgp.Entity, now time.Time) []string {
	var out []string
	for _, id := range e.Identities {
		if id.UserId == nil || id.Revoked(now) {
			continue
		}
		if a := strings.ToLower(strings.TrimSpace(id.UserId.Email)); a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out
}

// PGPAddresses returns the mail addresses of the user IDs of the keys in
// an armoured block, one list per key, in the order of the block.
func PGPAddresses(armoured []byte, now time.Time) ([][]string, error) {
	es, err := readEntities(armoured)
	if err != nil {
		return nil, err
	}
	var out [][]string
	for _, e := range es {
		out = append(out, entityAddresses(e, now))
	}
	return out, nil
}

// AddressesName reports whether a list of addresses names owner: the
// address itself, or for a domain an address in it. owner is lower case.
func AddressesName(addrs []string, owner string) bool {
	for _, a := range addrs {
		if a == owner || (!strings.Contains(owner, "@") && strings.HasSuffix(a, "@"+owner)) {
			return true
		}
	}
	return false
}

// headerToken makes text from outside (an address a certificate or key
// claims) safe as one value of ResultHeader: printable ASCII but white
// space, ';', '"' and '\', which become '?', at most 256 octets.
func headerToken(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 256 {
			break
		}
		if r <= ' ' || r >= 0x7f || r == ';' || r == '"' || r == '\\' {
			b.WriteByte('?')
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
