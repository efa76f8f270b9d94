//go:build unix

package filestore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// rawFile is a shard file open for pread only. Opening it costs one
// system call and closing it one, where os.Open also stats the file,
// sets it non-blocking and tries to register it with the poller: a
// store of 25,000 small shards spends most of its time in those calls.
type rawFile struct{ fd int }

// openRaw opens path read-only, non-blocking and not following a
// symbolic link, as openShard does, so that a FIFO or link put in place
// of the listed regular file fails the read (the caller then opens it
// with openShard, which names the problem) instead of blocking or being
// followed.
func openRaw(path string) (rawFile, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return rawFile{-1}, err
		}
		return rawFile{fd}, nil
	}
}

// ReadAt reads len(b) bytes at off, as io.ReaderAt: fewer only at the
// end of the file (with io.EOF) or on an error. A pread of a regular
// file comes short only at its end, so a short read is not retried: a
// shard smaller than the buffer costs one call.
func (f rawFile) ReadAt(b []byte, off int64) (int, error) {
	for {
		n, err := syscall.Pread(f.fd, b, off)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return max(n, 0), err
		case n < len(b):
			return n, io.EOF
		}
		return n, nil
	}
}

// Close closes the file.
func (f rawFile) Close() error { return syscall.Close(f.fd) }

// errNotRegular is openRawRegular's answer for a file of another kind.
var errNotRegular = errors.New("not a regular file")

// openRawRegular opens path as openRaw does when it is a regular file, and
// gives the descriptor's fstat; errNotRegular for another kind of file, an
// *os.PathError when the fstat fails, openRaw's error when the open does.
func openRawRegular(path string) (rawFile, syscall.Stat_t, error) {
	var st syscall.Stat_t
	f, err := openRaw(path)
	if err != nil {
		return f, st, err
	}
	if err := syscall.Fstat(f.fd, &st); err != nil {
		f.Close()
		return rawFile{-1}, st, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		f.Close()
		return rawFile{-1}, st, errNotRegular
	}
	return f, st, nil
}

// openRegularSize opens path as openRaw does and returns its size, when it
// is a regular file; else the error openShard words (what the file is,
// or that it is gone).
func openRegularSize(path string) (rawFile, int64, error) {
	var err error
	for range 2 {
		var f rawFile
		var st syscall.Stat_t
		f, st, err = openRawRegular(path)
		if err == nil {
			return f, st.Size, nil
		}
		var fstat *os.PathError
		if errors.As(err, &fstat) {
			return rawFile{-1}, 0, err
		}
		// Not a regular file, or not opened: openShard words why.
		g, _, werr := openShard(path)
		if werr != nil {
			return rawFile{-1}, 0, werr
		}
		// openShard found a regular file after all (replaced since,
		// or openRaw's failure passed): once more.
		g.Close()
		if errors.Is(err, errNotRegular) {
			err = fmt.Errorf("%s: replaced while being opened", path)
		}
	}
	return rawFile{-1}, 0, err
}
