package cleanup

import (
	"context"
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

// RedisTarget returns the target of a Redis store. Archives are written
// by the store itself (no byte layout); the journal and the lock are
// keys <prefix>:promstore:cleanup-journal and ...:cleanup-lock.
func RedisTarget(st *redisstore.Store) *Target {
	return &Target{
		Store: st,
		ArchiveWriter: func(context.Context, int) (store.Writer, error) {
			return st, nil
		},
		Journal: &redisJournal{st: st},
		Orphans: func(ctx context.Context) ([]Orphan, error) {
			found, err := st.Orphans(ctx)
			if err != nil {
				return nil, err
			}
			out := make([]Orphan, len(found))
			for i, o := range found {
				out[i] = Orphan{Key: o.Key, Reason: o.Reason, Updated: o.Updated}
			}
			return out, nil
		},
		DeleteKeys: st.DeleteKeys,
		Less:       redisLess,
		// Orphan and modeless keys do not keep a shard from being read;
		// hashes whose value cannot be parsed do.
		Blocking: func(in store.ShardInfo) bool {
			for _, p := range in.Problems {
				if strings.Contains(p, "unreadable") {
					return true
				}
			}
			return false
		},
	}
}

type redisJournal struct{ st *redisstore.Store }

func (r *redisJournal) Where() string {
	return r.st.Config().Prefix + ":promstore:" + redisJournalName
}

func (r *redisJournal) Lock(ctx context.Context) (func(), error) {
	return r.st.LockAux(ctx, redisLockName, redisLockTTL)
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

// redisLess is the order of redisstore's Scan: kind name, then pid,
// numerically when both are decimal numbers without a leading zero.
func redisLess(a, b store.ShardID) bool {
	if ka, kb := a.KindName(), b.KindName(); ka != kb {
		return ka < kb
	}
	if isNumeric(a.PID) && isNumeric(b.PID) && len(a.PID) != len(b.PID) {
		return len(a.PID) < len(b.PID)
	}
	return a.PID < b.PID
}
