//go:build !linux

package filestore

import "github.com/promstore/promstore/internal/store"

// statShard is statOS (see the Linux version).
func statShard(f shardFile) (store.ShardInfo, bool) { return statOS(f) }
