package ldapstore

import (
	"context"
	"fmt"
	"runtime"
	"sync"
)

// AddBatch adds entries in one transaction (one fsync): all of them or, on
// the first refused entry, none. Entries may depend on earlier ones in the
// slice (parents first). It is the loader for LDIF imports: callers split a
// large import into chunks of a few thousand entries. Schema checks and
// password hashing run on all cores before the transaction.
func (s *Store) AddBatch(ctx context.Context, entries []*Entry, by string) error {
	if err := s.writable(); err != nil {
		return err
	}
	reqs := make([]*addReq, len(entries))
	errs := make([]error, len(entries))
	var wg sync.WaitGroup
	next := make(chan int)
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				reqs[i], errs[i] = s.prepareAdd(entries[i], false)
			}
		}()
	}
	for i := range entries {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("ldapstore: add batch entry %d (%s): %w", i, entries[i].DN, err)
		}
	}
	return s.submit(ctx, true, func(w *wtx) error {
		for i, r := range reqs {
			if err := w.add(r, by); err != nil {
				return fmt.Errorf("ldapstore: add batch entry %d (%s): %w", i, r.e.DN, err)
			}
		}
		return nil
	})
}
