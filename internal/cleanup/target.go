package cleanup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
)

// Target is the store a cleanup works on, with what compaction needs
// beyond store.Store.
type Target struct {
	Store store.Store
	// ArchiveWriter returns the writer of archive shards in a layout (8
	// or 16 bytes per value; ignored where Layouts is false).
	ArchiveWriter func(ctx context.Context, layout int) (store.Writer, error)
	// Layouts is true for stores whose shards have a byte layout (files).
	Layouts bool
	// Journal keeps the intent record and the lock.
	Journal JournalStore
	// Gate orders promstore's readers against the saving and removal of
	// the journal (nil: readers are not guarded).
	Gate Gate
	// GateWait, when positive, bounds how long a run holds the gate
	// waiting for the reads in progress (new reads wait meanwhile): past
	// it the gate opens again and the run stops where it is, as a killed
	// run would (the next run goes on from there). Zero waits as long as
	// it takes. serve's sidecar sets it: in Redis a reader killed or cut
	// off mid-read stays registered for up to 2 minutes, and a cleanup
	// waiting for it all that time would keep every scrape out.
	GateWait time.Duration
	// OnGateWait, when set, is called (from another goroutine) with a
	// message saying so when a run has waited a second for the reads in
	// progress (new reads held back meanwhile), so that a command tells
	// why it seems to hang.
	OnGateWait func(msg string)
	// Size returns a shard's storage after a run, when the backend can
	// tell cheaply; nil otherwise.
	Size func(ctx context.Context, id store.ShardID) (int64, error)
	// Orphans lists keys holding no readable sample (nil: none can exist).
	Orphans func(ctx context.Context) ([]Orphan, error)
	// DeleteKeys removes keys Orphans listed.
	DeleteKeys func(ctx context.Context, keys []string) error
	// Less orders shards of one kind and mode as Scan delivers them
	// (the store's store.ShardOrder; file name order when nil).
	Less func(a, b store.ShardID) bool
	// Local is true when the store's pids are necessarily processes of
	// this host (a file store).
	Local bool
	// Check, when set, tells what a real run of a plan would fail on
	// (lock, permissions, space), for a dry run to say so.
	Check func(ctx context.Context, p *Plan, deleteKeys []string) error
	// DeleteMany, when set, lists the shards ids at once and returns a
	// function deleting one of them as Store.DeleteShard does (Redis:
	// one SCAN pass over the keyspace instead of one per shard).
	DeleteMany func(ctx context.Context, ids []store.ShardID) (func(context.Context, store.ShardID) error, error)
	// Replace, when set, writes an archive with exactly these samples and
	// deletes the shards del in one transaction (a standalone Redis:
	// MULTI/EXEC), so that no reader ever sees both or neither.
	Replace func(ctx context.Context, id store.ShardID, samples []store.Sample, del []store.ShardID) error
	// RaiseBarrier and LowerBarrier, when set, put up and take down what
	// makes other readers fail rather than count twice while an archive
	// and its sources both exist (files: filestore.BarrierName). Raising
	// a raised barrier and lowering a lowered one are not errors.
	RaiseBarrier, LowerBarrier func(ctx context.Context) error
	// BarrierStands, when set, reports whether the barrier stands now
	// (before a run raises it: a run stopped while it stood left it).
	// Where it cannot tell, a barrier found is kept until a run ends.
	BarrierStands func() bool
	// Stage, when set, writes an archive where no reader sees it yet and
	// returns the commit that puts it in place (an instant: a rename) and
	// the abort that removes it if not committed.
	Stage func(ctx context.Context, layout int, id store.ShardID, samples []store.Sample) (commit func() error, abort func(), err error)
	// Unlink, when set, deletes a shard as Store.DeleteShard does but
	// without making it durable yet (the journal's removal does).
	Unlink func(ctx context.Context, id store.ShardID) error
}

func (t *Target) less(a, b store.ShardID) bool {
	if t.Less == nil {
		return filestore.LessShardFiles(a, b)
	}
	return t.Less(a, b)
}

// blocking reports whether a shard cannot be read completely: it is then
// never deleted or merged.
func blocking(in store.ShardInfo) bool { return in.Unreadable }

// JournalStore keeps a run's journal and its lock.
type JournalStore interface {
	// Lock takes the cleanup lock of the store, failing when another run
	// holds it; the returned function releases it, failing when it could
	// not (the lock then stays until it expires).
	Lock(ctx context.Context) (func() error, error)
	// Load returns the journal of an interrupted run, nil when none.
	Load(ctx context.Context) (*Journal, error)
	// Raw returns the journal's encoded form; false when there is none.
	Raw(ctx context.Context) (string, bool, error)
	// Save stores j durably and atomically.
	Save(ctx context.Context, j *Journal) error
	// Remove deletes the journal; a missing one is not an error.
	Remove(ctx context.Context) error
	// Where names the journal for humans.
	Where() string
}

// JournalName is the journal's file name in a multiprocess directory. It
// does not end in ".db", so no collector reads it.
const JournalName = "promstore-cleanup.journal"

// lockName is the lock file (flock) in a multiprocess directory.
const lockName = ".promstore-cleanup.lock"

// FileTarget returns the target of the multiprocess directory of st.
func FileTarget(st FileBackend) *Target {
	dir := st.Dir()
	return &Target{
		Store:   st,
		Layouts: true,
		Local:   true,
		ArchiveWriter: func(ctx context.Context, layout int) (store.Writer, error) {
			return filestore.Open(ctx, dir, filestore.Options{Layout: layout})
		},
		Less:    st.LessShards,
		Journal: &fileJournal{dir: dir},
		Gate:    &fileGate{dir: dir},
		Check: func(ctx context.Context, p *Plan, _ []string) error {
			return checkFileRun(ctx, dir, p)
		},
		Stage: func(ctx context.Context, layout int, id store.ShardID, samples []store.Sample) (func() error, func(), error) {
			w, err := filestore.Open(ctx, dir, filestore.Options{Layout: layout})
			if err != nil {
				return nil, nil, err
			}
			staged, err := w.StageShard(ctx, id, samples)
			if err != nil {
				return nil, nil, err
			}
			return staged.Commit, staged.Abort, nil
		},
		Unlink:        st.UnlinkShard,
		RaiseBarrier:  func(ctx context.Context) error { return raiseBarrier(ctx, dir) },
		LowerBarrier:  func(context.Context) error { return lowerBarrier(dir) },
		BarrierStands: func() bool { return HasBarrier(dir) },
		Size: func(ctx context.Context, id store.ShardID) (int64, error) {
			path, err := st.ShardLocation(id)
			if err != nil {
				return 0, err
			}
			fi, err := os.Stat(path)
			if err != nil {
				return 0, err
			}
			return filestore.Allocated(fi), nil
		},
	}
}

// FileBackend is what compaction asks of a store kept as shard files in
// one directory (filestore's Store has it): the directory, where journal,
// lock, barrier and archives go, the shards' order and place, and the
// removal of one shard.
type FileBackend interface {
	store.Store
	store.Local
	store.ShardOrder
	store.ShardLocator
	// UnlinkShard removes shard id; a missing one is not an error.
	UnlinkShard(ctx context.Context, id store.ShardID) error
}

// NewTarget returns the cleanup target of an opened store, found by what
// the store offers (through wrappers such as Consistent's).
func NewTarget(st store.Store) (*Target, error) {
	if s, ok := store.As[FileBackend](st); ok {
		return FileTarget(s), nil
	}
	if s, ok := store.As[RedisBackend](st); ok {
		return RedisTarget(s), nil
	}
	return nil, fmt.Errorf("cleanup of %s is not supported", st.Describe())
}

// fileJournal keeps the journal as a file of the directory.
type fileJournal struct {
	dir string
}

func (f *fileJournal) path() string  { return filepath.Join(f.dir, JournalName) }
func (f *fileJournal) Where() string { return f.path() }

func (f *fileJournal) Lock(ctx context.Context) (func() error, error) {
	p := filepath.Join(f.dir, lockName)
	fd, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cleanup lock: %w", err) // err names the file
	}
	if err := lockFile(fd); err != nil {
		fd.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("cleanup lock %s: %w on this directory", p, ErrBusy)
		}
		return nil, fmt.Errorf("cleanup lock %s: %w", p, err)
	}
	// Temporary archive files of a run killed inside a write are ours
	// alone (we hold the lock): remove them.
	if ents, err := os.ReadDir(f.dir); err == nil {
		for _, e := range ents {
			if id, ok := filestore.TempShard(e.Name()); ok && IsArchivePID(id.PID) {
				os.Remove(filepath.Join(f.dir, e.Name()))
			}
		}
	}
	os.Remove(f.path() + ".tmp")
	return func() error {
		unlockFile(fd)
		return fd.Close() // closing releases the lock too
	}, nil
}

func (f *fileJournal) Load(ctx context.Context) (*Journal, error) {
	b, ok, err := f.Raw(ctx)
	if err != nil || !ok {
		return nil, err
	}
	return decodeJournal(f.path(), []byte(b))
}

func (f *fileJournal) Raw(ctx context.Context) (string, bool, error) {
	b, err := os.ReadFile(f.path())
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read cleanup journal: %w", err)
	}
	return string(b), true, nil
}

func (f *fileJournal) Save(ctx context.Context, j *Journal) error {
	b, err := encodeJournal(j)
	if err != nil {
		return err
	}
	tmp := f.path() + ".tmp"
	fd, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write cleanup journal: %w", err)
	}
	if _, err := fd.Write(b); err != nil {
		fd.Close()
		os.Remove(tmp)
		return fmt.Errorf("write cleanup journal %s: %w", tmp, err)
	}
	if err := fd.Sync(); err != nil {
		fd.Close()
		os.Remove(tmp)
		return fmt.Errorf("write cleanup journal %s: %w", tmp, err)
	}
	if err := fd.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write cleanup journal %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, f.path()); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write cleanup journal: %w", err)
	}
	return syncDir(f.dir)
}

func (f *fileJournal) Remove(ctx context.Context) error {
	if err := os.Remove(f.path()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove cleanup journal: %w", err)
	}
	return syncDir(f.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
