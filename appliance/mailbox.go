package appliance

import (
	"errors"
	"fmt"
	"strings"
)

// checkMailbox checks an address given to `postern keys` or `postern
// policy` (and their API): an RFC 5321 §4.1.2 Mailbox in the form a
// certificate's rfc822Name and an OpenPGP user ID carry, a Dot-string
// local part "@" a domain name. Quoted local parts, address literals and
// non-ASCII addresses are refused; the error says what is wrong.
func checkMailbox(addr string) error {
	for _, r := range addr {
		switch {
		case r == '"':
			return errors.New(`it has a quote ("): quoted local parts are not supported`)
		case r == ' ' || r == '\t':
			return errors.New("it has a space")
		case r < 0x20 || r == 0x7f:
			return errors.New("it has a control character")
		case r > 0x7f:
			return errors.New("it has non-ASCII characters (internationalised addresses are not supported)")
		}
	}
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return errors.New("it has no @")
	}
	local, domain := addr[:i], addr[i+1:]
	switch {
	case local == "":
		return errors.New("the local part before @ is empty")
	case len(local) > 64:
		return errors.New("the local part is longer than 64 characters (RFC 5321 §4.5.3.1.1)")
	case len(addr) > 254:
		return errors.New("it is longer than 254 characters (RFC 5321 §4.5.3.1.3)")
	case strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") || strings.Contains(local, ".."):
		return errors.New("the local part starts or ends with a dot, or has two in a row")
	}
	for _, r := range local {
		if !isAtext(r) && r != '.' {
			return fmt.Errorf("the local part has %q: allowed are letters, digits, dots and !#$%%&'*+-/=?^_`{|}~", r)
		}
	}
	if strings.HasPrefix(domain, "[") {
		return errors.New("address literals ([...]) are not supported: give a domain name")
	}
	if !strings.Contains(domain, ".") || !validHostname(strings.TrimSuffix(domain, ".")) {
		return fmt.Errorf("%q is not a domain name", domain)
	}
	return nil
}

// isAtext reports whether r is RFC 5322 §3.2.3 atext.
func isAtext(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
}

// checkOwnerName checks an address or domain name given to `postern keys`
// or `postern policy`; the error names it and says what is wrong.
func checkOwnerName(name string) error {
	n := strings.TrimSpace(name)
	if strings.Contains(n, "@") {
		if err := checkMailbox(n); err != nil {
			return fmt.Errorf("invalid address %q: %v", name, err)
		}
		return nil
	}
	if strings.ContainsFunc(n, func(r rune) bool { return r < 0x20 || r == 0x7f || r == ' ' || r > 0x7f }) {
		return fmt.Errorf("invalid domain name %q: it has a space, a control or a non-ASCII character", name)
	}
	if d := strings.TrimSuffix(strings.ToLower(n), "."); !strings.Contains(d, ".") || !validHostname(d) {
		return fmt.Errorf("invalid domain name %q: want a name such as example.com", name)
	}
	return nil
}
