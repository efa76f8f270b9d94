package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/promstore/promstore/internal/store"
)

// keyName is a Redis key of the layout split into its parts.
type keyName struct {
	kind string // "counter", "gauge_all", "gauge" (modeless) ...
	pid  string
	role string // "metric" or "meta"
	md5  string
}

// splitKey splits <prefix>:<kind>:<pid>:<role>:<md5>. The prefix (which
// may contain ':') is stripped first; the pid may contain ':' too.
func (s *Store) splitKey(k string) (keyName, bool) {
	rest, ok := s.cutPrefix(k)
	if !ok {
		return keyName{}, false
	}
	i := strings.IndexByte(rest, ':')
	j := strings.LastIndexByte(rest, ':')
	if i < 0 || j <= i {
		return keyName{}, false
	}
	mid := rest[i+1 : j]
	m := strings.LastIndexByte(mid, ':')
	if m < 0 {
		return keyName{}, false
	}
	return keyName{kind: rest[:i], pid: mid[:m], role: mid[m+1:], md5: rest[j+1:]}, true
}

// cutPrefix returns k without "<prefix>:", and whether k had it.
func (s *Store) cutPrefix(k string) (string, bool) {
	p := s.cfg.Prefix
	if len(k) <= len(p) || k[len(p)] != ':' || k[:len(p)] != p {
		return k, false
	}
	return k[len(p)+1:], true
}

func (s *Store) keyOf(kind, pid, role, md5 string) string {
	return s.cfg.Prefix + ":" + kind + ":" + pid + ":" + role + ":" + md5
}

// shardResult is what reading one shard found.
type shardResult struct {
	samples  []store.Sample
	problems []*store.ShardError
	updated  float64 // max updated_at, Unix seconds
	bytes    int64
}

// cause picks the error to report among those of a read's parts: one
// part failing cancels the others, so the first error that is not a
// cancellation is the cause; nil if there is none.
func cause(errs ...error) error {
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if !errors.Is(err, context.Canceled) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// maxQueuedBatches bounds the SCAN batches waiting to be planned.
const maxQueuedBatches = 64

// read reads every shard and calls emit per shard in plan order. The
// metric hashes are read while SCAN lists the keys (see valueReader);
// once the listing is complete, the shards are planned and the names of
// the samples read (see nameGroup) while the last values arrive.
//
// In a Cluster the listing is taken again while slots move (see
// listStable): nothing is emitted before the listing is known complete.
func (s *Store) read(ctx context.Context, withMemory bool, emit func(p *shardPlan, r *shardResult) error) ([]*store.ShardError, error) {
	var loose []*store.ShardError
	err := s.listStable(ctx, func(ctx context.Context, settle func() error) error {
		var err error
		loose, err = s.readOnce(ctx, withMemory, emit, settle)
		return err
	})
	return loose, err
}

// readOnce is read with one listing; settle is called once it is
// complete, before anything is emitted.
func (s *Store) readOnce(ctx context.Context, withMemory bool, emit func(p *shardPlan, r *shardResult) error, settle func() error) ([]*store.ShardError, error) {
	kc := s.keyCaches.take()
	complete := false
	defer func() { s.keyCaches.put(kc, complete) }()

	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	vr := s.newValueReader(fctx, cancel)
	pl := s.newPlanner()
	// SCAN calls follow each other at once; the batches are planned (and
	// their metric hashes queued for reading) on another goroutine.
	batches := make(chan []string, maxQueuedBatches)
	planned := make(chan struct{})
	go func() {
		defer close(planned)
		for b := range batches {
			pl.add(b, vr.add)
		}
	}()
	scanErr := s.scanNodesEach(fctx, globEscape(s.cfg.Prefix)+":*", func(batch []string) {
		batches <- batch
	})
	close(batches)
	<-planned
	if scanErr != nil {
		cancel()
		valErr := vr.wait()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, cause(scanErr, valErr)
	}
	if err := settle(); err != nil {
		cancel()
		_ = vr.wait()
		return nil, err
	}
	// The last values and the reps' names are read while the shards are
	// planned.
	vr.flush()
	byMI, groups := pl.groups()
	reps := make(chan error, 1)
	if s.everyMeta.Load() {
		// Every member is named by its own meta hash (readOwnNames).
		for _, g := range groups {
			g.failed = true
		}
		reps <- nil
	} else {
		go func() { reps <- s.readReps(fctx, groups, kc) }()
	}
	plans, loose := pl.finish(byMI)
	nameErr := <-reps
	var own map[*item]nameResult
	if nameErr == nil {
		own, nameErr = s.readOwnNames(fctx, plans, kc)
	}
	var mem [][]int64
	if nameErr == nil && withMemory {
		mem, nameErr = s.memoryUsage(fctx, plans)
	}
	var rank []int32
	if nameErr != nil {
		cancel()
	} else {
		// Sorted while the last values may still be on their way.
		rank = rankKeys(groups, own)
	}
	valErr := vr.wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := cause(valErr, nameErr); err != nil {
		return nil, err
	}
	// Shards are assembled on every core, ahead of emit, which runs here
	// in plan order.
	results := make([]*shardResult, len(plans))
	ready := make([]chan struct{}, len(plans))
	for i := range ready {
		ready[i] = make(chan struct{})
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for range min(runtime.GOMAXPROCS(0), len(plans)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(plans) || fctx.Err() != nil {
					return
				}
				var m []int64
				if mem != nil {
					m = mem[i]
				}
				results[i] = assemble(plans[i], vr, own, m, rank)
				close(ready[i])
			}
		}()
	}
	for i, p := range plans {
		select {
		case <-ready[i]:
		case <-fctx.Done():
			return nil, ctx.Err()
		}
		r := results[i]
		results[i] = nil
		if err := emit(p, r); err != nil {
			return nil, err
		}
	}
	complete = true
	return loose, nil
}

// rankKeys sorts the keys that name the samples by text, once for all
// shards: rank[key.ID] is a key's place.
func rankKeys(groups []*nameGroup, own map[*item]nameResult) []int32 {
	keys := make([]*store.Key, 0, len(groups)+len(own))
	for _, g := range groups {
		if g.key != nil {
			keys = append(keys, g.key)
		}
	}
	for _, nr := range own {
		if nr.key != nil {
			keys = append(keys, nr.key)
		}
	}
	slices.SortFunc(keys, func(a, b *store.Key) int { return strings.Compare(a.Text, b.Text) })
	var maxID uint32
	for _, k := range keys {
		maxID = max(maxID, k.ID)
	}
	rank := make([]int32, maxID+1)
	for i, k := range keys {
		rank[k.ID] = int32(i)
	}
	return rank
}

// assemble gathers one shard's results: its samples sorted by key text
// (unique within a shard: each text hashes to its key's md5; a key SCAN
// listed twice is read twice and kept once) and its problems sorted by
// key name. mem holds the items' memory, if read; rank orders the keys.
func assemble(p *shardPlan, vr *valueReader, own map[*item]nameResult, mem []int64, rank []int32) *shardResult {
	r := &shardResult{problems: append([]*store.ShardError(nil), p.problems...)}
	// The samples' keys and results, and their order: rank in the high
	// half, place in picks in the low one (sorting plain integers costs a
	// fraction of sorting samples).
	type pick struct {
		key *store.Key
		x   *valueResult
	}
	picks := make([]pick, 0, len(p.items))
	order := make([]uint64, 0, len(p.items))
	for i := range p.items {
		it, x := &p.items[i], vr.result(p.items[i].val)
		if mem != nil {
			r.bytes += mem[i]
		}
		if x.err != nil {
			r.problems = append(r.problems, shardProblem(p.id, it.metric, "reading the metric hash", x.err))
			continue
		}
		if x.vanished {
			continue
		}
		r.updated = max(r.updated, x.updated)
		key := it.group.key
		if it.group.failed {
			nr := own[it]
			if nr.key == nil {
				mk := shardProblem
				if nr.orphan {
					mk = orphanProblem
				}
				r.problems = append(r.problems, mk(p.id, it.metric, nr.why, nr.err))
				continue
			}
			key = nr.key
		}
		if x.bad != nil {
			r.problems = append(r.problems, shardProblem(p.id, it.metric, "", x.bad))
			continue
		}
		order = append(order, uint64(uint32(rank[key.ID]))<<32|uint64(len(picks)))
		picks = append(picks, pick{key, x})
	}
	slices.Sort(order)
	r.samples = make([]store.Sample, 0, len(order))
	var last *store.Key
	for _, o := range order {
		pk := picks[uint32(o)]
		if pk.key == last {
			continue // listed twice by SCAN: kept once
		}
		last = pk.key
		r.samples = append(r.samples, store.Sample{Shard: p.id, Key: pk.key, Value: pk.x.value, Timestamp: pk.x.ts})
	}
	r.problems = sortProblems(r.problems)
	return r
}

// Scan streams every sample, shard by shard (sorted by kind name and pid),
// samples sorted by key text. Keys it cannot read are skipped and
// returned in a *store.PartialError at the end.
func (s *Store) Scan(ctx context.Context, fn store.ScanFunc) error {
	var errs store.ScanErrors
	loose, err := s.read(ctx, false, func(p *shardPlan, r *shardResult) error {
		for _, pr := range r.problems {
			errs.Add(pr)
		}
		s.problems.Add(int64(len(r.problems)))
		for _, smp := range r.samples {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(smp); err != nil {
				return err
			}
			s.samples.Add(1)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, pr := range loose {
		errs.Add(pr)
	}
	s.problems.Add(int64(len(loose)))
	return errs.Err()
}

// Shards lists the shards that hold metric hashes, with their sample
// counts, memory (MEMORY USAGE of their metric and meta hashes), last
// updated_at and problems. Keys that belong to no shard are returned in a
// *store.PartialError beside the list.
func (s *Store) Shards(ctx context.Context) ([]store.ShardInfo, error) {
	var out []store.ShardInfo
	loose, err := s.read(ctx, true, func(p *shardPlan, r *shardResult) error {
		info := store.ShardInfo{
			ID:        p.id,
			Location:  s.cfg.Prefix + ":" + p.id.KindName() + ":" + p.id.PID + ":*",
			Bytes:     r.bytes, // memory: one size for all three
			Allocated: r.bytes,
			Used:      r.bytes,
			Samples:   len(r.samples),
			Alive:     store.AliveUnknown,
		}
		if r.updated > 0 {
			sec, frac := math.Modf(r.updated)
			info.Updated = time.Unix(int64(sec), int64(frac*1e9))
		}
		if n := countOrphans(r.problems); n > 0 {
			info.Problems = append(info.Problems, fmt.Sprintf("%d orphan metric hashes (no usable meta hash)", n))
		}
		if n := len(r.problems) - countOrphans(r.problems); n > 0 {
			info.Problems = append(info.Problems, fmt.Sprintf("%d unreadable metric hashes (first: %v)", n, firstNonOrphan(r.problems)))
			info.Unreadable = true
		}
		if p.adopted > 0 {
			info.Problems = append(info.Problems, fmt.Sprintf("%d modeless gauge hashes (%s:gauge:%s:metric:*) read in this shard", p.adopted, s.cfg.Prefix, p.id.PID))
		}
		if p.shadows > 0 {
			info.Problems = append(info.Problems, fmt.Sprintf("%d modeless gauge hashes (%s:gauge:%s:metric:*) shadowed by this shard", p.shadows, s.cfg.Prefix, p.id.PID))
		}
		out = append(out, info)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var errs store.ScanErrors
	for _, pr := range loose {
		errs.Add(pr)
	}
	return out, errs.Err()
}

func countOrphans(ps []*store.ShardError) int {
	n := 0
	for _, p := range ps {
		if p.Kind == store.ProblemOrphan {
			n++
		}
	}
	return n
}

func firstNonOrphan(ps []*store.ShardError) error {
	for _, p := range ps {
		if p.Kind != store.ProblemOrphan {
			return p
		}
	}
	return nil
}
