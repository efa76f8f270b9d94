package store

import "context"

// Entry is one sample of a shard, without the shard.
type Entry struct {
	Key *Key
	// KeyID is Key.ID, repeated so that a consumer indexing by ID need
	// not load the key.
	KeyID     uint32
	Value     float64
	Timestamp float64
}

// ShardFunc receives the samples of one shard at once; entries are only
// valid during the call.
type ShardFunc func(id ShardID, entries []Entry) error

// ShardScanner is a Reader that can hand over each shard's samples at
// once, saving a call per sample.
type ShardScanner interface {
	ScanShards(ctx context.Context, fn ShardFunc) error
}

// KeptShardFunc is a ShardFunc told whether the entries are kept: left as
// they are, never changed nor reused, for as long as they are held (a
// file store keeping its reads); others are only valid during the call.
type KeptShardFunc func(id ShardID, entries []Entry, kept bool) error

// KeptShardScanner is a ShardScanner that tells which entries are kept.
type KeptShardScanner interface {
	ScanKeptShards(ctx context.Context, fn KeptShardFunc) error
}

// ScanKeptShards scans r shard by shard telling which entries are kept:
// with its ScanKeptShards when it has one, else as ScanShards does, none
// kept. r itself must tell, not a store it wraps: a wrapper changes what
// is read (as cleanup's journal view does).
func ScanKeptShards(ctx context.Context, r Reader, fn KeptShardFunc) error {
	if ks, ok := r.(KeptShardScanner); ok {
		return ks.ScanKeptShards(ctx, fn)
	}
	return ScanShards(ctx, r, func(id ShardID, entries []Entry) error { return fn(id, entries, false) })
}

// ScanShards scans r shard by shard: with its ScanShards when it has one,
// else by gathering the consecutive samples of each shard that Scan
// streams. Errors are those of Scan.
func ScanShards(ctx context.Context, r Reader, fn ShardFunc) error {
	if ss, ok := r.(ShardScanner); ok {
		return ss.ScanShards(ctx, fn)
	}
	var (
		cur     ShardID
		entries []Entry
	)
	flush := func() error {
		if len(entries) == 0 {
			return nil
		}
		err := fn(cur, entries)
		clear(entries)
		entries = entries[:0]
		return err
	}
	err := r.Scan(ctx, func(s Sample) error {
		if len(entries) > 0 && s.Shard != cur {
			if err := flush(); err != nil {
				return err
			}
		}
		cur = s.Shard
		entries = append(entries, Entry{Key: s.Key, KeyID: s.Key.ID, Value: s.Value, Timestamp: s.Timestamp})
		return nil
	})
	if _, partial := Partial(err); err != nil && !partial {
		return err
	}
	if ferr := flush(); ferr != nil {
		return ferr
	}
	return err
}
