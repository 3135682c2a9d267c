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
func (s *Store) ReleaseMapped() error { return s.releaseMapped(0, 1) }

// releaseMapped releases part i (from 0) of n equal parts of the file's
// map, rounded to pages.
func (s *Store) releaseMapped(i, n int64) error {
	if s.closed.Load() {
		return ErrClosed
	}
	// a read transaction holds bbolt's mmap lock: no remap meanwhile
	return s.db.View(func(tx *bolt.Tx) error {
		info := s.db.Info()
		page := int64(os.Getpagesize())
		pages := (tx.Size() + page - 1) / page
		from, to := pages*i/n*page, pages*(i+1)/n*page
		if to <= from {
			return nil
		}
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, info.Data+uintptr(from), uintptr(to-from), syscall.MADV_DONTNEED); errno != 0 {
			return fmt.Errorf("ldapstore: release mapped pages: %w", errno)
		}
		return nil
	})
}

// DefaultMappedBudget is the default Options.MappedBudget: 64 MiB of
// file-backed resident memory (the executable's own pages count too, about
// 10 MiB). With 100,000 users the store file is about 90 MB, and uid
// searches touch most of it within a second: unbounded, the process would
// hold all of it.
const DefaultMappedBudget = 64 << 20

// mappedEvery is how many reads pass between two checks of the budget: a
// check reads /proc/self/statm (a few microseconds), and 256 reads map at
// most a few MiB more.
const mappedEvery = 256

// noteRead counts a read transaction and, every mappedEvery, asks the
// guard to check the budget. It never blocks.
func (s *Store) noteRead() {
	if s.opts.MappedBudget > 0 && s.reads.Add(1)%mappedEvery == 0 {
		select {
		case s.mappedKick <- struct{}{}:
		default:
		}
	}
}

// mappedGuard releases half of the store's mapped pages whenever the
// process's file-backed resident memory exceeds Options.MappedBudget (the
// halves of the file in turn, so that what was read recently in the other
// half stays mapped); it checks every mappedEvery reads (noteRead) and every
// MappedCheck. The trade-off: the first read of a page after a release
// takes a minor fault (the page is still in the kernel's page cache: no disk
// read), so a search workload whose working set exceeds the budget pays a
// fault per page it touches again after each release, and the memory stays
// within the budget plus what mappedEvery reads map. Measured with 100,000
// users (a 90 MB file that uid searches touch all of), 8 clients: 24,000
// uid searches/s unbounded; with a 40 MiB budget and whole releases 19,000.
func (s *Store) mappedGuard() {
	defer s.wg.Done()
	tick := time.NewTicker(s.opts.MappedCheck)
	defer tick.Stop()
	half := 0
	for {
		select {
		case <-s.quit:
			return
		case <-tick.C:
		case <-s.mappedKick:
		}
		n, ok := rssFile()
		if !ok {
			return // no /proc: nothing to measure, nothing to bound
		}
		if n <= s.opts.MappedBudget {
			continue
		}
		if err := s.releaseMapped(int64(half), 2); err != nil {
			if !errors.Is(err, ErrClosed) {
				s.log.Warn("ldapstore: release mapped pages", errAttr(err))
			}
			continue
		}
		s.stats.releases.Add(1)
		half ^= 1
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
