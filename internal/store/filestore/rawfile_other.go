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

// openRegularSize opens path when it is a regular file and returns its
// size (see the unix version).
func openRegularSize(path string) (rawFile, int64, error) {
	f, st, err := openShard(path)
	if err != nil {
		return rawFile{}, 0, err
	}
	return rawFile{f}, st.Size(), nil
}
