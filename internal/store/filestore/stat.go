package filestore

import (
	"context"
	"encoding/binary"
	"os"

	"github.com/promstore/promstore/internal/store"
)

// Stat lists every *.db file with the facts a stat and its 8-byte header
// give, without parsing its entries: ID, Location, Bytes, Allocated, Used
// (the header's used size when it is within the file, else 0) and
// Updated. Samples and Layout are left zero, Alive unknown; files that are
// gone meanwhile are left out. It costs a fraction of Shards.
func (s *Store) Stat(ctx context.Context) ([]store.ShardInfo, error) {
	files, err := s.list()
	if err != nil {
		return nil, err
	}
	// On every core: a pile of small shards is system calls, each
	// waiting for the kernel.
	all := make([]store.ShardInfo, len(files))
	ok := make([]bool, len(files))
	store.Parallel(len(files), func(i int) {
		if ctx.Err() == nil {
			all[i], ok[i] = statShard(files[i])
		}
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	infos := all[:0]
	for i := range all {
		if ok[i] {
			infos = append(infos, all[i])
		}
	}
	return infos, nil
}

// statOS is statShard through package os: a regular file's facts and its
// header's used size (0 when outside the file); false when the file is
// gone or not regular.
func statOS(f shardFile) (store.ShardInfo, bool) {
	st, err := os.Lstat(f.path)
	if err != nil || !st.Mode().IsRegular() {
		return store.ShardInfo{}, false
	}
	info := store.ShardInfo{ID: f.id, Location: f.path, Bytes: st.Size(), Allocated: allocated(st),
		Updated: st.ModTime(), Alive: store.AliveUnknown}
	if fh, err := os.Open(f.path); err == nil {
		var hdr [headerSize]byte
		if n, _ := fh.ReadAt(hdr[:], 0); n == headerSize {
			info.Used = usedWithin(hdr[:], st.Size())
		}
		fh.Close()
	}
	return info, true
}

// usedWithin is the used size of header hdr when it lies within a file of
// size bytes (at least the header), else 0.
func usedWithin(hdr []byte, size int64) int64 {
	if used := int64(int32(binary.LittleEndian.Uint32(hdr))); used >= headerSize && used <= size {
		return used
	}
	return 0
}
