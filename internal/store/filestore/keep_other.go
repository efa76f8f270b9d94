//go:build !linux

package filestore

import "errors"

// keepSupported says whether KeepReads keeps shards here: it needs the
// inode numbers of the directory listing, read on Linux only.
const keepSupported = false

func maxKeptMaps() int { return 0 }

func (s *Store) listInodes(map[string]shardFile, []shardFile) ([]shardFile, error) { return s.list() }

func mapKept(string) ([]byte, int64, uint64, error) {
	return nil, 0, 0, errors.New("not kept")
}
