package ldapstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"postern/ldapstore/csn"
	"postern/ldapstore/schema"
)

// Options configures a Store. The zero value is usable.
type Options struct {
	Suffix             string        // default "dc=postern,dc=local"
	ServerID           int           // 1..4095, default 1: the sid of CSNs made here
	TombstoneRetention time.Duration // default 7*24h; also changelog retention
	Logger             *slog.Logger  // default discards

	// Now is the clock (default time.Now); tests step it.
	Now func() time.Time
	// PruneInterval is how often old changelog records and tombstones are
	// pruned (default 1h; they are also pruned at Open).
	PruneInterval time.Duration
	// MaxBatch bounds how many writes share one transaction (default 512).
	MaxBatch int
	// MappedBudget bounds, in bytes, the process's file-backed resident
	// memory (RssFile): every MappedCheck the store reads it and, above the
	// budget, releases the pages of its file that reads mapped in
	// (ReleaseMapped). It is also checked every few hundred reads.
	// Default DefaultMappedBudget; negative: no bound.
	MappedBudget int64
	// MappedCheck is how often MappedBudget is checked when few reads
	// come (default 1 s).
	MappedCheck time.Duration
}

// DefaultSuffix is the suffix used when Options.Suffix is empty.
const DefaultSuffix = "dc=postern,dc=local"

// Bucket names (the on-disk layout, version layoutVersion):
//
//	entries:    entryUUID(16) → record (record.go: types and object class
//	            names as numbers, CSN and timestamps in binary, entryUUID
//	            not repeated)
//	names:      number(4, big-endian) → attribute type or object class name
//	            (names.go; given out on first use, never renumbered)
//	dn:         reversed normalised DN key → entryUUID
//	children:   parent entryUUID(16) + child entryUUID(16) → ""
//	idx:        one sub-bucket per indexed attribute (indexedAttrs; Open drops
//	            others and builds missing ones): flag + value + 0 + entryUUID → "";
//	            objectClass posts only an entry's most specific classes (ocindex.go)
//	changelog:  csn.Key (18 bytes, CSN order) → kind(1) + entryUUID(16); the DN
//	            is read from the entry or tombstone when the change is read
//	tombstones: entryUUID(16) → csn.Key(18) + unix seconds(8) + DN
//	meta:       "version" (layoutVersion; Open migrates 2, refuses others), "suffix",
//	            "count", "ctxcsn", "pruned"
var (
	bEntries    = []byte("entries")
	bDN         = []byte("dn")
	bChildren   = []byte("children")
	bIdx        = []byte("idx")
	bChangelog  = []byte("changelog")
	bTombstones = []byte("tombstones")
	bMeta       = []byte("meta")
	bNames      = []byte("names")

	mVersion = []byte("version")
	mSuffix  = []byte("suffix")
	mCount   = []byte("count")
	mCtxCSN  = []byte("ctxcsn")
	mPruned  = []byte("pruned")
)

// layoutVersion is the version of the on-disk layout, kept in the meta
// bucket. Open migrates a file of version 2 (migrate.go) and refuses any
// other. Version 3: DN keys and index keys are prepared with RFC 4518
// (package stringprep), and records may hold attribute descriptions with
// options ("cn;lang-de").
const layoutVersion = 3

// indexedAttrs are the attributes with equality indexes (canonical names).
// entryUUID is answered by the entries bucket itself.
// entryCSN is not among them: slapd indexes it for syncprov's own
// searches, Postern's provider reads its changelog, and the index cost
// every write two more leaf pages (see syncIndexes for files that have it).
var indexedAttrs = []string{"objectClass", "cn", "uid", "mail", "member", "uniqueMember", "posternDeviceID"}

// Store is the directory store. It is safe for concurrent use.
type Store struct {
	db     *bolt.DB
	opts   Options
	log    *slog.Logger
	sch    *schema.Schema
	gen    *csn.Generator
	now    func() time.Time
	suffix string   // as configured
	sufRDN []string // normalised RDNs of the suffix
	sufKey []byte

	indexed   map[*schema.AttributeType]bool
	structOC  *schema.AttributeType
	ocAttr    *schema.AttributeType
	pwAttr    *schema.AttributeType
	extensOC  *schema.ObjectClass
	topOC     *schema.ObjectClass
	ocSubs    ocSubclasses
	bases     baseCache
	operAttrs map[string]*schema.AttributeType
	rules     sync.Map // objectClass list → *classRules (validate.go)
	nrules    atomic.Int32

	queue     chan *op
	quit      chan struct{}
	closeOnce sync.Once
	closed    atomic.Bool
	wg        sync.WaitGroup
	submitMu  sync.RWMutex // held shared while enqueueing, exclusively by Close
	commitMu  sync.Mutex   // held by whoever runs a write transaction (writer.go)

	mu        sync.Mutex // guards ctxCSN, pruned, subs, openedCtx, lost
	ctxCSN    csn.Vector
	pruned    csn.Vector
	openedCtx csn.Vector // ctxCSN when the store was opened (rollback.go)
	lost      csn.CSN    // newest own change a peer holds that this store lacks (rollback.go)
	recovered csn.CSN    // own changes up to here are back from peers (rollback.go)
	// writeBlock refuses local writes when not "" (writeblock.go)
	writeBlock string
	subs       map[int]subscriber
	subSeq     int

	count atomic.Int64
	stats counters
	// reads counts read transactions; mappedKick asks mappedGuard to
	// check the mapped budget (mapped.go)
	reads      atomic.Uint64
	mappedKick chan struct{}
	names      atomic.Pointer[names] // committed numbering of types and values (names.go)
}

// ErrClosed is returned by operations on a closed store.
var ErrClosed = errors.New("ldapstore: store closed")

// errLayoutVersion is returned by Open for a file written in another
// layout version (there is no migration between them).
var errLayoutVersion = errors.New("ldapstore: unsupported database layout version")

// Open opens (creating if needed) the store in the bbolt file at path.
func Open(path string, opts Options) (*Store, error) {
	if opts.Suffix == "" {
		opts.Suffix = DefaultSuffix
	}
	if opts.ServerID == 0 {
		opts.ServerID = 1
	}
	if opts.ServerID < 0 || opts.ServerID > csn.MaxSID {
		return nil, fmt.Errorf("ldapstore: server ID %d out of range 1..%d", opts.ServerID, csn.MaxSID)
	}
	if opts.TombstoneRetention <= 0 {
		opts.TombstoneRetention = 7 * 24 * time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PruneInterval <= 0 {
		opts.PruneInterval = time.Hour
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	if opts.MappedBudget == 0 {
		opts.MappedBudget = DefaultMappedBudget
	}
	if opts.MappedCheck <= 0 {
		opts.MappedCheck = time.Second
	}
	s := &Store{
		opts:   opts,
		log:    opts.Logger,
		sch:    schema.Default(),
		now:    opts.Now,
		suffix: opts.Suffix,
		queue:  make(chan *op, 4096),
		quit:   make(chan struct{}),
		subs:   map[int]subscriber{},

		mappedKick: make(chan struct{}, 1),
	}
	s.gen = csn.NewGenerator(uint16(opts.ServerID), opts.Now)
	rdns, err := s.sch.NormalizeRDNs(opts.Suffix)
	if err != nil || len(rdns) == 0 {
		return nil, fmt.Errorf("ldapstore: bad suffix %q: %v", opts.Suffix, err)
	}
	s.sufRDN, s.sufKey = rdns, dnKey(rdns)
	s.indexed = map[*schema.AttributeType]bool{}
	for _, n := range indexedAttrs {
		s.indexed[s.sch.Attr(n)] = true
	}
	s.ocAttr = s.sch.Attr("objectClass")
	s.structOC = s.sch.Attr("structuralObjectClass")
	s.pwAttr = s.sch.Attr("userPassword")
	s.extensOC = s.sch.Class("extensibleObject")
	s.topOC = s.sch.Class("top")

	// bbolt options:
	//   - NoSync false: every commit is fsynced, so an acknowledged write
	//     survives kill -9 and power loss; group commit amortises the fsync.
	//   - InitialMmapSize 1 GiB: address space only (resident pages are what
	//     is read), and the file can grow that far without a remap, which
	//     would wait for every open read transaction.
	//   - FreelistMapType: O(1) page allocation in large files.
	//   - NoFreelistSync stays false: it would save a page write per commit
	//     but makes Open scan every page to rebuild the freelist, which
	//     faults the whole file into memory (the RSS budget) and is slow.
	//   - Timeout: a second process opening the same file fails instead of
	//     hanging on the file lock.
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         2 * time.Second,
		InitialMmapSize: 1 << 30,
		FreelistType:    bolt.FreelistMapType,
		NoSync:          false,
	})
	if err != nil {
		return nil, fmt.Errorf("ldapstore: open %s: %w", path, err)
	}
	s.db = db
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	if c, ok := s.ctxCSN[uint16(opts.ServerID)]; ok {
		s.gen.Observe(c)
	}
	s.openedCtx = s.ctxCSN.Clone()
	s.wg.Add(2)
	go s.writer()
	go s.pruner()
	if opts.MappedBudget > 0 {
		s.wg.Add(1)
		go s.mappedGuard()
	}
	return s, nil
}

// init creates the buckets and loads the counters and context CSN.
func (s *Store) init() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bEntries, bDN, bChildren, bIdx, bChangelog, bTombstones, bMeta, bNames} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("ldapstore: create bucket %s: %w", b, err)
			}
		}
		meta := tx.Bucket(bMeta)
		migrate := false
		if v := meta.Get(mVersion); v == nil {
			if err := meta.Put(mVersion, []byte{layoutVersion}); err != nil {
				return err
			}
			if err := meta.Put(mSuffix, s.sufKey); err != nil {
				return err
			}
		} else if len(v) == 1 && v[0] == 2 {
			migrate = true
		} else if len(v) != 1 || v[0] != layoutVersion {
			return fmt.Errorf("%w: the file has version %v, this build reads versions 2 and %d", errLayoutVersion, v, layoutVersion)
		} else if string(meta.Get(mSuffix)) != string(s.sufKey) {
			return fmt.Errorf("ldapstore: database holds another suffix than %q", s.suffix)
		}
		nm, err := loadNames(tx.Bucket(bNames))
		if err != nil {
			return err
		}
		s.names.Store(nm)
		if migrate {
			if err := s.migrate2(tx); err != nil {
				return err
			}
		}
		if err := s.syncIndexes(tx); err != nil {
			return err
		}
		if v := meta.Get(mCount); len(v) == 8 {
			s.count.Store(int64(binary.BigEndian.Uint64(v)))
		}
		if s.ctxCSN, err = decodeVector(meta.Get(mCtxCSN)); err != nil {
			return err
		}
		s.pruned, err = decodeVector(meta.Get(mPruned))
		return err
	})
}

// syncIndexes makes the file's index sub-buckets the ones this build
// maintains (indexedAttrs): an index it no longer maintains is dropped (it
// would go stale, and answer wrongly should a later build use it again), and
// a new one is built from the entries, in the opening transaction.
func (s *Store) syncIndexes(tx *bolt.Tx) error {
	idx := tx.Bucket(bIdx)
	want := map[string]*schema.AttributeType{}
	for at := range s.indexed {
		want[at.Name()] = at
	}
	var drop [][]byte
	err := idx.ForEach(func(k, v []byte) error {
		if v == nil && want[string(k)] == nil {
			drop = append(drop, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range drop {
		if err := idx.DeleteBucket(k); err != nil {
			return fmt.Errorf("ldapstore: drop index %s: %w", k, err)
		}
		s.log.Info("ldapstore: index dropped (not maintained by this version)", slog.String("attribute", string(k)))
	}
	build := map[*schema.AttributeType]*bolt.Bucket{}
	for name, at := range want {
		if idx.Bucket([]byte(name)) != nil {
			continue
		}
		sub, err := idx.CreateBucket([]byte(name))
		if err != nil {
			return fmt.Errorf("ldapstore: create index %s: %w", name, err)
		}
		build[at] = sub
	}
	if len(build) == 0 {
		return nil
	}
	if k, _ := tx.Bucket(bEntries).Cursor().First(); k == nil {
		return nil
	}
	b := s.bucketsOf(tx)
	n := 0
	err = b.entries.ForEach(func(k, v []byte) error {
		r, err := b.decodeRecord(k, v, 0)
		if err != nil {
			return fmt.Errorf("ldapstore: build indexes: entry %x: %w", k, err)
		}
		id, _ := uuid.FromBytes(k)
		for at, vals := range s.indexedValues(r.entry) {
			if sub := build[at]; sub != nil {
				for _, key := range s.indexKeys(at, vals, id) {
					if err := sub.Put(key, nil); err != nil {
						return err
					}
				}
			}
		}
		n++
		return nil
	})
	if err != nil {
		return err
	}
	for at := range build {
		s.log.Info("ldapstore: index built", slog.String("attribute", at.Name()), slog.Int("entries", n))
	}
	return nil
}

// Close stops the writer and the pruner after the queued writes are done,
// and closes the file.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.submitMu.Lock()
		s.closed.Store(true)
		s.submitMu.Unlock()
		close(s.quit)
		s.wg.Wait()
		s.mu.Lock()
		for id, sub := range s.subs {
			close(sub.ch)
			delete(s.subs, id)
		}
		s.mu.Unlock()
		if e := s.db.Close(); e != nil {
			err = fmt.Errorf("ldapstore: close: %w", e)
		}
	})
	return err
}

// Suffix returns the configured suffix DN.
func (s *Store) Suffix() string { return s.suffix }

// Schema returns the store's schema.
func (s *Store) Schema() *schema.Schema { return s.sch }

// ServerID returns the server ID of the CSNs this store makes.
func (s *Store) ServerID() int { return int(s.gen.SID()) }

// ContextCSN returns a copy of the newest CSN per server ID.
func (s *Store) ContextCSN() csn.Vector {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ctxCSN.Clone()
}

// Count returns the number of live entries.
func (s *Store) Count(ctx context.Context) (int, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	return int(s.count.Load()), ctx.Err()
}

// dnKey is the dn bucket key of a DN given its normalised RDNs (most
// specific first): the RDNs from the root down, joined by 0, so that a
// subtree is a key range (normalised RDNs never hold a raw 0 byte).
func dnKey(rdns []string) []byte {
	n := 0
	for _, r := range rdns {
		n += len(r) + 1
	}
	k := make([]byte, 0, n)
	for i := len(rdns) - 1; i >= 0; i-- {
		k = append(k, rdns[i]...)
		if i > 0 {
			k = append(k, 0)
		}
	}
	return k
}

// keyRDNs reverses dnKey.
func keyRDNs(k []byte) []string {
	parts := strings.Split(string(k), "\x00")
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return parts
}

func encodeVector(v csn.Vector) []byte {
	b := make([]byte, 0, len(v)*csn.KeyLen)
	for _, id := range v.SIDs() {
		b = v[id].AppendKey(b)
	}
	return b
}

func decodeVector(b []byte) (csn.Vector, error) {
	v := csn.Vector{}
	if len(b)%csn.KeyLen != 0 {
		return nil, fmt.Errorf("ldapstore: corrupt CSN vector of %d bytes", len(b))
	}
	for i := 0; i < len(b); i += csn.KeyLen {
		c, err := csn.FromKey(b[i : i+csn.KeyLen])
		if err != nil {
			return nil, err
		}
		v.Update(c)
	}
	return v, nil
}
