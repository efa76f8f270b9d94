package filestore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// openShard opens the shard at path for reading, and only if it is a
// regular file: opening never waits (a FIFO or device is not waited on,
// which no signal would interrupt), a symbolic link is refused (see
// openNoFollow), and the opened descriptor is checked with fstat, so
// what is read is the file that was checked. The file's facts come with
// it.
func openShard(path string) (*os.File, fs.FileInfo, error) {
	f, err := openNoFollow(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if err := checkRegular(st.Mode()); err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, st, nil
}

// errSymlink is the problem of a shard name that is a symbolic link.
var errSymlink = errors.New("not a regular file but a symbolic link (not followed)")

// checkRegular returns the problem of a file of mode m that is not a
// regular file.
func checkRegular(m fs.FileMode) error {
	switch {
	case m.IsRegular():
		return nil
	case m.IsDir():
		return errors.New("not a regular file but a directory")
	case m&fs.ModeNamedPipe != 0:
		return errors.New("not a regular file but a named pipe (FIFO)")
	case m&fs.ModeSocket != 0:
		return errors.New("not a regular file but a socket")
	case m&fs.ModeDevice != 0:
		return errors.New("not a regular file but a device")
	}
	return fmt.Errorf("not a regular file (mode %s)", m)
}

// Allocated returns the disk space of the file of fi (st_blocks × 512,
// less than its size when sparse; its size where blocks are not known).
func Allocated(fi fs.FileInfo) int64 { return allocated(fi) }
