package redisstore

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
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
	rest, ok := strings.CutPrefix(k, s.cfg.Prefix+":")
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

func (s *Store) keyOf(kind, pid, role, md5 string) string {
	return s.cfg.Prefix + ":" + kind + ":" + pid + ":" + role + ":" + md5
}

// item is one metric hash to read, with the meta hashes that may name it.
type item struct {
	metric string
	metas  []string
	md5    string
}

// shardPlan is what one shard's scan reads.
type shardPlan struct {
	id       store.ShardID
	items    []item
	problems []*store.ShardError
	adopted  int // modeless gauge keys read in this shard
	shadows  int // modeless gauge keys ignored because this shard has the value
}

// plan lists the store's keys and groups the metric hashes into shards,
// sorted by kind name and pid. Keys that belong to no shard are returned
// as problems.
func (s *Store) plan(ctx context.Context) ([]*shardPlan, []*store.ShardError, error) {
	keys, err := s.scanNodes(ctx, globEscape(s.cfg.Prefix)+":*")
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(keys)
	exists := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		exists[k] = struct{}{}
	}
	has := func(k string) bool { _, ok := exists[k]; return ok }

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
	var loose []*store.ShardError
	for _, k := range keys {
		n, ok := s.splitKey(k)
		if !ok || n.role != "metric" {
			if strings.Contains(strings.TrimPrefix(k, s.cfg.Prefix+":"), ":metric:") {
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
		meta := s.keyOf(n.kind, n.pid, "meta", n.md5)
		if n.kind == "gauge" {
			s.planModeless(n, k, meta, has, get)
			continue
		}
		kind, mode, err := store.ParseKindName(n.kind)
		if err != nil {
			loose = append(loose, problem(k, "key name", err))
			continue
		}
		p := get(store.ShardID{Kind: kind, Mode: mode, PID: n.pid})
		if !has(meta) {
			p.problems = append(p.problems, problem(k, "orphan metric hash: meta hash "+meta+" is missing", nil))
			continue
		}
		p.items = append(p.items, item{metric: k, metas: []string{meta}, md5: n.md5})
	}

	out := make([]*shardPlan, 0, len(plans))
	for _, p := range plans {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return lessShard(out[i].id, out[j].id) })
	return out, loose, nil
}

// planModeless resolves a <prefix>:gauge:<pid>:metric:<md5> key as
// formats.md says: a shadow of an existing gauge_<mode> metric hash, the
// value of a series whose gauge_<mode> meta hash alone exists, or mode all.
func (s *Store) planModeless(n keyName, k, meta string, has func(string) bool, get func(store.ShardID) *shardPlan) {
	for _, m := range store.GaugeModes {
		if has(s.keyOf("gauge_"+m, n.pid, "metric", n.md5)) {
			get(store.ShardID{Kind: store.KindGauge, Mode: m, PID: n.pid}).shadows++
			return
		}
	}
	mode, modeMeta := "all", ""
	for _, m := range store.GaugeModes {
		if mk := s.keyOf("gauge_"+m, n.pid, "meta", n.md5); has(mk) {
			mode, modeMeta = m, mk
			break
		}
	}
	p := get(store.ShardID{Kind: store.KindGauge, Mode: mode, PID: n.pid})
	p.adopted++
	var metas []string
	if has(meta) {
		metas = append(metas, meta)
	}
	if modeMeta != "" {
		metas = append(metas, modeMeta)
	}
	if len(metas) == 0 {
		p.problems = append(p.problems, problem(k, "orphan modeless gauge hash: meta hash "+meta+" is missing", nil))
		return
	}
	p.items = append(p.items, item{metric: k, metas: metas, md5: n.md5})
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

// fetch holds the pending replies of one item.
type fetch struct {
	vals  *redis.SliceCmd
	metas []*redis.SliceCmd
	mem   []*redis.IntCmd
}

// read reads every shard and calls emit per shard in plan order. Keys are
// interned in keys so that samples of one key text share one *Key.
func (s *Store) read(ctx context.Context, withMemory bool, emit func(p *shardPlan, r *shardResult) error) ([]*store.ShardError, error) {
	plans, loose, err := s.plan(ctx)
	if err != nil {
		return nil, err
	}
	keys := map[string]*store.Key{}
	for start := 0; start < len(plans); {
		// A window of whole shards of about BatchSize items.
		end, n := start, 0
		for end < len(plans) && (end == start || n+len(plans[end].items) <= s.cfg.BatchSize) {
			n += len(plans[end].items)
			end++
		}
		window := plans[start:end]
		fetches, err := s.fetchWindow(ctx, window, withMemory)
		if err != nil {
			return nil, err
		}
		for i, p := range window {
			r := s.decode(p, fetches[i], keys)
			if err := emit(p, r); err != nil {
				return nil, err
			}
		}
		start = end
	}
	return loose, nil
}

// fetchWindow sends the HMGETs (and MEMORY USAGEs) of a window of shards
// in pipelines of BatchSize commands.
func (s *Store) fetchWindow(ctx context.Context, window []*shardPlan, withMemory bool) ([][]fetch, error) {
	out := make([][]fetch, len(window))
	pipe := s.client.Pipeline()
	queued := 0
	flush := func() error {
		if queued == 0 {
			return nil
		}
		s.roundTrips.Add(1)
		cmds, err := pipe.Exec(ctx)
		queued = 0
		if err == nil {
			return nil
		}
		for _, c := range cmds {
			if e := c.Err(); e != nil && e != redis.Nil && !isKeyError(e) {
				return s.wrap(e)
			}
		}
		return nil
	}
	add := func() error {
		queued++
		if queued >= s.cfg.BatchSize {
			return flush()
		}
		return nil
	}
	for i, p := range window {
		out[i] = make([]fetch, len(p.items))
		for j, it := range p.items {
			f := &out[i][j]
			f.vals = pipe.HMGet(ctx, it.metric, "value", "timestamp", "updated_at")
			if err := add(); err != nil {
				return nil, err
			}
			for _, m := range it.metas {
				f.metas = append(f.metas, pipe.HMGet(ctx, m, "original_key"))
				if err := add(); err != nil {
					return nil, err
				}
			}
			if withMemory {
				for _, k := range append([]string{it.metric}, it.metas...) {
					f.mem = append(f.mem, pipe.MemoryUsage(ctx, k))
					if err := add(); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// isKeyError reports whether err is about one key (a hash expected where
// the key holds another type) rather than the connection.
func isKeyError(err error) bool {
	return redis.HasErrorPrefix(err, "WRONGTYPE")
}

// decode turns one shard's replies into samples sorted by key text.
func (s *Store) decode(p *shardPlan, fs []fetch, keys map[string]*store.Key) *shardResult {
	r := &shardResult{problems: append([]*store.ShardError(nil), p.problems...)}
	for i, it := range p.items {
		f := fs[i]
		for _, m := range f.mem {
			if n, err := m.Result(); err == nil {
				r.bytes += n
			}
		}
		vals, err := f.vals.Result()
		if err != nil {
			r.problems = append(r.problems, problem(it.metric, "reading the metric hash", err))
			continue
		}
		if vals[0] == nil && vals[1] == nil && vals[2] == nil {
			continue // vanished (expired or deleted) since the SCAN
		}
		if u, ok := vals[2].(string); ok {
			if t, err := store.ParsePyFloat(u); err == nil && t > r.updated {
				r.updated = t
			}
		}
		text, why, err := originalKey(it, f)
		if text == "" {
			r.problems = append(r.problems, problem(it.metric, why, err))
			continue
		}
		if md5hex(text) != it.md5 {
			r.problems = append(r.problems, problem(it.metric, fmt.Sprintf("original_key %q does not hash to %s", text, it.md5), nil))
			continue
		}
		key := keys[text]
		if key == nil {
			if key, err = store.ParseKey(text); err != nil {
				r.problems = append(r.problems, problem(it.metric, "original_key", err))
				continue
			}
			keys[text] = key
		}
		value, err := field(vals[0], "value")
		if err != nil {
			r.problems = append(r.problems, problem(it.metric, "", err))
			continue
		}
		ts, err := field(vals[1], "timestamp")
		if err != nil {
			r.problems = append(r.problems, problem(it.metric, "", err))
			continue
		}
		r.samples = append(r.samples, store.Sample{Shard: p.id, Key: key, Value: value, Timestamp: ts})
	}
	sort.SliceStable(r.samples, func(i, j int) bool { return r.samples[i].Key.Text < r.samples[j].Key.Text })
	return r
}

// originalKey returns the first original_key of the item's meta hashes,
// or why there is none.
func originalKey(it item, f fetch) (string, string, error) {
	why, cause := "", error(nil)
	for i, m := range f.metas {
		v, err := m.Result()
		if err != nil {
			if why == "" {
				why, cause = "orphan metric hash: reading meta hash "+it.metas[i], err
			}
			continue
		}
		if t, ok := v[0].(string); ok && t != "" {
			return t, "", nil
		}
		if why == "" {
			why = "orphan metric hash: meta hash " + it.metas[i] + " has no original_key"
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
