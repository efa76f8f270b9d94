//go:build unix

package cleanup

import "syscall"

// writable reports whether this process may create and remove files in
// dir (access(2) with the real ids, as the run would be).
func writable(dir string) error {
	return syscall.Access(dir, 0x2|0x1) // W_OK|X_OK
}

// freeBytes returns the space free for this user on dir's filesystem.
func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil //nolint:unconvert // their types differ between systems
}
