//go:build !unix

package filestore

import (
	"io/fs"
	"os"
)

// openNoFollow opens path read-only unless it is a symbolic link
// (errSymlink) or not a regular file: without O_NOFOLLOW and O_NONBLOCK
// the name is looked at first (openShard checks the opened file again).
func openNoFollow(path string) (*os.File, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		return nil, errSymlink
	}
	if err := checkRegular(st.Mode()); err != nil {
		return nil, err
	}
	return os.Open(path)
}

// allocated returns the disk space of the file of st, taken to be its
// size where blocks are not known.
func allocated(st fs.FileInfo) int64 { return st.Size() }
