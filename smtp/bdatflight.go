package smtp

import (
	"io"
	"sync"
	"time"
)

// bdatFlight keeps go-smtp's BDAT goroutines apart.
//
// go-smtp v0.25.1 runs Session.Data for a BDAT transfer in a goroutine of
// its own that, after Data returns, sends the result on c.dataResult and
// closes the pipe reader. When the transfer is reset before its LAST chunk
// (RSET, EHLO, a refused chunk), nobody waits for that goroutine, and the
// next BDAT transfer assigns a new c.dataResult while the old goroutine
// may still read the field: a data race (go test -race), and the old
// goroutine can put its "aborted" result into the new transfer's channel,
// so that a message that was queued is answered with a failure (and sent
// again by the client) while the new goroutine blocks for ever.
//
// frontConn therefore lets go-smtp start a new transfer only once the
// goroutine of a reset one has finished: the session records each BDAT
// Data call and each reset, and settle, called before a BDAT line is
// handed to go-smtp, waits until every recorded Data call has returned and
// its pipe reader is closed (go-smtp's last step). A BDAT goroutine is
// recorded before go-smtp answers its BDAT line, because the chunk copy
// cannot finish before Data reads it; the one exception, a zero-octet
// chunk without LAST, never reaches go-smtp (command.go answers it).
type bdatFlight struct {
	mu      sync.Mutex
	entered int
	exited  int
	reader  *io.PipeReader // of the latest BDAT Data call
	stale   bool           // a transfer was reset: its goroutine may run on
}

// begin records that go-smtp called Data for a BDAT transfer with r.
func (f *bdatFlight) begin(r *io.PipeReader) {
	f.mu.Lock()
	f.entered++
	f.reader = r
	f.mu.Unlock()
}

// end records that that Data call returned.
func (f *bdatFlight) end() {
	f.mu.Lock()
	f.exited++
	f.mu.Unlock()
}

// reset records a transaction reset (go-smtp closes the BDAT pipe first).
func (f *bdatFlight) reset() {
	f.mu.Lock()
	if f.reader != nil {
		f.stale = true
	}
	f.mu.Unlock()
}

// settleTimeout bounds the wait; the goroutine has only a buffered send
// and a close left once its Data returned.
const settleTimeout = 5 * time.Second

// settle waits until the goroutine of a reset transfer has finished.
func (f *bdatFlight) settle() {
	deadline := time.Now().Add(settleTimeout)
	for {
		f.mu.Lock()
		stale, done, r := f.stale, f.entered == f.exited, f.reader
		f.mu.Unlock()
		if !stale {
			return
		}
		if done {
			// The writer was closed by the reset (or LAST), so this read
			// does not block: it reports the writer's error until the
			// goroutine closes the reader, then io.ErrClosedPipe.
			if _, err := r.Read(nil); err == io.ErrClosedPipe {
				f.mu.Lock()
				f.stale, f.reader = false, nil
				f.mu.Unlock()
				return
			}
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(50 * time.Microsecond)
	}
}
