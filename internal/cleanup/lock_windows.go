//go:build windows

package cleanup

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// errLocked says another process holds the lock.
var errLocked = errors.New("locked by another process")

// lockFile takes an exclusive lock on the first byte of f without waiting.
func lockFile(f *os.File) error {
	return lockEx(f, windows.LOCKFILE_EXCLUSIVE_LOCK)
}

// lockDir and lockDirShared do nothing on Windows, where a directory
// cannot be locked: readers there are not kept from a cleanup's journal
// transitions.
func lockDir(*os.File) error { return nil }

// lockDirShared: see lockDir.
func lockDirShared(*os.File) error { return nil }

func lockEx(f *os.File, flags uint32) error {
	var ol windows.Overlapped
	err := windows.LockFileEx(windows.Handle(f.Fd()), flags|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		return errLocked
	}
	return err
}

// unlockFile releases the lock; closing the file would release it too.
func unlockFile(f *os.File) {
	var ol windows.Overlapped
	_ = windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, &ol)
}
