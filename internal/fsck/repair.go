package fsck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/promstore/promstore/internal/cleanup"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
)

// QuarantineName is the default quarantine directory inside a
// multiprocess directory. Python's collector globs *.db in the directory
// itself, so it never reads what lies in a subdirectory.
const QuarantineName = "promstore-quarantine"

// RepairOptions configure Repair.
type RepairOptions struct {
	// Quarantine is where originals go; dir/QuarantineName when empty.
	Quarantine string
	// DryRun plans the repairs without changing anything.
	DryRun bool
	// Alive tells whether a shard's pid runs (store.ProcessAlive when
	// nil); shards of running processes are not repaired.
	Alive func(pid string) store.Liveness
	// Step, when set, is called after each step of the repair with its
	// name; an error stops the repair there, as a kill would. Tests use it.
	Step func(step string) error
}

// HoldRunning takes the repairs off the problems of shards whose process
// runs (alive, store.ProcessAlive when nil, says AliveYes), which a
// repair leaves alone: the process may write the file while it is
// rewritten or moved. Their detail says so. A process that runs but
// does not map the file (/proc/<pid>/maps: prometheus_client keeps its
// shard mapped while it runs) is not its writer but a process that got
// the pid since (pids are reused, in a container from 1 on): the shard
// is repaired, and the detail says why. CheckDir's report, so held,
// promises what Repair would do.
func (r *Report) HoldRunning(alive func(pid string) store.Liveness) {
	if alive == nil {
		alive = store.ProcessAlive
	}
	for i := range r.Problems {
		p := &r.Problems[i]
		if p.Repair == "" {
			continue
		}
		if id, ok, err := filestore.ShardFile(p.Shard); ok && err == nil && alive(id.PID) == store.AliveYes {
			if mapped, err := store.MapsFile(id.PID, p.path); p.path != "" && err == nil && !mapped {
				p.Detail += "; process " + id.PID + " runs but does not map this file, so it is not its writer (the pid was reused)"
				continue
			}
			p.Detail += "; left alone by --repair while process " + id.PID + " runs (stop it, then repair)"
			p.Repair = ""
		}
	}
}

// Repair checks dir under the cleanup lock and repairs what it can: a
// corrupt or truncated shard is rewritten with every entry that can still
// be read (temporary file, fsync, rename) after its original is copied to
// the quarantine directory; empty, foreign and unsalvageable files are
// moved there. Shards of running processes are left alone. A repair
// stopped at any step leaves a store every reader reads, and running it
// again finishes it. The report says what was done.
func Repair(ctx context.Context, dir string, o RepairOptions) (*Report, error) {
	q := o.Quarantine
	if q == "" {
		q = filepath.Join(dir, QuarantineName)
	}
	if err := checkQuarantine(dir, q); err != nil {
		return nil, err
	}
	alive := o.Alive
	if alive == nil {
		alive = store.ProcessAlive
	}
	step := o.Step
	if step == nil {
		step = func(string) error { return nil }
	}
	if !o.DryRun {
		st, err := filestore.Open(ctx, dir, filestore.Options{})
		if err != nil {
			return nil, err
		}
		journal := cleanup.FileTarget(st).Journal
		unlock, err := journal.Lock(ctx)
		if err != nil {
			return nil, err
		}
		defer unlock() //nolint:errcheck // a file lock: closing its descriptor releases it
		if j, err := journal.Load(ctx); err != nil || j != nil {
			if err == nil {
				err = fmt.Errorf("an interrupted cleanup left %s: run promstore cleanup to finish it before repairing", journal.Where())
			}
			return nil, err
		}
	}
	r, err := CheckDir(ctx, dir)
	if err != nil {
		return nil, err
	}
	r.DryRun, r.Quarantine = o.DryRun, q
	r.HoldRunning(alive)
	for i := range r.Problems {
		p := &r.Problems[i]
		if p.Repair == "" {
			continue
		}
		if o.DryRun {
			continue
		}
		if err := ctx.Err(); err != nil {
			return r, err
		}
		if err := os.MkdirAll(q, 0o755); err != nil {
			return r, fmt.Errorf("quarantine %s: %w", q, err)
		}
		switch p.Repair {
		case RepairRemove:
			// Only a barrier, and we hold the cleanup lock with no
			// journal left: no cleanup needs it.
			if err := os.Remove(p.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return r, fmt.Errorf("remove %s: %w", p.path, err)
			}
			p.Done = true
			if err := step("remove " + p.Shard); err != nil {
				return r, err
			}
		case RepairQuarantine:
			dst, err := moveToQuarantine(p.path, q)
			if err != nil {
				return r, err
			}
			p.Quarantined, p.Done = dst, true
			if err := step("quarantine " + p.Shard); err != nil {
				return r, err
			}
		case RepairRewrite:
			dst, err := copyToQuarantine(p.path, q)
			if err != nil {
				return r, err
			}
			p.Quarantined = dst
			if err := step("copy " + p.Shard); err != nil {
				return r, err
			}
			if err := filestore.RewriteSalvaged(p.path, p.in); err != nil {
				return r, fmt.Errorf("repair %s: %w", p.Shard, err)
			}
			p.Done = true
			if err := step("rewrite " + p.Shard); err != nil {
				return r, err
			}
		}
	}
	return r, nil
}

// freeName returns a path in q for name that no file holds yet, or the
// path of a file there that already holds exactly data (a repair stopped
// after copying), with true.
func freeName(q, name string, data []byte) (string, bool) {
	for i := 0; ; i++ {
		p := filepath.Join(q, name)
		if i > 0 {
			p += "." + strconv.Itoa(i)
		}
		have, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			return p, false
		}
		if err == nil && data != nil && bytes.Equal(have, data) {
			return p, true
		}
	}
}

// checkQuarantine refuses a quarantine directory that would itself be
// read as part of the store dir: the directory itself (the originals
// would stay where they are), or a name in it that Python's glob("*.db")
// finds, which fails every scrape of its collector (IsADirectoryError).
func checkQuarantine(dir, q string) error {
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	absQ, err := filepath.Abs(q)
	if err != nil {
		return err
	}
	if sameDir(absQ, absDir) {
		return fmt.Errorf("quarantine %s is the store directory itself: give --quarantine another directory", q)
	}
	if _, ok, _ := filestore.ShardFile(filepath.Base(absQ)); ok && sameDir(filepath.Dir(absQ), absDir) {
		return fmt.Errorf("quarantine %s: a directory of that name in %s is one of its *.db files to Python's collector, which fails on it: give --quarantine another name", q, dir)
	}
	return nil
}

// sameDir reports whether a and b (absolute paths) name one directory,
// through symbolic links too when both exist.
func sameDir(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	ai, err := os.Stat(a)
	if err != nil {
		return false
	}
	bi, err := os.Stat(b)
	return err == nil && os.SameFile(ai, bi)
}

// copyToQuarantine puts a byte-for-byte copy of path into q: a hard link
// where q is on the same file system (the rewrite then gives path a new
// inode and the link keeps the original), a copy and fsync otherwise.
func copyToQuarantine(path, q string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("quarantine %s: %w", path, err)
	}
	dst, done := freeName(q, filepath.Base(path), data)
	if done {
		return dst, nil
	}
	if err := os.Link(path, dst); err != nil {
		if err := writeSynced(dst, data); err != nil {
			return "", err
		}
	}
	if err := filestore.SyncDir(q); err != nil {
		return "", fmt.Errorf("quarantine %s: %w", q, err)
	}
	return dst, nil
}

// moveToQuarantine moves path into q: a rename, or a copy, fsync and
// removal across file systems.
func moveToQuarantine(path, q string) (string, error) {
	dst, _ := freeName(q, filepath.Base(path), nil)
	err := os.Rename(path, dst)
	if errors.Is(err, syscall.EXDEV) {
		var data []byte
		if data, err = readRegular(path); err == nil {
			if err = writeSynced(dst, data); err == nil {
				err = os.Remove(path)
			}
		}
	}
	if err != nil {
		return "", fmt.Errorf("quarantine %s: %w", path, err)
	}
	for _, d := range []string{q, filepath.Dir(path)} {
		if err := filestore.SyncDir(d); err != nil {
			return "", fmt.Errorf("quarantine %s: sync %s: %w", path, d, err)
		}
	}
	return dst, nil
}

func readRegular(path string) ([]byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file and cannot be copied to another file system: give a --quarantine on the store's own file system (the default, promstore-quarantine in the store's directory, is)", path)
	}
	return os.ReadFile(path)
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("quarantine %s: %w", path, err)
	}
	_, err = io.Copy(f, bytes.NewReader(data))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("quarantine %s: %w", path, err)
	}
	return nil
}
