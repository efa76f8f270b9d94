// Package filestore reads and writes a PROMETHEUS_MULTIPROC_DIR: the *.db
// shard files of Python prometheus_client's multiprocess mode, in both the
// 8-byte (prometheus_client < 0.18) and the 16-byte value+timestamp
// layout (see docs/formats.md, section 1).
//
// Readers never trust a byte past a file's used size or its length, so
// files that live Python processes are writing can be read at any time.
package filestore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/promstore/promstore/internal/store"
)

func init() {
	store.Register("file", func(ctx context.Context, loc store.Location) (store.Store, error) {
		return Open(ctx, loc.Dir, Options{})
	})
}

// Options configures a file store.
type Options struct {
	// Layout is the entry layout WriteShard writes: LayoutLegacy (8, read
	// by prometheus_client < 0.18) or LayoutTimestamp (16, read by
	// prometheus_client >= 0.18). Zero means LayoutTimestamp.
	Layout int
	// Alive tells whether a shard's pid runs, for KeepReads
	// (store.ProcessAlive when nil).
	Alive func(pid string) store.Liveness
	// ListingMargin is how long before a read the directory's last
	// change must lie for a read with kept shards to take the listing
	// before it while the directory stays unchanged (see StampMargin, the
	// default when zero). Tests shorten it, where their file system's
	// timestamps are finer.
	ListingMargin time.Duration
}

// Store is a PROMETHEUS_MULTIPROC_DIR opened for reading and writing. It
// is safe for concurrent use.
type Store struct {
	dir    string
	layout int

	mu sync.Mutex
	// keys is the key cache of the last complete scan, reused by the next
	// one; nil while a scan has taken it.
	keys *keySet
	// keyIDs numbers the keys the scans parse (store.Key.ID).
	keyIDs atomic.Uint32

	// alive is Options.Alive, margin Options.ListingMargin.
	alive  func(pid string) store.Liveness
	margin time.Duration
	// reuse holds the shards kept between reads (KeepReads); nil while a
	// read has taken it (reuseTaken) or when reads keep nothing. reuseOff
	// tells the read that has it to forget it (KeepReads(false) meanwhile).
	reuse                *reuseState
	reuseTaken, reuseOff bool
	// lastStats is what the last complete read did with the kept shards.
	lastStats ReadStats
}

var _ store.Store = (*Store)(nil)

// Open opens the multiprocess directory dir. It fails when dir does not
// exist or is not a directory.
func Open(ctx context.Context, dir string, opts Options) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, errors.New("open file store: no directory given")
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("open file store: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("open file store: %s is not a directory", dir)
	}
	layout := opts.Layout
	switch layout {
	case 0:
		layout = LayoutTimestamp
	case LayoutLegacy, LayoutTimestamp:
	default:
		return nil, fmt.Errorf("open file store %s: layout %d: want 8 or 16 bytes per value", dir, opts.Layout)
	}
	margin := opts.ListingMargin
	if margin <= 0 {
		margin = StampMargin
	}
	return &Store{dir: dir, layout: layout, alive: opts.Alive, margin: margin}, nil
}

// Dir returns the directory the store was opened on.
func (s *Store) Dir() string { return s.dir }

// Layout returns the entry layout WriteShard writes (8 or 16).
func (s *Store) Layout() int { return s.layout }

// Describe names the store for humans.
func (s *Store) Describe() string { return "dir " + s.dir }

// Close releases the shards kept between reads (see KeepReads); files
// are otherwise read per scan and closed after it.
func (s *Store) Close() error {
	s.KeepReads(false)
	return nil
}

// takeKeys returns the key cache of the last scan for a new scan to use.
func (s *Store) takeKeys() *keySet {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys
	s.keys = nil
	return k
}

// putKeys keeps the key cache of a finished scan for the next one.
func (s *Store) putKeys(k *keySet) {
	s.mu.Lock()
	s.keys = k
	s.mu.Unlock()
}

// BarrierName is the barrier file of a running cleanup (package cleanup):
// a symbolic link to itself, which Python's collector lists (it ends in
// ".db") and fails to open (ELOOP), so that a Python scrape fails instead
// of counting samples twice while an archive and its sources both exist.
// It is not a shard: every reader here leaves it out.
const BarrierName = "promstore-cleanup-in-progress.db"

// shardFile is one *.db file of the directory.
type shardFile struct {
	name string // base name, e.g. "counter_4100.db"
	path string
	id   store.ShardID
	// nameErr is set when the name is not a shard name.
	nameErr error
	// regular is set when the directory listing says the name is a
	// regular file (not a symlink, FIFO or directory, nor of a type the
	// file system does not tell), so that it can be opened and read
	// without asking the file's type again.
	regular bool
	// ino is the inode number the listing gives (listInodes), else 0;
	// keep is set when the shard is read through a kept mapping, dead
	// when its pid runs no process (KeepReads only, see
	// reuseState.begin).
	ino        uint64
	keep, dead bool
	// idx is the file's place in the listing; same is set when the last
	// listing had the same name and inode there, and k is then the
	// shard the last read kept for it (nil for none; KeepReads only).
	idx  int
	same bool
	k    *kept
}

// kindName is f.id.KindName() ("counter", "gauge_all"), the part of the
// name before "_<pid>.db", without making a string; for a file whose name
// parsed (nameErr nil).
func (f *shardFile) kindName() string {
	return f.name[:len(f.name)-len(".db")-len(f.id.PID)-1]
}
