//go:build !unix

package filestore

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// mapFile reads the first n bytes of f where memory mapping is not used
// (Windows): the reader sees the same bytes, at the cost of a copy.
func mapFile(f *os.File, n int) ([]byte, error) {
	data := make([]byte, n)
	if _, err := f.ReadAt(data, 0); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("file shrank while being read")
		}
		return nil, fmt.Errorf("read: %w", err)
	}
	return data, nil
}

// unmapFile releases a buffer of mapFile (nothing to do).
func unmapFile([]byte) {}
