//go:build !linux

package filestore

// coldReads is what a parser knows of the page cache on Linux (see
// rawcold_linux.go); elsewhere shards are read the usual way as they are.
type coldReads struct{}

func (c *coldReads) open(path string) (rawFile, error) { return openRaw(path) }
