//go:build unix

package filestore

import (
	"fmt"
	"os"
	"syscall"
)

// mapFile maps the first n bytes of f read-only. Only the pages of the
// used region are ever touched, and no copy is made: keys are copied out
// when first seen, values read in place.
func mapFile(f *os.File, n int) ([]byte, error) {
	data, err := syscall.Mmap(int(f.Fd()), 0, n, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	return data, nil
}

// unmapFile releases a mapping of mapFile. Unmapping a valid mapping
// cannot fail in a way the reader could act on.
func unmapFile(data []byte) { _ = syscall.Munmap(data) }
