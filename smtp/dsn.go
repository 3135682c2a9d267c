package smtp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	gosmtp "github.com/emersion/go-smtp"

	"postern/smtp/queue"
)

// bounce reports the Failed recipients of m to its sender with a delivery
// status notification (RFC 3464) and marks them Bounced. No DSN goes to the
// null sender (RFC 5321 §4.5.5: it would loop) or for recipients whose
// NOTIFY excludes FAILURE (RFC 3461 §4.1). It returns false when the DSN
// could not be queued; the recipients stay Failed and are retried.
func (g *Gateway) bounce(ctx context.Context, m *queue.Message) bool {
	var failed, report []int
	for i, r := range m.Recipients {
		if r.Status != queue.Failed {
			continue
		}
		failed = append(failed, i)
		if r.Notify.OnFailure() {
			report = append(report, i)
		}
	}
	if len(failed) == 0 {
		return true
	}
	if m.From != "" && len(report) > 0 {
		content, err := g.q.Content(m.ID)
		if err != nil {
			g.log.Error("smtp: DSN: reading message", slog.String("id", m.ID), slog.String("err", err.Error()))
			return false
		}
		dsn := &queue.Message{
			ID:         g.q.NewID(),
			Arrival:    time.Now(),
			From:       "", // RFC 3464 §2: DSNs use the null reverse path
			Client:     "local DSN for " + m.ID,
			UTF8:       !isASCII(m.From),
			Recipients: []queue.Recipient{{Addr: m.From, Notify: queue.NotifyNever}},
		}
		if err := g.q.Put(ctx, dsn, g.buildDSN(m, report, content, dsn.Arrival, dsn.ID)); err != nil {
			g.log.Error("smtp: DSN: queueing", slog.String("id", m.ID), slog.String("err", err.Error()))
			return false
		}
		g.log.Info("smtp: bounced", slog.String("id", m.ID), slog.String("dsn", dsn.ID), slog.String("to", m.From), slog.Int("rcpts", len(report)))
		g.sch.schedule(dsn.ID, dsn.Arrival, false)
	}
	ups := make([]queue.RecipientUpdate, 0, len(failed))
	for _, i := range failed {
		r := m.Recipients[i]
		r.Status = queue.Bounced
		m.Recipients[i] = r
		ups = append(ups, queue.RecipientUpdate{Index: i, Recipient: r})
	}
	if err := g.q.Update(ctx, m.ID, ups...); err != nil && err != queue.ErrNotFound {
		g.log.Error("smtp: marking bounced", slog.String("id", m.ID), slog.String("err", err.Error()))
	}
	return true
}

// buildDSN writes a multipart/report (RFC 6522) with report-type
// delivery-status: a human-readable part, the message/delivery-status part
// (RFC 3464 §2) and the original message's header section
// (text/rfc822-headers), or the whole message when the sender asked for
// RET=FULL (RFC 3461 §4.3).
func (g *Gateway) buildDSN(m *queue.Message, idx []int, content []byte, now time.Time, id string) []byte {
	var rnd [12]byte
	rand.Read(rnd[:])
	boundary := id + "/" + hex.EncodeToString(rnd[:])
	date := now.Format(time.RFC1123Z)
	var b bytes.Buffer
	w := func(s ...string) {
		for _, x := range s {
			b.WriteString(x)
		}
		b.WriteString("\r\n")
	}
	w("From: Mail Delivery System <MAILER-DAEMON@", g.cfg.Hostname, ">")
	w("To: <", headerSafe(m.From), ">")
	w("Subject: Undelivered Mail Returned to Sender")
	w("Date: ", date)
	w("Message-ID: <", id, "@", g.cfg.Hostname, ">")
	w("Auto-Submitted: auto-replied") // RFC 3834 §5
	w("MIME-Version: 1.0")
	w(`Content-Type: multipart/report; report-type=delivery-status; boundary="`, boundary, `"`)
	w()
	w("This is a MIME-encapsulated message.")
	w()
	w("--", boundary)
	w("Content-Type: text/plain; charset=utf-8")
	w()
	w("This is the mail system at host ", g.cfg.Hostname, ".")
	w()
	w("Your message could not be delivered to one or more recipients.")
	w("It is attached below.")
	w()
	for _, i := range idx {
		r := m.Recipients[i]
		w("<", headerSafe(r.Addr), ">: ", headerSafe(r.Diagnostic))
	}
	w()
	w("--", boundary)
	w("Content-Type: message/delivery-status")
	w()
	// Per-message fields (RFC 3464 §2.2).
	w("Reporting-MTA: dns; ", g.cfg.Hostname)
	w("X-Postern-Queue-ID: ", m.ID)
	if m.EnvID != "" {
		w("Original-Envelope-Id: ", xtext(m.EnvID))
	}
	w("Arrival-Date: ", m.Arrival.Format(time.RFC1123Z))
	// Per-recipient fields (RFC 3464 §2.3), each group after a blank line.
	for _, i := range idx {
		r := m.Recipients[i]
		w()
		if t, a, ok := strings.Cut(r.ORcpt, ";"); ok {
			w("Original-Recipient: ", dsnAddress(t, a))
		}
		w("Final-Recipient: ", dsnAddress("rfc822", r.Addr))
		w("Action: failed")
		w("Status: ", dsnStatus(r.Enhanced))
		if r.RemoteMTA != "" {
			w("Remote-MTA: dns; ", headerSafe(r.RemoteMTA))
			w("Diagnostic-Code: smtp; ", headerSafe(r.Diagnostic))
		} else {
			w("Diagnostic-Code: X-Postern; ", headerSafe(r.Diagnostic))
		}
		if !r.LastAttempt.IsZero() {
			w("Last-Attempt-Date: ", r.LastAttempt.Format(time.RFC1123Z))
		}
	}
	w()
	w("--", boundary)
	if m.Ret == "FULL" {
		w("Content-Type: message/rfc822")
		w()
		b.Write(content)
		if !bytes.HasSuffix(content, []byte("\r\n")) {
			w()
		}
	} else {
		w("Content-Type: text/rfc822-headers")
		w()
		b.Write(headerSection(content))
	}
	w()
	w("--", boundary, "--")
	return b.Bytes()
}

// dsnStatus returns a valid RFC 3464 §2.3.4 status (class 4 or 5).
func dsnStatus(s string) string {
	if len(s) >= 5 && (s[0] == '4' || s[0] == '5') && s[1] == '.' {
		return s
	}
	return "5.0.0"
}

// xtext encodes a value per RFC 3461 §4 for a DSN field.
func xtext(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '!' || c > '~' || c == '+' || c == '=' {
			sb.WriteString("+" + strings.ToUpper(hex.EncodeToString([]byte{c})))
			continue
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

// dsnAddress writes an address-type and address for Original-Recipient and
// Final-Recipient (RFC 3464 §2.3.1-2) in a message/delivery-status part,
// which is US-ASCII: an "rfc822" address of printable ASCII as it is; any
// other (a "utf-8" address of RFC 6533, or a non-ASCII one) as "utf-8" in
// utf-8-addr-xtext (RFC 6533 §3), which encodes control characters and
// non-ASCII as \x{HEX}. No value a client gave reaches the part raw.
func dsnAddress(typ, addr string) string {
	if strings.EqualFold(typ, "rfc822") && isPrintableASCII(addr) {
		return "rfc822; " + addr
	}
	return "utf-8; " + utf8AddrXtext(addr)
}

// utf8AddrXtext encodes s as RFC 6533 §3 utf-8-addr-xtext: QCHAR
// (printable ASCII but '+', '=' and '\\') as it is, every other character
// as \x{HEXPOINT}.
func utf8AddrXtext(s string) string {
	var sb strings.Builder
	for _, r := range s {
		if r > ' ' && r < 0x7f && r != '+' && r != '=' && r != '\\' {
			sb.WriteRune(r)
			continue
		}
		fmt.Fprintf(&sb, "\\x{%X}", r)
	}
	return sb.String()
}

// validORCPT checks a decoded ORCPT address (RFC 3461 §4.2): "rfc822"
// ones are printable US-ASCII (RFC 3461 §4.2); "utf-8" ones (RFC 6533 §3)
// valid UTF-8 without control characters. go-smtp decodes \x{1} to a
// control character and lets it through.
func validORCPT(typ gosmtp.DSNAddressType, addr string) bool {
	switch typ {
	case gosmtp.DSNAddressTypeRFC822:
		return isPrintableASCII(addr)
	case gosmtp.DSNAddressTypeUTF8:
		if !utf8.ValidString(addr) {
			return false
		}
		for _, r := range addr {
			if unicode.IsControl(r) {
				return false
			}
		}
		return true
	}
	return false
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return s != ""
}

// headerSafe drops control characters from a value written into a header
// or a report line: queue entries written before addresses were checked
// may hold them, and a CR or LF there would start a header of its own.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}
