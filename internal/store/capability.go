package store

import (
	"context"
	"errors"
	"time"
)

// The optional capabilities below are what commands may ask of a store
// beyond Store, each implemented by the backends that have it (ask with
// As, which sees through wrappers such as cleanup's consistent view).
// Knowing how a backend names, orders or keeps its shards stays inside
// the backend: callers ask these interfaces instead.

// Wrapper is implemented by a store that wraps another one; As sees
// through it.
type Wrapper interface {
	// Unwrap returns the wrapped store.
	Unwrap() Store
}

// Local is implemented by a store in this host's file system (a
// multiprocess directory): its pids are processes of this host, whose
// liveness ProcessAlive can check.
type Local interface {
	// Dir is the store's directory.
	Dir() string
}

// Pinger is implemented by a store that can tell whether it is reachable
// more cheaply than by listing its shards (Redis: PING every master).
type Pinger interface {
	// Ping returns nil when the store answers.
	Ping(ctx context.Context) error
}

// TTLSample is what a TTLSampler found.
type TTLSample struct {
	// Sampled is the number of keys looked at; WithTTL how many of them
	// expire.
	Sampled, WithTTL int
	// MinTTL and MaxTTL bound the TTLs found (zero when none).
	MinTTL, MaxTTL time.Duration
}

// TTLSampler is implemented by a store whose samples can expire (Redis
// keys with a TTL).
type TTLSampler interface {
	// SampleTTLs looks at up to n of the store's samples and reports how
	// many expire.
	SampleTTLs(ctx context.Context, n int) (TTLSample, error)
}

// ShardOrder is implemented by a store that knows the order in which its
// Scan delivers shards of one kind and mode (which decides, for example,
// which value of a gauge min/max is met first).
type ShardOrder interface {
	// LessShards reports whether Scan delivers shard a before shard b.
	LessShards(a, b ShardID) bool
}

// ShardLocator is implemented by a store that can say where a shard lives
// (a file path).
type ShardLocator interface {
	// ShardLocation returns where shard id lives, or an error when id
	// cannot be stored as itself (see ShardIDChecker).
	ShardLocation(id ShardID) (string, error)
}

// SampleKeys is implemented by a store that keeps every sample under
// several keys of its own (Redis: a metric and a meta hash).
type SampleKeys interface {
	// KeysPerSample is how many keys one sample takes.
	KeysPerSample() int
}

// AuxStore is implemented by a store that keeps promstore's maintenance
// records (a cleanup's journal and lock) beside the samples, under names
// no reader of samples looks at.
type AuxStore interface {
	// AuxLocation names where record name is kept, for humans.
	AuxLocation(name string) string
	// GetAux returns record name; false when there is none.
	GetAux(ctx context.Context, name string) (string, bool, error)
	// SetAux stores record name.
	SetAux(ctx context.Context, name, value string) error
	// DelAux removes record name; a missing one is not an error.
	DelAux(ctx context.Context, name string) error
	// LockAux takes lock name, failing when it is held; the lock expires
	// after ttl unless released with the returned function, which says
	// when it could not release it.
	LockAux(ctx context.Context, name string, ttl time.Duration) (func() error, error)
}

// Explainer is implemented by a store that can say what a store of its
// kind looks like, for the message that one holds no shards (a mistyped
// path or prefix).
type Explainer interface {
	// WhatAStoreIs says what a store of this kind is made of.
	WhatAStoreIs() string
}

// ErrLocked matches (errors.Is) AuxStore.LockAux's error when another
// holder has the lock.
var ErrLocked = errors.New("held by another run")

// StoreFinder is implemented by a store that can look, when it holds no
// shards, for shards of its kind next to it (a Redis store: under other
// key prefixes), for the message that it holds none: a mistyped or
// missing prefix is the usual cause.
type StoreFinder interface {
	// NearbyStores names up to a few stores of this kind found near it,
	// each as the flag that selects it (e.g. "--redis-prefix my:app"); it
	// looks at a bounded number of keys or files, never the whole server.
	NearbyStores(ctx context.Context) ([]string, error)
}

// Stater is implemented by a store that can list its shards without
// counting their samples (a stat and a header per file).
type Stater interface {
	// Stat lists the shards as Reader.Shards does, without Samples.
	Stat(ctx context.Context) ([]ShardInfo, error)
}

// ReadKeeper is implemented by a store that can keep what one read found
// for the next reads, so that a long-running reader (serve, top) re-reads
// only what may have changed; what each read yields is the same either
// way (a file store keeps the shards of processes that are gone).
type ReadKeeper interface {
	// KeepReads turns keeping on or off (off forgets what was kept).
	KeepReads(on bool)
}

// KeepReads turns keeping reads on or off in st when it (or a store it
// wraps) is a ReadKeeper; it reports whether it was.
func KeepReads(st Reader, on bool) bool {
	k, ok := As[ReadKeeper](st)
	if ok {
		k.KeepReads(on)
	}
	return ok
}

// RecordChecker is implemented by a store whose reads may take one record
// as standing for others that must say the same (a Redis store names
// every metric hash of one md5 by one meta hash): CheckEveryRecord makes
// its reads check each record on its own, reporting the ones that say
// otherwise (fsck), at the cost of more reads.
type RecordChecker interface {
	// CheckEveryRecord turns checking every record on or off.
	CheckEveryRecord(on bool)
}

// CheckEveryRecord turns checking every record on or off in st when it
// (or a store it wraps) is a RecordChecker; it reports whether it was.
func CheckEveryRecord(st Reader, on bool) bool {
	c, ok := As[RecordChecker](st)
	if ok {
		c.CheckEveryRecord(on)
	}
	return ok
}
