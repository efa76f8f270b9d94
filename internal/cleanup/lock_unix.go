//go:build unix

package cleanup

import (
	"errors"
	"os"
	"syscall"
)

// errLocked says another process holds the lock.
var errLocked = errors.New("locked by another process")

// lockFile takes an exclusive advisory lock on f without waiting.
func lockFile(f *os.File) error {
	return flock(f, syscall.LOCK_EX)
}

// lockDir takes an exclusive advisory lock on the directory d without
// waiting.
func lockDir(d *os.File) error { return flock(d, syscall.LOCK_EX) }

// lockDirShared takes a shared advisory lock on the directory d without
// waiting.
func lockDirShared(d *os.File) error { return flock(d, syscall.LOCK_SH) }

func flock(f *os.File, how int) error {
	err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errLocked
	}
	return err
}

// unlockFile releases the lock; closing the file would release it too.
func unlockFile(f *os.File) { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }
