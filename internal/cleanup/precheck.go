package cleanup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// checkFileRun tells what a real run of p on the multiprocess directory
// dir would fail on, for a dry run to say so: the lock held by another
// cleanup, a directory it cannot write (removing shards, writing the
// journal and archives all write the directory), too little free space
// for the archives. Nil when nothing is in the way or nothing is to do.
func checkFileRun(ctx context.Context, dir string, p *Plan) error {
	if p == nil || !p.changes() {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	lock := filepath.Join(dir, lockName)
	f, err := os.OpenFile(lock, os.O_RDWR, 0)
	switch {
	case err == nil:
		lerr := lockFile(f)
		if lerr == nil {
			unlockFile(f)
		}
		f.Close()
		if errors.Is(lerr, errLocked) {
			return fmt.Errorf("%w on this directory (lock %s)", ErrBusy, lock)
		}
		if lerr != nil {
			return fmt.Errorf("cleanup lock %s: %w", lock, lerr)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("cleanup lock: %w", err) // err names the file
	}
	if err := writable(dir); err != nil {
		return fmt.Errorf("cannot write the directory %s (shards are removed, the journal and archives written there): %w", dir, err)
	}
	need := int64(0)
	for _, a := range p.Archives {
		need += archiveBytes(a)
	}
	if need == 0 {
		return nil
	}
	free, err := freeBytes(dir)
	if err != nil || free < 0 {
		return nil //nolint:nilerr // not known here: the run itself will tell
	}
	if need > free {
		return fmt.Errorf("the archives need about %d bytes, %s has %d bytes free", need, dir, free)
	}
	return nil
}

// changes reports whether the plan deletes or writes anything.
func (p *Plan) changes() bool {
	if len(p.Archives) > 0 {
		return true
	}
	for _, sp := range p.Shards {
		if sp.Action != Keep {
			return true
		}
	}
	return false
}

// archiveBytes estimates the bytes an archive file is written with: its
// entries in the 16-byte layout (the larger), plus the header.
func archiveBytes(a ArchivePlan) int64 {
	n := int64(8)
	for _, s := range a.Samples {
		k := len(s.Key)
		n += int64(4 + k + (8 - (k+4)%8) + 16)
	}
	return n
}
