package migrate

import (
	"context"
	"fmt"

	"github.com/promstore/promstore/internal/store"
)

// StopReport is what the target holds of a plan after Execute stopped
// part-way, read back from the target: Execute's Progress only counts the
// shards whose writes were acknowledged, while a failed shard may have
// been written in part (a Redis pipeline that failed half-way leaves the
// commands before the failure done).
type StopReport struct {
	// Shards is the number of shards in the plan; Complete, Partial and
	// Untouched count them: every sample the plan writes is in the target
	// and none of the shard's keys is unreadable; some are, or some keys
	// are unreadable; none is and no key is unreadable.
	Shards, Complete, Partial, Untouched int
	// ToWrite is the number of samples the plan writes; Present how many
	// of them the target holds with the written value and timestamp.
	ToWrite, Present int
	// Unreadable counts the keys of the plan's shards that the target
	// could not read as samples (in Redis: metric hashes whose meta hash
	// the failed run did not write).
	Unreadable int
	// PartialShards are the partly written shards, in plan order.
	PartialShards []PartialShard
}

// PartialShard is a shard the stopped run wrote in part.
type PartialShard struct {
	Shard store.ShardID
	// Present of ToWrite samples are in the target as the plan writes them.
	Present, ToWrite int
	// Unreadable are the shard's keys the target could not read as
	// samples.
	Unreadable []*store.ShardError
}

// ReadBack scans the target after Execute stopped and counts, for the
// shards of the plan, which samples it holds as the plan writes them and
// which keys it cannot read (their problems must carry the shard's ID,
// as redisstore's do). Running the plan's migration again writes every
// sample that is not present, which also completes keys written in part.
func ReadBack(ctx context.Context, p *Plan, dst store.Reader) (*StopReport, error) {
	type target struct {
		sp      *ShardPlan
		index   map[string]int
		present int
		bad     []*store.ShardError
	}
	byID := make(map[store.ShardID]*target, len(p.Shards))
	for _, sp := range p.Shards {
		t := &target{sp: sp, index: make(map[string]int, len(sp.Items))}
		for i := range sp.Items {
			t.index[sp.Items[i].Text] = i
		}
		byID[sp.Target] = t
	}
	err := dst.Scan(ctx, func(s store.Sample) error {
		t := byID[s.Shard]
		if t == nil {
			return nil
		}
		i, ok := t.index[store.CanonicalKeyText(s.Key)]
		if !ok {
			return nil
		}
		it := &t.sp.Items[i]
		if it.Write && p.sameSample(it.WriteValue, it.WriteTS, s) {
			t.present++
		}
		return nil
	})
	if problems, ok := store.Partial(err); ok {
		for _, pr := range problems {
			if t := byID[pr.ID]; t != nil && pr.ID.Kind != "" {
				t.bad = append(t.bad, pr)
			}
		}
	} else if err != nil {
		return nil, fmt.Errorf("read the target back: %w", err)
	}
	r := &StopReport{Shards: len(p.Shards)}
	for _, sp := range p.Shards {
		t := byID[sp.Target]
		r.ToWrite += sp.Writes
		r.Present += t.present
		r.Unreadable += len(t.bad)
		switch {
		case t.present == sp.Writes && len(t.bad) == 0:
			r.Complete++
		case t.present == 0 && len(t.bad) == 0:
			r.Untouched++
		default:
			r.Partial++
			r.PartialShards = append(r.PartialShards, PartialShard{Shard: sp.Target, Present: t.present, ToWrite: sp.Writes, Unreadable: t.bad})
		}
	}
	return r, nil
}
