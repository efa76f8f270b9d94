//go:build !linux

package filestore

import (
	"errors"
	"fmt"
	"os"
)

// keepSupported says whether KeepReads keeps shards here: it needs the
// inode numbers of the directory listing, read on Linux only.
const keepSupported = false

func maxKeptMaps() int { return 0 }

// dirStamp is what the Linux listing keeps of the directory.
type dirStamp struct{ reused bool }

// StampMargin: no listing is skipped off Linux (see the Linux one).
const StampMargin = 0

func (s *Store) listInodes(*reuseState) ([]shardFile, dirStamp, error) {
	files, err := s.list()
	return files, dirStamp{}, err
}

func mapKept(string) ([]byte, int64, uint64, error) {
	return nil, 0, 0, errors.New("not kept")
}

// list returns the directory's shard files in directory order (see the
// Linux list).
func (s *Store) list() ([]shardFile, error) {
	d, err := os.Open(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.dir, err)
	}
	ents, err := d.ReadDir(-1) // unsorted: directory order
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.dir, err)
	}
	files := make([]shardFile, 0, len(ents))
	for _, ent := range ents {
		name := ent.Name()
		id, ok, nameErr := ShardFile(name)
		if !ok || name == BarrierName {
			continue
		}
		files = append(files, shardFile{name: name, path: s.dir + string(os.PathSeparator) + name, regular: ent.Type().IsRegular(), id: id, nameErr: nameErr})
	}
	return files, nil
}
