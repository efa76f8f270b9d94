//go:build !linux || !(amd64 || arm64)

package filestore

// ring reads shards' first pages in batches with io_uring, on Linux (see
// uring_linux.go); elsewhere there is none and every shard is read the
// usual way.
type ring struct{}

func newRing() *ring { return nil }

func (r *ring) close() {}

func (r *ring) prefetch([]shardFile, []*prefetched) []*prefetched { return nil }
