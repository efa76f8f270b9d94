package cleanup

import (
	"context"
	"fmt"
	"time"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/redisstore"
)

// checkRedisRun tells what a real run of p, deleting the orphan keys
// deleteKeys too, on the Redis store st would fail on, for a dry run to
// say so: the lock held by another cleanup; a client that may not write
// the keys the run writes or deletes (an ACL user without write
// permission on them, a read-only replica), probed without changing
// anything; a server that refuses writes beyond its maxmemory
// (noeviction) with less memory left than the journal and the first
// archive need. Nil when nothing is in the way or nothing is to do.
func checkRedisRun(ctx context.Context, st RedisBackend, p *Plan, deleteKeys []string) error {
	changes := p != nil && p.changes()
	if !changes && len(deleteKeys) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ttl, held, err := st.AuxTTL(ctx, redisLockName)
	if err != nil {
		return fmt.Errorf("cleanup lock: %w", err)
	}
	if held {
		return fmt.Errorf("%w on this store (lock %s, expires in %s if that run died)", ErrBusy, st.AuxKey(redisLockName), ttl.Round(time.Second))
	}
	var ids []store.ShardID
	if changes {
		for _, sp := range p.Shards {
			if sp.Action != Keep {
				ids = append(ids, sp.Info.ID)
			}
		}
		for _, a := range p.Archives {
			ids = append(ids, a.ID)
		}
	}
	if err := st.CheckWrite(ctx, []string{redisLockName, redisJournalName, redisstore.ReadGateName}, ids, deleteKeys); err != nil {
		return fmt.Errorf("this client cannot write the store (the run writes its lock, journal and archives and removes shards and orphan keys): %w", err)
	}
	if !changes {
		return nil // deleting keys takes no memory
	}
	nodes, err := st.Memory(ctx)
	if err != nil {
		return nil //nolint:nilerr // not known here (INFO not permitted?): the run itself will tell
	}
	var left int64
	refusing := ""
	for _, n := range nodes {
		if n.Refuses() {
			left += max(n.Max-n.Used, 0)
			refusing = fmt.Sprintf("%s (maxmemory %d, used %d, policy %s)", n.Addr, n.Max, n.Used, n.Policy)
		}
	}
	if refusing == "" {
		return nil
	}
	need := redisRunBytes(p)
	if need > left {
		if len(nodes) > 1 {
			refusing = "the cluster's masters"
		}
		return fmt.Errorf("writing the journal and the first archive needs about %d bytes of Redis memory, %d are left below maxmemory on %s, which refuses writes beyond it", need, left, refusing)
	}
	return nil
}

// redisRunBytes estimates the Redis memory a run of p takes before it
// frees any: the journal (a string of its encoded length), then the
// first archive's samples that are new, at the memory per sample of the
// shards the plan merges (MEMORY USAGE, as Shards reports it; nothing
// when unknown).
func redisRunBytes(p *Plan) int64 {
	need := int64(0)
	if b, err := encodeJournal(journalOf(p, time.Now())); err == nil {
		need += int64(len(b))
	}
	if len(p.Archives) == 0 {
		return need
	}
	var bytes, samples int64
	for _, sp := range p.Shards {
		if sp.Action == Compact && sp.Info.Bytes > 0 && sp.Info.Samples > 0 {
			bytes += sp.Info.Bytes
			samples += int64(sp.Info.Samples)
		}
	}
	if samples == 0 {
		return need
	}
	a := p.Archives[0]
	newSamples := int64(len(a.Samples))
	if a.Existing != nil {
		newSamples -= int64(a.Existing.Samples)
	}
	return need + max(newSamples, 0)*bytes/samples
}
