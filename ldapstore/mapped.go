package ldapstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ReleaseMapped unmaps, from this process, the pages of the store file
// that reads have mapped in (madvise MADV_DONTNEED on bbolt's read-only
// memory map). The pages stay in the kernel's page cache, and the next
// read maps what it needs again; nothing is lost, since bbolt writes
// through the file, never through the map. A bulk load (a join's copy of
// a large tree) calls it every so often: its inserts walk the whole file,
// and the mapped pages would otherwise count in the process's resident
// memory up to the file's size.
func (s *Store) ReleaseMapped() error {
	if s.closed.Load() {
		return ErrClosed
	}
	// a read transaction holds bbolt's mmap lock: no remap meanwhile
	return s.db.View(func(tx *bolt.Tx) error {
		info := s.db.Info()
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, info.Data, uintptr(tx.Size()), syscall.MADV_DONTNEED); errno != 0 {
			return fmt.Errorf("ldapstore: release mapped pages: %w", errno)
		}
		return nil
	})
}

// DefaultMappedBudget is the default Options.MappedBudget: 48 MiB of
// file-backed resident memory. With 100,000 users the store file is about
// 94 MB and a process that had read all of it would hold it all; under the
// budget it holds at most this much plus what one MappedCheck of reads maps.
const DefaultMappedBudget = 48 << 20

// mappedGuard releases the store's mapped pages whenever the process's
// file-backed resident memory exceeds Options.MappedBudget. The trade-off:
// the first read of a page after a release takes a minor fault (the page
// is still in the kernel's page cache, no disk read), a few microseconds
// per 64 KiB of file (the kernel maps 16 pages around a fault); a search
// workload whose working set exceeds the budget pays that once per
// release, not per read.
func (s *Store) mappedGuard() {
	defer s.wg.Done()
	tick := time.NewTicker(s.opts.MappedCheck)
	defer tick.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-tick.C:
		}
		n, ok := rssFile()
		if !ok {
			return // no /proc: nothing to measure, nothing to bound
		}
		if n <= s.opts.MappedBudget {
			continue
		}
		if err := s.ReleaseMapped(); err != nil && !errors.Is(err, ErrClosed) {
			s.log.Warn("ldapstore: release mapped pages", errAttr(err))
		} else {
			s.stats.releases.Add(1)
		}
	}
}

// rssFile returns the process's file-backed and shared resident memory in
// bytes: the third field of /proc/self/statm (proc(5)), in pages. It
// reads kernel counters, without walking page tables.
func rssFile() (int64, bool) {
	f, err := os.Open("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	var buf [128]byte
	n, _ := f.Read(buf[:])
	fields := bytes.Fields(buf[:n])
	if len(fields) < 3 {
		return 0, false
	}
	pages, err := strconv.ParseInt(string(fields[2]), 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * int64(os.Getpagesize()), true
}
