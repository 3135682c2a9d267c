package ldapstore

import (
	"fmt"
	"syscall"

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
