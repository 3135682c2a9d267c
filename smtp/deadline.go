package smtp

import (
	"log/slog"
	"time"
)

// Time limits of a client connection. A per-read timeout alone lets a client
// that sends one octet now and then hold a connection slot for ever; these
// are overall limits, so that MaxConns and MaxConnsPerIP cannot be held by
// trickling clients:
//
//   - a command line must be complete within ReadTimeout of when the
//     server began to wait for it (RFC 5321 §4.5.3.2.7 gives 5 minutes for
//     a command);
//   - a message (a DATA body, or a sequence of BDAT chunks and the
//     commands between them) must arrive at MinDataRate on average after a
//     grace of DataTimeout: it ends by start + DataTimeout +
//     received/MinDataRate, which is at most the size limit at the floor rate
//     (Postfix's smtpd_min_data_rate with smtpd_per_request_deadline); every
//     read also still has DataTimeout (RFC 5321 §4.5.3.2.6);
//   - the session takes no new command after SessionTimeout; a message that
//     has started is allowed to finish under its own deadline, so a
//     session lasts at most SessionTimeout and one message.
//
// When a limit passes, the server answers 421 4.4.2 and closes (RFC 5321
// §3.8, §4.2.3).

// deadline returns when the current read must end and the name of the
// limit that sets it.
func (c *frontConn) deadline(now time.Time) (time.Time, string) {
	cfg := &c.g.cfg
	in := &c.in
	var d time.Time
	var why string
	if in.mode == inCommand {
		start := now
		if in.waiting {
			start = in.lineStart
		}
		d, why = start.Add(cfg.ReadTimeout), "command"
		if s := c.info.sessionEnd; s.Before(d) {
			d, why = s, "session"
		}
	} else {
		d, why = now.Add(cfg.DataTimeout), "data block"
	}
	if in.msg {
		if m := in.msgStart.Add(cfg.DataTimeout + rateTime(in.msgBytes, cfg.MinDataRate)); m.Before(d) {
			d, why = m, "message"
		}
	}
	return d, why
}

// setReadDeadline sets the socket's read deadline to dl, the limit named
// why, unless the one set is no later than dl and less than a 64th of the
// shorter timeout earlier: resetting a runtime timer on every read was 5 %
// of the gateway's CPU (issue 16), and ending a read a little before its
// limit (5 s of 5 min by default) changes nothing a client can rely on.
func (c *frontConn) setReadDeadline(dl time.Time, why string) {
	in := &c.in
	slack := min(c.g.cfg.ReadTimeout, c.g.cfg.DataTimeout) / 64
	if !in.dl.IsZero() && !in.dl.After(dl) && dl.Sub(in.dl) < slack {
		return
	}
	c.Conn.SetReadDeadline(dl)
	in.dl, in.dlWhy = dl, why
}

// rateTime is how long n octets take at rate octets per second.
func rateTime(n, rate int64) time.Duration {
	return time.Duration(float64(n) / float64(rate) * float64(time.Second))
}

// timeout answers 421 and closes: called when a read passed its deadline.
func (c *frontConn) timeout(why string) {
	c.g.log.Info("smtp: time limit exceeded, closing",
		slog.String("client", c.info.remote.String()), slog.String("limit", why))
	c.say("421 4.4.2 " + c.g.cfg.Hostname + " Error: timeout exceeded, closing connection")
}
