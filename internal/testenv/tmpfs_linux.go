package testenv

import (
	"os"
	"syscall"
	"testing"
)

// SmallTmpfs mounts a tmpfs of size (e.g. "256k") on a new temporary
// directory and returns it, for tests of a full disk; it is unmounted
// when the test ends. Mounting needs root: without, the test is
// unavailable (it fails with CI=true).
func SmallTmpfs(t testing.TB, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "not root: cannot mount a tmpfs")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=755"); err != nil {
		Unavailable(t, "mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}
