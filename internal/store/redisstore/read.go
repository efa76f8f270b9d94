package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

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

// item is one metric hash to read, with the meta hashes that may name it
// (two for a modeless gauge hash that is adopted by a gauge_<mode> meta).
type item struct {
	metric string
	metas  [2]string
	nmetas int
	md5    string
	// unchecked is set when the plan did not look whether SCAN listed the
	// meta hash; decoding does when the meta hash yields no original_key.
	unchecked bool
}

func (it *item) metaKeys() []string { return it.metas[:it.nmetas] }

// shardPlan is what one shard's scan reads.
type shardPlan struct {
	id       store.ShardID
	items    []item // in SCAN order; a key SCAN listed twice is here twice
	problems []*store.ShardError
	adopted  int // modeless gauge keys read in this shard
	shadows  int // modeless gauge keys ignored because this shard has the value

	// The modeless keys behind adopted and shadows, while planning.
	adoptedKeys, shadowKeys []string
}

// plan lists the store's keys and groups the metric hashes into shards,
// sorted by kind name and pid. Keys that belong to no shard are returned
// as problems, sorted by key name. A metric hash's meta hash is read along
// with it whether or not it was listed: the listing (the returned keySet)
// is only looked at when it yields no original_key, and for modeless gauge
// hashes. SCAN may return a key twice (while the server rehashes):
// assemble keeps one sample.
func (s *Store) plan(ctx context.Context) ([]*shardPlan, []*store.ShardError, *keySet, error) {
	keys, err := s.scanNodes(ctx, globEscape(s.cfg.Prefix)+":*")
	if err != nil {
		return nil, nil, nil, err
	}
	listed := &keySet{keys: keys}
	type sk struct{ kind, pid string }
	plans := map[sk]*shardPlan{}
	get := func(id store.ShardID) *shardPlan {
		p := plans[sk{id.KindName(), id.PID}]
		if p == nil {
			p = &shardPlan{id: id}
			plans[sk{id.KindName(), id.PID}] = p
		}
		return p
	}
	var (
		loose    []*store.ShardError
		modeless []modelessKey
	)
	for _, k := range keys {
		n, ok := s.splitKey(k)
		if !ok || n.role != "metric" {
			if rest, _ := s.cutPrefix(k); strings.Contains(rest, ":metric:") {
				loose = append(loose, problem(k, "key name is not <prefix>:<kind>:<pid>:metric:<md5>", nil))
			}
			continue // meta hashes and foreign keys are not samples
		}
		if !utf8.ValidString(k) {
			loose = append(loose, problem(k, "key name is not valid UTF-8", nil))
			continue
		}
		if n.pid == "" || n.md5 == "" {
			loose = append(loose, problem(k, "key name has an empty pid or hash", nil))
			continue
		}
		if n.kind == "gauge" {
			modeless = append(modeless, modelessKey{n, k})
			continue
		}
		kind, mode, err := store.ParseKindName(n.kind)
		if err != nil {
			loose = append(loose, problem(k, "key name", err))
			continue
		}
		p := get(store.ShardID{Kind: kind, Mode: mode, PID: n.pid})
		p.items = append(p.items, item{metric: k, metas: [2]string{s.keyOf(n.kind, n.pid, "meta", n.md5)}, nmetas: 1, md5: n.md5, unchecked: true})
	}
	for _, m := range modeless {
		s.planModeless(m, listed, get)
	}

	out := make([]*shardPlan, 0, len(plans))
	for _, p := range plans {
		p.adopted, p.shadows = countUnique(p.adoptedKeys), countUnique(p.shadowKeys)
		p.adoptedKeys, p.shadowKeys = nil, nil
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return lessShard(out[i].id, out[j].id) })
	return out, sortProblems(loose), listed, nil
}

// keySet tells whether SCAN listed a key; the set is built on first use.
type keySet struct {
	once sync.Once
	keys []string
	set  map[string]struct{}
}

func (ks *keySet) has(k string) bool {
	ks.once.Do(func() {
		ks.set = make(map[string]struct{}, len(ks.keys))
		for _, k := range ks.keys {
			ks.set[k] = struct{}{}
		}
	})
	_, ok := ks.set[k]
	return ok
}

// modelessKey is a <prefix>:gauge:<pid>:metric:<md5> key.
type modelessKey struct {
	n keyName
	k string
}

// sortProblems sorts problems by key name and drops repeats (a key SCAN
// returned twice).
func sortProblems(ps []*store.ShardError) []*store.ShardError {
	slices.SortStableFunc(ps, func(a, b *store.ShardError) int { return strings.Compare(a.Shard, b.Shard) })
	return slices.CompactFunc(ps, func(a, b *store.ShardError) bool { return a.Shard == b.Shard && a.Reason == b.Reason })
}

// countUnique counts the distinct strings of ks (sorting it).
func countUnique(ks []string) int {
	slices.Sort(ks)
	return len(slices.Compact(ks))
}

// planModeless resolves a <prefix>:gauge:<pid>:metric:<md5> key as
// formats.md says: a shadow of an existing gauge_<mode> metric hash, the
// value of a series whose gauge_<mode> meta hash alone exists, or mode all.
func (s *Store) planModeless(m modelessKey, listed *keySet, get func(store.ShardID) *shardPlan) {
	n, k := m.n, m.k
	for _, mode := range store.GaugeModes {
		if listed.has(s.keyOf("gauge_"+mode, n.pid, "metric", n.md5)) {
			p := get(store.ShardID{Kind: store.KindGauge, Mode: mode, PID: n.pid})
			p.shadowKeys = append(p.shadowKeys, k)
			return
		}
	}
	mode, modeMeta := "all", ""
	for _, gm := range store.GaugeModes {
		if mk := s.keyOf("gauge_"+gm, n.pid, "meta", n.md5); listed.has(mk) {
			mode, modeMeta = gm, mk
			break
		}
	}
	p := get(store.ShardID{Kind: store.KindGauge, Mode: mode, PID: n.pid})
	p.adoptedKeys = append(p.adoptedKeys, k)
	meta := s.keyOf(n.kind, n.pid, "meta", n.md5)
	it := item{metric: k, md5: n.md5}
	if listed.has(meta) {
		it.metas[it.nmetas] = meta
		it.nmetas++
	}
	if modeMeta != "" {
		it.metas[it.nmetas] = modeMeta
		it.nmetas++
	}
	if it.nmetas == 0 {
		p.problems = append(p.problems, problem(k, "orphan modeless gauge hash: meta hash "+meta+" is missing", nil))
		return
	}
	p.items = append(p.items, it)
}

func problem(key, reason string, err error) *store.ShardError {
	return &store.ShardError{Shard: key, Offset: -1, Reason: reason, Err: err}
}

// lessShard orders shards by kind name, then pid (numerically when both
// are decimal numbers).
func lessShard(a, b store.ShardID) bool {
	if ka, kb := a.KindName(), b.KindName(); ka != kb {
		return ka < kb
	}
	if isDecimal(a.PID) && isDecimal(b.PID) && len(a.PID) != len(b.PID) {
		return len(a.PID) < len(b.PID)
	}
	return a.PID < b.PID
}

func isDecimal(s string) bool {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// shardResult is what reading one shard found.
type shardResult struct {
	samples  []store.Sample
	problems []*store.ShardError
	updated  float64 // max updated_at, Unix seconds
	bytes    int64
}

// itemResult is what reading one item found: a sample (key set), a
// problem, or neither (the hash vanished since the SCAN).
type itemResult struct {
	key       *store.Key
	value, ts float64
	updated   float64
	bytes     int64
	problem   *store.ShardError
}

// chunk is a run of items, possibly spanning shards, fetched in one
// pipeline of about BatchSize commands.
type chunk struct {
	segs []segment
}

// segment is items[from:to] of plan p.
type segment struct{ p, from, to int }

// fetchers is how many pipelines a read keeps in flight: while the server
// answers one, the replies of another are decoded. More overlap does not
// pay on a single server; a Cluster pipeline already fans out to every
// master at once.
const fetchers = 3

// read reads every shard and calls emit per shard in plan order. Pipelines
// of about BatchSize commands are sent by a few fetchers at once, each
// decoding its own replies; emit runs on the calling goroutine, in order.
func (s *Store) read(ctx context.Context, withMemory bool, emit func(p *shardPlan, r *shardResult) error) ([]*store.ShardError, error) {
	plans, loose, listed, err := s.plan(ctx)
	if err != nil {
		return nil, err
	}
	chunks, ready := s.chunks(plans, withMemory)
	results := make([][]itemResult, len(plans))
	for i, p := range plans {
		results[i] = make([]itemResult, len(p.items))
	}

	kc := s.keyCaches.take()
	complete := false
	defer func() { s.keyCaches.put(kc, complete) }()

	fctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	done := make([]chan error, len(chunks))
	for i := range done {
		done[i] = make(chan error, 1)
	}
	var next atomic.Int64
	for range min(fetchers, len(chunks)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(chunks) {
					return
				}
				if err := fctx.Err(); err != nil {
					done[i] <- err
					return
				}
				done[i] <- s.fetchChunk(fctx, plans, chunks[i], results, withMemory, kc, listed)
			}
		}()
	}

	p := 0
	for c := 0; c <= len(chunks); c++ {
		if c > 0 {
			select {
			case err := <-done[c-1]:
				if err != nil {
					return nil, err
				}
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		// Emit the shards whose items have all arrived.
		for ; p < len(plans) && ready[p] <= c; p++ {
			if err := emit(plans[p], assemble(plans[p], results[p])); err != nil {
				return nil, err
			}
			results[p] = nil
		}
	}
	complete = true
	return loose, nil
}

// chunks cuts the items of all plans into pipelines of about BatchSize
// commands; ready[p] is how many chunks must have arrived before plan p
// is complete.
func (s *Store) chunks(plans []*shardPlan, withMemory bool) ([]chunk, []int) {
	var (
		out   []chunk
		cur   chunk
		n     int
		ready = make([]int, len(plans))
	)
	for pi, p := range plans {
		from := 0
		for i := range p.items {
			cost := 1 + p.items[i].nmetas
			if withMemory {
				cost *= 2
			}
			if n > 0 && n+cost > s.cfg.BatchSize {
				if i > from {
					cur.segs = append(cur.segs, segment{pi, from, i})
				}
				out = append(out, cur)
				cur, n, from = chunk{}, 0, i
			}
			n += cost
		}
		if len(p.items) > from {
			cur.segs = append(cur.segs, segment{pi, from, len(p.items)})
		}
		ready[pi] = len(out)
		if len(cur.segs) > 0 && cur.segs[len(cur.segs)-1].p == pi {
			ready[pi]++ // its last items are in the chunk being filled
		}
	}
	if len(cur.segs) > 0 {
		out = append(out, cur)
	}
	return out, ready
}

// fetch holds the pending replies of one item.
type fetch struct {
	vals  *redis.SliceCmd
	metas [2]*redis.SliceCmd
	mem   [3]*redis.IntCmd
}

// fetchChunk sends the HMGETs (and MEMORY USAGEs) of one chunk in one
// pipeline and decodes the replies into results.
func (s *Store) fetchChunk(ctx context.Context, plans []*shardPlan, c chunk, results [][]itemResult, withMemory bool, kc *keyCache, listed *keySet) error {
	n := 0
	for _, sg := range c.segs {
		n += sg.to - sg.from
	}
	fs := make([]fetch, n)
	pipe := s.client.Pipeline()
	j := 0
	for _, sg := range c.segs {
		for i := sg.from; i < sg.to; i++ {
			it, f := &plans[sg.p].items[i], &fs[j]
			j++
			f.vals = pipe.HMGet(ctx, it.metric, "value", "timestamp", "updated_at")
			for m, meta := range it.metaKeys() {
				f.metas[m] = pipe.HMGet(ctx, meta, "original_key")
			}
			if withMemory {
				f.mem[0] = pipe.MemoryUsage(ctx, it.metric)
				for m, meta := range it.metaKeys() {
					f.mem[1+m] = pipe.MemoryUsage(ctx, meta)
				}
			}
		}
	}
	s.roundTrips.Add(1)
	if cmds, err := pipe.Exec(ctx); err != nil {
		for _, c := range cmds {
			if e := c.Err(); e != nil && !errors.Is(e, redis.Nil) && !isKeyError(e) {
				return s.wrap(e)
			}
		}
	}
	j = 0
	for _, sg := range c.segs {
		for i := sg.from; i < sg.to; i++ {
			decodeItem(&plans[sg.p].items[i], &fs[j], kc, listed, &results[sg.p][i])
			j++
		}
	}
	return nil
}

// isKeyError reports whether err is about one key (a hash expected where
// the key holds another type) rather than the connection.
func isKeyError(err error) bool {
	return redis.HasErrorPrefix(err, "WRONGTYPE")
}

// decodeItem turns one item's replies into a sample or a problem.
func decodeItem(it *item, f *fetch, kc *keyCache, listed *keySet, r *itemResult) {
	for _, m := range f.mem {
		if m == nil {
			continue
		}
		if n, err := m.Result(); err == nil {
			r.bytes += n
		}
	}
	vals, err := f.vals.Result()
	if err != nil {
		r.problem = problem(it.metric, "reading the metric hash", err)
		return
	}
	if vals[0] == nil && vals[1] == nil && vals[2] == nil {
		return // vanished (expired or deleted) since the SCAN
	}
	if u, ok := vals[2].(string); ok {
		if t, err := store.ParsePyFloat(u); err == nil {
			r.updated = t
		}
	}
	text, why, err := originalKey(it, f)
	if text == "" {
		if it.unchecked && !listed.has(it.metas[0]) {
			// An orphan: not read, as if planned without its meta hash,
			// so its memory and updated_at do not count.
			*r = itemResult{problem: problem(it.metric, "orphan metric hash: meta hash "+it.metas[0]+" is missing", nil)}
			return
		}
		r.problem = problem(it.metric, why, err)
		return
	}
	key, mismatch, err := kc.lookup(text, it.md5)
	if mismatch {
		r.problem = problem(it.metric, fmt.Sprintf("original_key %q does not hash to %s", text, it.md5), nil)
		return
	}
	if err != nil {
		r.problem = problem(it.metric, "original_key", err)
		return
	}
	value, err := field(vals[0], "value")
	if err != nil {
		r.problem = problem(it.metric, "", err)
		return
	}
	ts, err := field(vals[1], "timestamp")
	if err != nil {
		r.problem = problem(it.metric, "", err)
		return
	}
	r.key, r.value, r.ts = key, value, ts
}

// assemble gathers one shard's item results: its samples sorted by key
// text (unique within a shard: each text hashes to its key's md5; a key
// SCAN listed twice is read twice and kept once) and its problems sorted
// by key name.
func assemble(p *shardPlan, res []itemResult) *shardResult {
	r := &shardResult{problems: append([]*store.ShardError(nil), p.problems...)}
	n := 0
	for i := range res {
		if res[i].key != nil {
			n++
		}
	}
	r.samples = make([]store.Sample, 0, n)
	for i := range res {
		x := &res[i]
		r.bytes += x.bytes
		if x.updated > r.updated {
			r.updated = x.updated
		}
		switch {
		case x.problem != nil:
			r.problems = append(r.problems, x.problem)
		case x.key != nil:
			r.samples = append(r.samples, store.Sample{Shard: p.id, Key: x.key, Value: x.value, Timestamp: x.ts})
		}
	}
	slices.SortFunc(r.samples, func(a, b store.Sample) int { return strings.Compare(a.Key.Text, b.Key.Text) })
	r.samples = slices.CompactFunc(r.samples, func(a, b store.Sample) bool { return a.Key == b.Key })
	r.problems = sortProblems(r.problems)
	return r
}

// originalKey returns the first original_key of the item's meta hashes,
// or why there is none.
func originalKey(it *item, f *fetch) (string, string, error) {
	why, cause := "", error(nil)
	for i, meta := range it.metaKeys() {
		v, err := f.metas[i].Result()
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

// field parses a float field of a metric hash.
func field(v any, name string) (float64, error) {
	t, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("metric hash has no %s field", name)
	}
	f, err := store.ParsePyFloat(t)
	if err != nil {
		return 0, fmt.Errorf("%s %q is not a number", name, t)
	}
	return f, nil
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
			ID:       p.id,
			Location: s.cfg.Prefix + ":" + p.id.KindName() + ":" + p.id.PID + ":*",
			Bytes:    r.bytes,
			Samples:  len(r.samples),
			Alive:    store.AliveUnknown,
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
		if strings.HasPrefix(p.Reason, "orphan") {
			n++
		}
	}
	return n
}

func firstNonOrphan(ps []*store.ShardError) error {
	for _, p := range ps {
		if !strings.HasPrefix(p.Reason, "orphan") {
			return p
		}
	}
	return nil
}
