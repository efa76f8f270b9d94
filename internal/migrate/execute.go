package migrate

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/promstore/promstore/internal/store"
)

// Progress reports how far Execute got.
type Progress struct {
	// Shards and Samples count what is done (written or already present);
	// TotalShards and TotalSamples what the plan holds.
	Shards, TotalShards   int
	Samples, TotalSamples int
	// Written counts the samples actually written so far.
	Written int
	Elapsed time.Duration
}

// Rate returns samples per second so far.
func (p Progress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Samples) / p.Elapsed.Seconds()
}

// ETA estimates the time left; zero when unknown or done.
func (p Progress) ETA() time.Duration {
	r := p.Rate()
	if r <= 0 || p.Samples >= p.TotalSamples {
		return 0
	}
	return time.Duration(float64(p.TotalSamples-p.Samples) / r * float64(time.Second))
}

// Execute writes the plan into dst. With conflicts and policy Fail it
// writes nothing and returns a *ConflictError. With policy Sum it first
// appends the sums to the journal. Shards are written concurrently by
// opts.Workers goroutines; each write is an idempotent upsert, so a run
// stopped half-way (Ctrl-C, a lost server) is completed by building and
// executing the plan again.
func Execute(ctx context.Context, p *Plan, dst store.Writer, opts Options) (Progress, error) {
	start := time.Now()
	prog := Progress{TotalShards: len(p.Shards), TotalSamples: p.Samples}
	if p.Conflicts > 0 && p.Policy == Fail {
		return prog, &ConflictError{Conflicts: p.Conflicts, Reason: "nothing written (choose --on-conflict skip, overwrite or sum)"}
	}
	if p.Policy == Sum {
		if err := appendJournal(opts.Journal, p); err != nil {
			return prog, err
		}
	}

	// Shards with nothing to write are done already.
	var todo []*ShardPlan
	for _, sp := range p.Shards {
		if sp.Writes == 0 {
			prog.Shards++
			prog.Samples += len(sp.Items)
			continue
		}
		todo = append(todo, sp)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = 4
	}
	workers = min(workers, max(len(todo), 1))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	next := make(chan *ShardPlan)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sp := range next {
				samples := make([]store.Sample, 0, sp.Writes)
				for i := range sp.Items {
					it := &sp.Items[i]
					if !it.Write {
						continue
					}
					s := it.Sample
					s.Value, s.Timestamp = it.WriteValue, it.WriteTS
					samples = append(samples, s)
				}
				err := writeShard(ctx, dst, sp, samples)
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = fmt.Errorf("write target shard %s: %w", sp.Target, err)
					}
					cancel()
				} else {
					prog.Shards++
					prog.Samples += len(sp.Items)
					prog.Written += len(samples)
					prog.Elapsed = time.Since(start)
					if opts.Progress != nil {
						opts.Progress(prog)
					}
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, sp := range todo {
		select {
		case next <- sp:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	prog.Elapsed = time.Since(start)
	if firstErr != nil {
		return prog, firstErr
	}
	if err := ctx.Err(); err != nil {
		return prog, err
	}
	return prog, nil
}

// newWriter is a store that writes samples known to be absent more
// cheaply (redisstore: one command fewer per sample, created_at set
// without HSETNX).
type newWriter interface {
	WriteNewShard(ctx context.Context, id store.ShardID, samples []store.Sample) error
}

// updatedWriter is a store that keeps a time of last update per sample
// (redisstore: updated_at), which can be written as the source shard's
// instead of now: cleanup's --stale-after and --min-idle judge a shard by
// it, and a migration is no write of the worker's.
type updatedWriter interface {
	WriteShardUpdated(ctx context.Context, id store.ShardID, samples []store.Sample, updated time.Time) error
	WriteNewShardUpdated(ctx context.Context, id store.ShardID, samples []store.Sample, updated time.Time) error
}

// shardWriter returns the writes of one shard: plain and of samples known
// absent (the same when dst has no cheaper way), with the source shard's
// time of last update where dst keeps one and it is known.
func shardWriter(dst store.Writer, sp *ShardPlan) (write, writeNew func(context.Context, store.ShardID, []store.Sample) error) {
	write, writeNew = dst.WriteShard, dst.WriteShard
	if nw, ok := dst.(newWriter); ok {
		writeNew = nw.WriteNewShard
	}
	if uw, ok := dst.(updatedWriter); ok && !sp.Updated.IsZero() {
		write = func(ctx context.Context, id store.ShardID, ss []store.Sample) error {
			return uw.WriteShardUpdated(ctx, id, ss, sp.Updated)
		}
		writeNew = func(ctx context.Context, id store.ShardID, ss []store.Sample) error {
			return uw.WriteNewShardUpdated(ctx, id, ss, sp.Updated)
		}
	}
	return write, writeNew
}

// writeShard writes the samples of sp (in the order of sp.Items). The
// samples the plan found missing from the target (Create) go through the
// cheaper write of new samples where dst has one.
func writeShard(ctx context.Context, dst store.Writer, sp *ShardPlan, samples []store.Sample) error {
	write, writeNew := shardWriter(dst, sp)
	if _, ok := dst.(newWriter); !ok || sp.New == 0 {
		return write(ctx, sp.Target, samples)
	}
	if sp.New == len(samples) {
		return writeNew(ctx, sp.Target, samples)
	}
	var created, others []store.Sample
	j := 0
	for i := range sp.Items {
		it := &sp.Items[i]
		if !it.Write {
			continue
		}
		if it.Action == Create {
			created = append(created, samples[j])
		} else {
			others = append(others, samples[j])
		}
		j++
	}
	if err := writeNew(ctx, sp.Target, created); err != nil {
		return err
	}
	if len(others) == 0 {
		return nil
	}
	return write(ctx, sp.Target, others)
}

// DeleteSource removes the plan's source shards from src, after checking
// that they still hold exactly what was migrated: a shard a live process
// wrote to since the plan was read is not deleted, and nothing is. It
// refuses when the source had unreadable shards, whose samples the plan
// could not account for.
//
// alive, when not nil, says whether a shard's pid runs on this host (a
// file store's): the shards of running processes are kept, neither
// checked nor deleted, and returned in kept. A running worker keeps
// writing into the file it has mapped; unlinked, every later increment
// would be lost.
func DeleteSource(ctx context.Context, p *Plan, src store.Store, alive func(pid string) store.Liveness) (deleted int, kept []store.ShardID, err error) {
	if len(p.SourceProblems) > 0 {
		return 0, nil, fmt.Errorf("not deleting the source: %d of its shards or keys could not be read", len(p.SourceProblems))
	}
	running := map[string]bool{}
	planned := map[store.ShardID]map[string]*Item{}
	var todo []*ShardPlan
	for _, sp := range p.Shards {
		pid := sp.Source.PID
		if alive != nil {
			if _, ok := running[pid]; !ok {
				running[pid] = alive(pid) == store.AliveYes
			}
			if running[pid] {
				kept = append(kept, sp.Source)
				continue
			}
		}
		m := make(map[string]*Item, len(sp.Items))
		for i := range sp.Items {
			m[sp.Items[i].Text] = &sp.Items[i]
		}
		planned[sp.Source] = m
		todo = append(todo, sp)
	}
	seen := map[store.ShardID]int{}
	var changed []string
	err = src.Scan(ctx, func(s store.Sample) error {
		m := planned[s.Shard]
		if m == nil {
			return nil
		}
		seen[s.Shard]++
		it := m[store.CanonicalKeyText(s.Key)]
		if it == nil || !sameFloat(it.Sample.Value, s.Value) || !sameFloat(it.Sample.Timestamp, s.Timestamp) {
			changed = append(changed, s.Shard.String())
		}
		return nil
	})
	if err != nil {
		return 0, kept, fmt.Errorf("not deleting the source: re-read it: %w", err)
	}
	for id, m := range planned {
		if seen[id] != len(m) {
			changed = append(changed, id.String())
		}
	}
	if len(changed) > 0 {
		sort.Strings(changed)
		return 0, kept, fmt.Errorf("not deleting the source: shard %s changed since it was migrated (is a process still writing?); run the migration again", changed[0])
	}
	for _, sp := range todo {
		if err := src.DeleteShard(ctx, sp.Source); err != nil {
			return deleted, kept, fmt.Errorf("delete source shard %s: %w", sp.Source, err)
		}
		deleted++
	}
	return deleted, kept, nil
}
