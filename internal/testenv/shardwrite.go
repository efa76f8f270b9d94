package testenv

import (
	bin "encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// WriteFirstValue writes v over the value of the first entry of the
// shard at path, in place, as a running process updating its value
// through its mapping does (neither the used size nor, on tmpfs, the
// mtime changes).
func WriteFirstValue(tb testing.TB, path string, v float64) {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var hdr [4]byte
	if _, err := f.ReadAt(hdr[:], 8); err != nil {
		tb.Fatal(err)
	}
	// Entry at offset 8: key length (4 bytes), key, padding, value. Python
	// pads 4+n bytes with 8-(4+n)%8 spaces: 1 to 8, never none.
	n := int64(bin.LittleEndian.Uint32(hdr[:]))
	off := 8 + 4 + n + 8 - (4+n)%8
	var buf [8]byte
	bin.LittleEndian.PutUint64(buf[:], math.Float64bits(v))
	if _, err := f.WriteAt(buf[:], off); err != nil {
		tb.Fatal(err)
	}
}

// CopyUsed copies the *.db shards of the directory store src into a new
// temporary directory, each file's used bytes written and the rest left a
// hole up to the file's size (a large store's copy writes what it holds,
// not its files' sizes), and returns the directory and the copies' paths.
func CopyUsed(tb testing.TB, src string) (string, []string) {
	tb.Helper()
	dir := tb.TempDir()
	names, err := filepath.Glob(filepath.Join(src, "*.db"))
	if err != nil {
		tb.Fatal(err)
	}
	var paths []string
	for _, from := range names {
		data, err := os.ReadFile(from)
		if err != nil {
			tb.Fatal(err)
		}
		used := len(data)
		if len(data) >= 8 {
			if u := int(bin.LittleEndian.Uint32(data)); u >= 8 && u <= len(data) {
				used = u
			}
		}
		to := filepath.Join(dir, filepath.Base(from))
		f, err := os.Create(to)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := f.Write(data[:used]); err != nil {
			tb.Fatal(err)
		}
		if err := f.Truncate(int64(len(data))); err != nil {
			tb.Fatal(err)
		}
		if err := f.Close(); err != nil {
			tb.Fatal(err)
		}
		paths = append(paths, to)
	}
	return dir, paths
}
