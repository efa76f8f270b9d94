//go:build unix

package filestore

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// openNoFollow opens path read-only with O_NONBLOCK, so that the open of
// a FIFO or device returns at once instead of waiting for a writer (on a
// regular file it changes nothing), and O_NOFOLLOW, so that a symbolic
// link is refused (errSymlink).
func openNoFollow(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil && (errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.EMLINK) || errors.Is(err, syscall.ENXIO)) {
		// What O_NOFOLLOW answers for a symbolic link (EMLINK on
		// FreeBSD), and open for a socket; Lstat tells them apart
		// from a loop of directories or a device without a driver.
		if st, lerr := os.Lstat(path); lerr == nil {
			if st.Mode()&fs.ModeSymlink != 0 {
				return nil, errSymlink
			}
			if rerr := checkRegular(st.Mode()); rerr != nil {
				return nil, rerr
			}
		}
	}
	return f, err
}

// allocated returns the disk space of the file of st: its blocks, which
// a sparse file has fewer of than its size says.
func allocated(st fs.FileInfo) int64 {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return int64(sys.Blocks) * 512 //nolint:unconvert // its type differs between systems
	}
	return st.Size()
}
