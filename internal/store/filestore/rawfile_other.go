//go:build !unix

package filestore

import "os"

// rawFile is a shard file open for reading (see the unix version).
type rawFile struct{ *os.File }

// openRaw opens path read-only, only if it is a regular file (see
// openShard).
func openRaw(path string) (rawFile, error) {
	f, _, err := openShard(path)
	return rawFile{f}, err
}
