package cleanup

import (
	"context"

	"github.com/promstore/promstore/internal/store"
)

// ScanShards is Scan handing over each shard's samples at once (see
// store.ShardScanner), through the store's own ScanKeptShards or
// ScanShards where it has one: the same samples in the same order as
// Scan.
func (c *consistentStore) ScanShards(ctx context.Context, fn store.ShardFunc) error {
	return c.ScanKeptShards(ctx, func(id store.ShardID, entries []store.Entry, _ bool) error { return fn(id, entries) })
}

// ScanKeptShards is ScanShards telling which entries are the store's
// kept ones (store.KeptShardScanner): a journal archive's never are;
// without a store that tells, none are.
func (c *consistentStore) ScanKeptShards(ctx context.Context, fn store.KeptShardFunc) error {
	release, v, err := c.enter(ctx)
	if err != nil {
		return err
	}
	defer release()
	if v == nil {
		return store.ScanKeptShards(ctx, c.Store, fn)
	}
	var buf []store.Entry
	return v.walk(func(pass func(store.ShardID) (bool, error)) error {
		return store.ScanKeptShards(ctx, c.Store, func(id store.ShardID, entries []store.Entry, kept bool) error {
			if ok, err := pass(id); !ok {
				return err
			}
			return fn(id, entries, kept)
		})
	}, func(a *viewArchive) error {
		if len(a.samples) == 0 {
			return nil
		}
		buf = buf[:0]
		for _, s := range a.samples {
			buf = append(buf, store.Entry{Key: s.Key, KeyID: s.Key.ID, Value: s.Value, Timestamp: s.Timestamp})
		}
		return fn(a.id, buf, false)
	})
}
