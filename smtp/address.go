package smtp

import (
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"
)

// mailbox is an envelope address, RFC 5321 §4.1.2:
//
//	Mailbox      = Local-part "@" ( Domain / address-literal )
//	Local-part   = Dot-string / Quoted-string
//
// local is the local part as meant, without the quotes and backslashes of a
// Quoted-string (go-smtp hands it over decoded). String gives the form it
// must have on the wire and in the queue: a Dot-string when it is one,
// otherwise a Quoted-string. Storing the decoded form and sending it
// unquoted turned RCPT TO:<"victim@external.org> ORCPT=rfc822;x"@nousers.test>
// into two parameters at the next hop (issue 9, item 2).
type mailbox struct {
	local  string
	domain string // lower-case name, or a canonical address literal
}

// String returns the address in its RFC 5321 §4.1.2 form.
func (m mailbox) String() string { return quoteLocal(m.local) + "@" + m.domain }

// addrProblem says why an address is refused.
type addrProblem int

const (
	addrOK     addrProblem = iota
	addrSyntax             // RFC 3463 X.1.3 / X.1.7: bad syntax (control characters, bad domain, too long)
	addrUTF8               // non-ASCII without SMTPUTF8 (RFC 6531 §3.5)
)

// checkMailbox validates an address as go-smtp decoded it. Non-ASCII is
// accepted only with SMTPUTF8 (RFC 6531 §3.3), and then only as valid
// UTF-8. Control characters (NUL, CR, DEL, C1 ...) are never part of an
// address: qtextSMTP and quoted-pairSMTP allow %d32-126 only (RFC 5321
// §4.1.2), so a decoded local part with one was never valid.
func checkMailbox(addr string, smtputf8 bool) (mailbox, addrProblem) {
	i := strings.LastIndexByte(addr, '@') // a domain has no '@'; a quoted local part may
	if i <= 0 || i == len(addr)-1 {
		return mailbox{}, addrSyntax
	}
	local, domain := addr[:i], addr[i+1:]
	if p := checkText(local, smtputf8); p != addrOK {
		return mailbox{}, p
	}
	if p := checkText(domain, smtputf8); p != addrOK {
		return mailbox{}, p
	}
	d, ok := canonicalDomain(domain)
	if !ok {
		return mailbox{}, addrSyntax
	}
	m := mailbox{local: local, domain: d}
	// RFC 5321 §4.5.3.1.1-2: 64 octets of local part, 255 of domain.
	if len(quoteLocal(local)) > 64 || len(d) > 255 {
		return mailbox{}, addrSyntax
	}
	return m, addrOK
}

// checkText refuses control characters, and non-ASCII unless smtputf8 and
// valid UTF-8.
func checkText(s string, smtputf8 bool) addrProblem {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return addrSyntax
		}
		if c >= 0x80 {
			if !smtputf8 {
				return addrUTF8
			}
			if !utf8.ValidString(s) {
				return addrSyntax
			}
			for _, r := range s {
				if unicode.IsControl(r) {
					return addrSyntax
				}
			}
			return addrOK
		}
	}
	return addrOK
}

// canonicalDomain checks a Domain or address-literal (RFC 5321 §4.1.2-3)
// and returns it lower-cased, literals in canonical form.
func canonicalDomain(d string) (string, bool) {
	if strings.HasPrefix(d, "[") {
		if !strings.HasSuffix(d, "]") {
			return "", false
		}
		lit := d[1 : len(d)-1]
		if len(lit) > 5 && strings.EqualFold(lit[:5], "IPv6:") {
			ip, err := netip.ParseAddr(lit[5:])
			if err != nil || !ip.Is6() || ip.Zone() != "" {
				return "", false
			}
			return "[IPv6:" + ip.String() + "]", true
		}
		ip, err := netip.ParseAddr(lit)
		if err != nil || !ip.Is4() {
			return "", false // General-address-literal: no standardized tag we route
		}
		return "[" + ip.String() + "]", true
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c >= 0x80) {
				return "", false
			}
		}
	}
	return strings.ToLower(d), true
}

// isAtext reports RFC 5322 §3.2.3 atext, with UTF-8 (RFC 6531 §3.3).
func isAtext(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80 ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// isDotString reports Dot-string = Atom *("." Atom) (RFC 5321 §4.1.2).
func isDotString(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '.' && !isAtext(s[i]) {
			return false
		}
	}
	return true
}

// quoteLocal gives a (valid, decoded) local part its wire form: itself
// when it is a Dot-string, else a Quoted-string with '"' and '\' as
// quoted-pairs.
func quoteLocal(local string) string {
	if isDotString(local) {
		return local
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(local); i++ {
		if c := local[i]; c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(local[i])
	}
	b.WriteByte('"')
	return b.String()
}

// validWireMailbox reports whether s, an address in its wire form, is
// exactly one RFC 5321 Mailbox with nothing after it. Delivery checks
// every address with it before it goes into a command to the next hop.
func validWireMailbox(s string, smtputf8 bool) bool {
	_, ok := parseWireMailbox(s, smtputf8)
	return ok
}

// parseWireMailbox parses an address in its wire form: a Dot-string or
// Quoted-string local part, '@', a domain or literal in canonical form.
func parseWireMailbox(s string, smtputf8 bool) (mailbox, bool) {
	var local strings.Builder
	i := 0
	if strings.HasPrefix(s, `"`) {
		for i = 1; ; i++ {
			if i >= len(s) {
				return mailbox{}, false
			}
			c := s[i]
			if c == '"' {
				i++
				break
			}
			if c == '\\' {
				if i++; i >= len(s) {
					return mailbox{}, false
				}
				c = s[i]
			}
			local.WriteByte(c)
		}
	} else {
		for i < len(s) && s[i] != '@' {
			local.WriteByte(s[i])
			i++
		}
		if !isDotString(local.String()) {
			return mailbox{}, false
		}
	}
	if i >= len(s) || s[i] != '@' || local.Len() == 0 {
		return mailbox{}, false
	}
	m, p := checkMailbox(local.String()+s[i:], smtputf8)
	if p != addrOK || !strings.EqualFold(m.domain, s[i+1:]) {
		return mailbox{}, false
	}
	return m, true
}
