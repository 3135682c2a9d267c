package smtp

import (
	"bytes"
	"strings"
	"time"
)

// writeReceived writes the trace header (RFC 5321 §4.4):
//
//	Received: from HELO ([IP])
//		by HOST (Postern) with PROTOCOL id ID
//		for <RCPT>; DATE
//
// PROTOCOL is ESMTP, ESMTPS with TLS (RFC 3848 §2), UTF8SMTP/UTF8SMTPS with
// SMTPUTF8 (RFC 6531 §3.7.3). "for" is given only for a single recipient,
// so that the header does not disclose the other (Bcc) recipients.
func (s *session) writeReceived(b *bytes.Buffer, id string, now time.Time) {
	ip := s.fc.info.remote
	lit := "[" + ip.String() + "]"
	if ip.Is6() {
		lit = "[IPv6:" + ip.String() + "]" // RFC 5321 §4.1.3
	}
	proto := "ESMTP"
	if s.opts.UTF8 {
		proto = "UTF8SMTP"
	}
	if s.fc.tls != nil {
		proto += "S"
	}
	b.WriteString("Received: from ")
	b.WriteString(sanitizeHelo(s.c.Hostname()))
	b.WriteString(" (" + lit + ")\r\n\tby ")
	b.WriteString(s.g.cfg.Hostname)
	if m := s.fc.info.injected; m != "" {
		b.WriteString(" (Postern, injected by member " + sanitizeHelo(m) + ")")
	} else {
		b.WriteString(" (Postern)")
	}
	b.WriteString(" with " + proto + " id " + id)
	if len(s.rcpts) == 1 {
		b.WriteString("\r\n\tfor <" + s.rcpts[0].Addr + ">")
	}
	b.WriteString("; " + now.Format(time.RFC1123Z) + "\r\n")
}

// sanitizeHelo keeps a client-supplied name safe inside a header: domain
// and address-literal characters only, at most 255 of them.
func sanitizeHelo(h string) string {
	var sb strings.Builder
	for i := 0; i < len(h) && sb.Len() < 255; i++ {
		c := h[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '-', c == '_', c == ':', c == '[', c == ']':
			sb.WriteByte(c)
		}
	}
	if sb.Len() == 0 {
		return "unknown"
	}
	return sb.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
