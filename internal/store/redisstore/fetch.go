package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/promstore/promstore/internal/store"
)

// fetchers is how many pipelines of metric hashes a read keeps in flight:
// while the server answers one (or a SCAN), the replies of another are
// decoded. More overlap does not pay on a single server; a Cluster
// pipeline already fans out to every master at once.
const fetchers = 3

// valueResult is what reading one metric hash found.
type valueResult struct {
	value, ts, updated float64
	err                error // the read failed (WRONGTYPE ...)
	vanished           bool  // expired or deleted since SCAN listed it
	bad                error // value or timestamp missing or not a number
}

// valueChunk is up to BatchSize metric hashes read in one pipeline.
type valueChunk struct {
	keys []string
	res  []valueResult
}

// valueReader reads metric hashes while SCAN is still listing keys: add
// queues a key and returns the number its result is found under; full
// chunks go to a few fetchers at once.
type valueReader struct {
	s      *Store
	size   int
	cur    *valueChunk
	chunks []*valueChunk
	queue  chan *valueChunk
	wg     sync.WaitGroup
	once   sync.Once
	err    error
	cancel context.CancelFunc
}

// maxQueued bounds the chunks waiting for a fetcher; SCAN waits beyond.
const maxQueued = 4096

// newValueReader starts the fetchers; cancel is called on the first
// error, to stop the rest of the read.
func (s *Store) newValueReader(ctx context.Context, cancel context.CancelFunc) *valueReader {
	v := &valueReader{s: s, size: s.cfg.BatchSize, queue: make(chan *valueChunk, maxQueued), cancel: cancel}
	for range fetchers {
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			for c := range v.queue {
				if ctx.Err() != nil {
					continue // drain
				}
				if err := s.readValues(ctx, c); err != nil {
					v.once.Do(func() { v.err = err; v.cancel() })
				}
			}
		}()
	}
	return v
}

// add queues the metric hash key; its result will be result(n) for the
// n returned.
func (v *valueReader) add(key string) int32 {
	if v.cur == nil {
		v.cur = &valueChunk{keys: make([]string, 0, v.size)}
		v.chunks = append(v.chunks, v.cur)
	}
	n := int32((len(v.chunks)-1)*v.size + len(v.cur.keys))
	v.cur.keys = append(v.cur.keys, key)
	if len(v.cur.keys) == v.size {
		v.queue <- v.cur
		v.cur = nil
	}
	return n
}

// flush sends the last chunk, once no key is to be added: its values
// then arrive while the reps are read.
func (v *valueReader) flush() {
	if v.cur != nil {
		v.queue <- v.cur
		v.cur = nil
	}
}

// wait sends the last chunk, waits for every read and returns the first
// error.
func (v *valueReader) wait() error {
	v.flush()
	close(v.queue)
	v.wg.Wait()
	return v.err
}

// result is the result of the n-th key added; valid after wait.
func (v *valueReader) result(n int32) *valueResult {
	return &v.chunks[int(n)/v.size].res[int(n)%v.size]
}

// The HMGET of a metric hash, boxed once: cmdable.HMGet boxes every
// field of every call.
var (
	argHMGet     any = "hmget"
	argValue     any = "value"
	argTimestamp any = "timestamp"
	argUpdatedAt any = "updated_at"
)

// readValues reads the value, timestamp and updated_at of a chunk's
// metric hashes in one pipeline.
func (s *Store) readValues(ctx context.Context, c *valueChunk) error {
	pipe := s.client.Pipeline()
	cmds := make([]*redis.Cmd, len(c.keys))
	args := make([]any, 5*len(c.keys))
	for i, k := range c.keys {
		a := args[5*i : 5*i+5 : 5*i+5]
		a[0], a[1], a[2], a[3], a[4] = argHMGet, k, argValue, argTimestamp, argUpdatedAt
		cmds[i] = pipe.Do(ctx, a...)
	}
	if err := s.exec(ctx, pipe); err != nil {
		return err
	}
	c.res = make([]valueResult, len(c.keys))
	for i, cmd := range cmds {
		decodeValues(cmd, &c.res[i])
	}
	return nil
}

// decodeValues parses one metric hash's fields.
func decodeValues(cmd *redis.Cmd, r *valueResult) {
	vals, err := cmd.Slice()
	if err == nil && len(vals) != 3 {
		err = fmt.Errorf("HMGET returned %d values, want 3", len(vals))
	}
	if err != nil {
		r.err = err
		return
	}
	if vals[0] == nil && vals[1] == nil && vals[2] == nil {
		r.vanished = true
		return
	}
	if u, ok := vals[2].(string); ok {
		if t, err := store.ParsePyFloat(u); err == nil {
			r.updated = t
		}
	}
	if r.value, r.bad = field(vals[0], "value"); r.bad != nil {
		return
	}
	r.ts, r.bad = field(vals[1], "timestamp")
}

// field parses a float field of a metric hash.
func field(v any, name string) (float64, error) {
	t, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("metric hash has no %s field", name)
	}
	f, err := store.ParsePyFloat(t)
	if err != nil {
		return 0, fmt.Errorf("%s %s is not a number", name, store.QuoteClip(t))
	}
	return f, nil
}

// exec sends a pipeline. Errors about single keys stay in their commands;
// an error of the connection is returned.
func (s *Store) exec(ctx context.Context, pipe redis.Pipeliner) error {
	s.roundTrips.Add(1)
	cmds, err := pipe.Exec(ctx)
	if err == nil {
		return nil
	}
	for _, c := range cmds {
		if e := c.Err(); e != nil && !errors.Is(e, redis.Nil) && !isKeyError(e) {
			return s.wrap(e)
		}
	}
	return nil
}

// isKeyError reports whether err is about one key (a hash expected where
// the key holds another type) rather than the connection.
func isKeyError(err error) bool {
	return redis.HasErrorPrefix(err, "WRONGTYPE")
}

// nameResult is the key that names a metric hash, or why there is none.
type nameResult struct {
	key *store.Key
	why string
	err error
	// orphan: the meta hash is missing or has no original_key.
	orphan bool
}

// readReps reads the original_key of each group's rep, in pipelines of
// BatchSize commands, a few at once, and names the groups by them.
func (s *Store) readReps(ctx context.Context, groups []*nameGroup, kc *keyCache) error {
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(fetchers)
	for from := 0; from < len(groups); from += s.cfg.BatchSize {
		batch := groups[from:min(from+s.cfg.BatchSize, len(groups))]
		eg.Go(func() error { return s.readRepNames(ectx, batch, kc) })
	}
	return eg.Wait()
}

// readOwnNames reads the meta hashes of the members of groups whose rep
// named no key and returns the members' own names.
func (s *Store) readOwnNames(ctx context.Context, plans []*shardPlan, kc *keyCache) (map[*item]nameResult, error) {
	var members []*item
	for _, p := range plans {
		for i := range p.items {
			if p.items[i].group.failed {
				members = append(members, &p.items[i])
			}
		}
	}
	own := make(map[*item]nameResult, len(members))
	step := max(1, s.cfg.BatchSize/2)
	for from := 0; from < len(members); from += step {
		batch := members[from:min(from+step, len(members))]
		pipe := s.client.Pipeline()
		cmds := make([][]*redis.SliceCmd, len(batch))
		for i, it := range batch {
			for _, meta := range it.metaKeys() {
				cmds[i] = append(cmds[i], pipe.HMGet(ctx, meta, "original_key"))
			}
		}
		if err := s.exec(ctx, pipe); err != nil {
			return nil, err
		}
		for i, it := range batch {
			own[it] = nameOf(it, cmds[i], kc)
		}
	}
	return own, nil
}

// readRepNames reads the original_key of the reps of a batch of groups
// in one pipeline and names the groups by them.
func (s *Store) readRepNames(ctx context.Context, batch []*nameGroup, kc *keyCache) error {
	pipe := s.client.Pipeline()
	cmds := make([]*redis.SliceCmd, len(batch))
	for i, g := range batch {
		cmds[i] = pipe.HMGet(ctx, g.rep, "original_key")
	}
	if err := s.exec(ctx, pipe); err != nil {
		return err
	}
	for i, g := range batch {
		v, err := cmds[i].Result()
		text := ""
		if err == nil {
			text, _ = v[0].(string)
		}
		if text == "" {
			g.failed = true
			continue
		}
		if key, mismatch, err := kc.lookup(text, g.md5); mismatch || err != nil {
			g.failed = true
		} else {
			g.key = key
		}
	}
	return nil
}

// nameOf names a metric hash by its own meta hashes' replies.
func nameOf(it *item, metas []*redis.SliceCmd, kc *keyCache) nameResult {
	text, why, err := originalKey(it, metas)
	if text == "" {
		// Every reason originalKey gives is a missing or empty meta hash.
		return nameResult{why: why, err: err, orphan: true}
	}
	key, mismatch, err := kc.lookup(text, it.group.md5)
	if mismatch {
		return nameResult{why: fmt.Sprintf("original_key %s does not hash to %s", store.QuoteClip(text), it.group.md5)}
	}
	if err != nil {
		return nameResult{why: "original_key", err: err}
	}
	return nameResult{key: key}
}

// originalKey returns the first original_key of the replies to the
// item's meta hashes, or why there is none.
func originalKey(it *item, metas []*redis.SliceCmd) (string, string, error) {
	why, cause := "", error(nil)
	for i, meta := range it.metaKeys() {
		v, err := metas[i].Result()
		if err != nil {
			if why == "" {
				why, cause = "orphan metric hash: reading meta hash "+meta, err
			}
			continue
		}
		if t, ok := v[0].(string); ok && t != "" {
			return t, "", nil
		}
		if why == "" {
			why = "orphan metric hash: meta hash " + meta + " has no original_key"
		}
	}
	return "", why, cause
}

// memoryUsage returns MEMORY USAGE of every item's metric and meta
// hashes, summed per item, per plan.
func (s *Store) memoryUsage(ctx context.Context, plans []*shardPlan) ([][]int64, error) {
	out := make([][]int64, len(plans))
	type ref struct{ p, i int }
	var (
		refs []ref
		cmds []*redis.IntCmd
		pipe = s.client.Pipeline()
	)
	flush := func() error {
		if len(cmds) == 0 {
			return nil
		}
		if err := s.exec(ctx, pipe); err != nil {
			return err
		}
		for j, c := range cmds {
			if n, err := c.Result(); err == nil {
				out[refs[j].p][refs[j].i] += n
			}
		}
		refs, cmds, pipe = refs[:0], cmds[:0], s.client.Pipeline()
		return nil
	}
	for pi, p := range plans {
		out[pi] = make([]int64, len(p.items))
		for i := range p.items {
			it := &p.items[i]
			refs = append(refs, ref{pi, i})
			cmds = append(cmds, pipe.MemoryUsage(ctx, it.metric))
			for _, meta := range it.metaKeys() {
				refs = append(refs, ref{pi, i})
				cmds = append(cmds, pipe.MemoryUsage(ctx, meta))
			}
			if len(cmds) >= s.cfg.BatchSize {
				if err := flush(); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}
