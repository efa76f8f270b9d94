//go:build !linux

package testenv

import "testing"

// SmallTmpfs is unavailable where there is no tmpfs to mount.
func SmallTmpfs(t testing.TB, size string) string {
	t.Helper()
	Unavailable(t, "no tmpfs of size %s to mount on this system", size)
	return ""
}
