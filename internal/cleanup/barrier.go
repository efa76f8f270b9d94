package cleanup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/promstore/promstore/internal/store/filestore"
)

// The barrier of a file store (filestore.BarrierName) stands from before
// an archive file appears until the shards merged into it are gone.
// Python's collector globs "*.db", then opens each file: a listing that
// holds the barrier makes the collect raise (the barrier is a symbolic
// link to itself: ELOOP, or FileNotFoundError once it is removed), so a
// Python scrape during that window fails instead of counting the merged
// samples twice. A listing taken before the barrier appears cannot hold
// the new archive (its name is new in every run), and one taken after it
// is gone cannot hold the sources.
//
// That reasoning needs the barrier in every listing that holds the new
// archive. On Linux, one getdents call is atomic against file creation
// and removal in the directory, and Python's scandir reads about 500 to
// 1000 names per call; a listing of a bigger directory takes several
// calls and could have passed the barrier's place before it appeared.
// For such directories the cleanup waits barrierSettle after raising the
// barrier, so that a listing would have to take longer than that to
// miss it.
const (
	barrierSettleEntries = 400
	barrierSettle        = 100 * time.Millisecond
)

// raiseBarrier creates the barrier of dir (present already: nothing to
// do) and waits barrierSettle if dir is big.
func raiseBarrier(ctx context.Context, dir string) error {
	p := filepath.Join(dir, filestore.BarrierName)
	err := os.Symlink(filestore.BarrierName, p)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		// No symbolic links here (some Windows setups): an empty file,
		// which Python fails to read too (struct.error).
		f, ferr := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(ferr, fs.ErrExist) {
			return nil
		}
		if ferr != nil {
			return fmt.Errorf("cleanup barrier %s: %w", p, err)
		}
		f.Close()
	}
	// Not synced: a barrier matters to running readers only, and the
	// journal's removal makes the directory durable.
	if n, err := countEntries(dir); err == nil && n > barrierSettleEntries {
		t := time.NewTimer(barrierSettle)
		defer t.Stop()
		select {
		case <-ctx.Done():
			// Stopped before anything stood behind it: take it down,
			// or Python's collector fails until the next run.
			return errors.Join(ctx.Err(), lowerBarrier(dir))
		case <-t.C:
		}
	}
	return nil
}

// lowerBarrier removes the barrier of dir (absent: nothing to do).
func lowerBarrier(dir string) error {
	p := filepath.Join(dir, filestore.BarrierName)
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cleanup barrier %s: %w", p, err)
	}
	return nil
}

// HasBarrier reports whether dir holds a cleanup barrier (one that a
// killed cleanup left, unless a cleanup runs now).
func HasBarrier(dir string) bool {
	_, err := os.Lstat(filepath.Join(dir, filestore.BarrierName))
	return err == nil
}

func countEntries(dir string) (int, error) {
	d, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	return len(names), err
}
