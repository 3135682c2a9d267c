package smtp

import (
	"errors"
	"log/slog"
	"syscall"
)

// The queue's file system must keep room for the messages the gateway has
// said yes to. RFC 5321 §4.2.2 and §4.5.3.1.10: 452 "insufficient system
// storage", with RFC 3463 X.3.1 "mail system full"; given at MAIL and RCPT,
// before the client sends a body, as Postfix does (smtpd refuses MAIL when
// the free space is under 1.5 times message_size_limit, or under the
// declared SIZE plus queue_minfree). A write that still meets a full disk
// (ENOSPC, EDQUOT) gets the same temporary code at the end of the data; the
// queue cuts the partial record, so what it already holds stays intact.

var errStorage = newError(452, [3]int{4, 3, 1}, "Insufficient system storage", nil)

// storageCheck refuses a transaction when the queue's file system has less
// than MinFreeBytes free beyond the size the client declared (SIZE, RFC
// 1870). When the free space cannot be read, it refuses nothing.
func (g *Gateway) storageCheck(declared int64) *Error {
	free, err := g.cfg.FreeSpace(g.cfg.DataDir)
	if err != nil {
		g.log.Warn("smtp: cannot read the queue's free space", slog.String("dir", g.cfg.DataDir), slog.String("err", err.Error()))
		return nil
	}
	if free < g.cfg.MinFreeBytes+max(declared, 0) {
		g.log.Warn("smtp: queue file system nearly full, refusing mail",
			slog.Int64("free_bytes", free), slog.Int64("min_free_bytes", g.cfg.MinFreeBytes), slog.Int64("declared_size", declared))
		return errStorage
	}
	return nil
}

// isNoSpace reports a write that failed because the disk or quota is full.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
