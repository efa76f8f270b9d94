package cleanup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/redisstore"
)

// Names of the promstore-owned Redis keys (<prefix>:promstore:<name>).
const (
	redisJournalName = "cleanup-journal"
	redisLockName    = "cleanup-lock"
	// redisLockTTL bounds how long a killed run blocks the next one.
	redisLockTTL = 10 * time.Minute
)

// RedisBackend is what compaction asks of a store kept as keys of a
// Redis deployment (redisstore's Store has it): maintenance records, the
// read gate, orphan keys, the archive transaction and the dry run's
// checks.
type RedisBackend interface {
	store.Store
	store.ShardOrder
	store.AuxStore
	// AuxKey is the key of maintenance record name.
	AuxKey(name string) string
	// AuxTTL is how long maintenance record name lives on; false when
	// there is none.
	AuxTTL(ctx context.Context, name string) (time.Duration, bool, error)
	// Atomic tells whether ReplaceShard is one transaction (a single
	// server, not a Cluster).
	Atomic() bool
	// ReplaceShard writes shard id with samples and deletes the shards
	// del, in one transaction where Atomic.
	ReplaceShard(ctx context.Context, id store.ShardID, samples []store.Sample, del []store.ShardID) error
	// ShardsDeleter lists the keys of shards ids at once and returns the
	// function that deletes one of them.
	ShardsDeleter(ctx context.Context, ids []store.ShardID) (func(context.Context, store.ShardID) error, error)
	// Orphans are the keys no shard owns.
	Orphans(ctx context.Context) ([]redisstore.OrphanKey, error)
	// DeleteKeys deletes keys as they were listed.
	DeleteKeys(ctx context.Context, keys []string) error
	// EnterRead, LeaveRead, CloseGate and OpenGate keep the read gate.
	EnterRead(ctx context.Context, id string, ttl time.Duration) (bool, error)
	LeaveRead(ctx context.Context, id string) error
	CloseGate(ctx context.Context, ttl time.Duration) (int, error)
	OpenGate(ctx context.Context) error
	// CheckWrite probes, changing nothing, that the maintenance records
	// auxNames, the keys of shards ids and the keys keys may be written.
	CheckWrite(ctx context.Context, auxNames []string, ids []store.ShardID, keys []string) error
	// Memory is the memory use and limit of every server.
	Memory(ctx context.Context) ([]redisstore.NodeMemory, error)
}

// RedisTarget returns the target of a Redis store. Archives are written
// by the store itself (no byte layout); the journal and the lock are
// keys <prefix>:promstore:cleanup-journal and ...:cleanup-lock.
func RedisTarget(st RedisBackend) *Target {
	return &Target{
		Store: st,
		ArchiveWriter: func(context.Context, int) (store.Writer, error) {
			return st, nil
		},
		Journal: &redisJournal{st: st},
		Gate:    &redisGate{st: st},
		Orphans: func(ctx context.Context) ([]Orphan, error) {
			found, err := st.Orphans(ctx)
			if err != nil {
				return nil, err
			}
			out := make([]Orphan, len(found))
			for i, o := range found {
				out[i] = Orphan{Key: o.Key, Reason: o.Reason, Updated: o.Updated, Bytes: o.Bytes}
			}
			return out, nil
		},
		DeleteKeys: st.DeleteKeys,
		DeleteMany: st.ShardsDeleter,
		Less:       st.LessShards,
		Check: func(ctx context.Context, p *Plan, deleteKeys []string) error {
			return checkRedisRun(ctx, st, p, deleteKeys)
		},
		Replace: replacer(st),
	}
}

// replacer returns the store's one-transaction archive write on a
// standalone Redis (or Sentinel), nil on a Cluster.
func replacer(st RedisBackend) func(context.Context, store.ShardID, []store.Sample, []store.ShardID) error {
	if !st.Atomic() {
		return nil
	}
	return st.ReplaceShard
}

// redisJournal keeps the journal and the lock as maintenance records of
// the store (store.AuxStore).
type redisJournal struct{ st store.AuxStore }

func (r *redisJournal) Where() string {
	return r.st.AuxLocation(redisJournalName)
}

func (r *redisJournal) Lock(ctx context.Context) (func() error, error) {
	release, err := r.st.LockAux(ctx, redisLockName, redisLockTTL)
	if errors.Is(err, store.ErrLocked) {
		err = fmt.Errorf("%w: %w", ErrBusy, err)
	}
	return release, err
}

func (r *redisJournal) Raw(ctx context.Context) (string, bool, error) {
	return r.st.GetAux(ctx, redisJournalName)
}

func (r *redisJournal) Load(ctx context.Context) (*Journal, error) {
	v, ok, err := r.st.GetAux(ctx, redisJournalName)
	if err != nil || !ok {
		return nil, err
	}
	return decodeJournal(r.Where(), []byte(v))
}

func (r *redisJournal) Save(ctx context.Context, j *Journal) error {
	b, err := encodeJournal(j)
	if err != nil {
		return err
	}
	return r.st.SetAux(ctx, redisJournalName, string(b))
}

func (r *redisJournal) Remove(ctx context.Context) error {
	return r.st.DelAux(ctx, redisJournalName)
}

// Read gate expiry times (see redisstore.EnterRead): a killed reader
// delays a cleanup for at most redisReadTTL, a killed cleanup delays
// readers for at most redisGateTTL.
const (
	redisReadTTL = 2 * time.Minute
	redisGateTTL = 30 * time.Second
)

// redisGate is the Gate of a Redis store.
type redisGate struct{ st RedisBackend }

// readOnly reports whether err says this client may not write (an ACL
// user without write rights, a replica): reads then go unguarded.
func readOnly(err error) bool {
	s := err.Error()
	return strings.Contains(s, "NOPERM") || strings.Contains(s, "READONLY")
}

func (g *redisGate) RLock(ctx context.Context) (func(), error) {
	id := newToken()
	err := poll(ctx, func() (bool, error) { return g.st.EnterRead(ctx, id, redisReadTTL) })
	if err != nil {
		if readOnly(err) {
			return func() {}, nil
		}
		if redisstore.Unreachable(err) {
			// Redis is down (the store's error names it): nothing
			// about a cleanup.
			return nil, err
		}
		return nil, fmt.Errorf("check for a cleanup of %s before reading: %w", g.st.Describe(), err)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = g.st.LeaveRead(ctx, id)
	}, nil
}

func (g *redisGate) Lock(ctx context.Context) (func(), error) {
	err := poll(ctx, func() (bool, error) {
		n, err := g.st.CloseGate(ctx, redisGateTTL)
		return n == 0, err
	})
	open := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = g.st.OpenGate(ctx)
	}
	if err != nil {
		open()
		return nil, fmt.Errorf("wait for the readers of %s: %w", g.st.Describe(), err)
	}
	return open, nil
}

// newToken returns a random identifier.
func newToken() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	return hex.EncodeToString(b[:])
}
