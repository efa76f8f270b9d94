package redisstore

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/promstore/promstore/internal/store"
)

// item is one metric hash to read, with the group of its md5, the number
// its value was read under (see valueReader) and the listed meta hashes
// that may name it: its own, and for a modeless gauge hash adopted by a
// gauge_<mode> meta hash, that one.
type item struct {
	metric   string
	modeMeta string
	val      int32
	ownMeta  bool
	group    *nameGroup
}

// metaKeys lists the item's meta hashes.
func (it *item) metaKeys() []string {
	var out []string
	if it.ownMeta {
		out = append(out, metaOf(it.metric))
	}
	if it.modeMeta != "" {
		out = append(out, it.modeMeta)
	}
	return out
}

// metaOf is the meta hash of a metric hash: the same name with the role
// "meta" (the role is the part before the md5, the last one).
func metaOf(metric string) string {
	j := strings.LastIndexByte(metric, ':')
	return metric[:j-len("metric")] + "meta" + metric[j:]
}

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

// planner turns the keys SCAN lists into shard plans. add takes them
// batch by batch as SCAN returns them and hands every metric hash that
// may be a sample to a read at once (its value does not depend on the
// rest of the listing); finish groups the metric hashes into shards once
// every key is listed.
type planner struct {
	s        *Store
	ls       *listing
	loose    []*store.ShardError
	metrics  []listedMetric // <prefix>:<kind>:<pid>:metric:<md5> with a known kind
	modeless []listedMetric // <prefix>:gauge:<pid>:metric:<md5>
}

// listedMetric is a metric hash SCAN listed, the number its value is
// read under and the listing's numbers of its kind-and-pid and md5.
type listedMetric struct {
	k      string
	val    int32
	si, mi uint32
}

func (s *Store) newPlanner() *planner {
	return &planner{s: s, ls: newListing()}
}

// add takes a batch of listed keys; read is called for each metric hash
// that may be a sample and returns the number its value is read under.
func (pl *planner) add(batch []string, read func(key string) int32) {
	s := pl.s
	for _, k := range batch {
		n, ok := s.splitKey(k)
		if ok && n.role == "meta" {
			pl.ls.add(n, true)
			continue
		}
		if !ok || n.role != "metric" {
			if rest, _ := s.cutPrefix(k); strings.Contains(rest, ":metric:") {
				pl.loose = append(pl.loose, problem(k, "key name is not <prefix>:<kind>:<pid>:metric:<md5>", nil))
			}
			continue // foreign keys are not samples
		}
		if !utf8.ValidString(k) {
			pl.loose = append(pl.loose, looseProblem(k, n, "key name is not valid UTF-8"))
			continue
		}
		if n.pid == "" || n.md5 == "" {
			pl.loose = append(pl.loose, looseProblem(k, n, "key name has an empty pid or hash"))
			continue
		}
		if n.kind == "gauge" {
			si, mi := pl.ls.add(n, false)
			pl.modeless = append(pl.modeless, listedMetric{k, read(k), si, mi})
			continue
		}
		if _, _, err := store.ParseKindName(n.kind); err != nil {
			if p, ok := metricKeyPrefix(k); ok && strings.HasPrefix(p, pl.s.cfg.Prefix+":") {
				// my:app:counter:... read with --redis-prefix my.
				err = fmt.Errorf("%w: is the prefix %s? (--redis-prefix %s)", err, p, store.ShellWord(p))
			}
			pl.loose = append(pl.loose, problem(k, "key name", err))
			continue
		}
		si, mi := pl.ls.add(n, false)
		pl.metrics = append(pl.metrics, listedMetric{k, read(k), si, mi})
	}
}

// groups returns, once every key is listed, the nameGroup of each md5
// that has a metric hash and a meta hash, by md5 number (nil for the
// others), and the same groups in a list.
func (pl *planner) groups() ([]*nameGroup, []*nameGroup) {
	ls := pl.ls
	byMI := make([]*nameGroup, ls.nmd5)
	var list []*nameGroup
	for mi, f := range ls.firstMeta {
		if f < 0 || !ls.hasMetric[mi] {
			continue
		}
		md5, n := ls.md5Of[mi], ls.names[f]
		g := &nameGroup{md5: md5, rep: pl.s.keyOf(n.kind, n.pid, "meta", md5)}
		byMI[mi] = g
		list = append(list, g)
	}
	return byMI, list
}

// finish groups the metric hashes into shards, sorted by kind name and
// pid; groups are those groups returned, by md5 number. A metric hash
// whose meta hash SCAN did not list is an orphan, a problem of its shard.
// Keys that belong to no shard are returned as problems, sorted by key
// name. SCAN may return a key twice (while the server rehashes): assemble
// keeps one sample.
func (pl *planner) finish(groups []*nameGroup) ([]*shardPlan, []*store.ShardError) {
	s, ls := pl.s, pl.ls
	ls.index()
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
	bySI := make([]*shardPlan, len(ls.shards))
	for _, m := range pl.metrics {
		p := bySI[m.si]
		if p == nil {
			n, _ := s.splitKey(m.k)
			kind, mode, _ := store.ParseKindName(n.kind) // checked by add
			p = get(store.ShardID{Kind: kind, Mode: mode, PID: n.pid})
			bySI[m.si] = p
		}
		if !ls.hasIndex(m.si, m.mi, true) {
			p.problems = append(p.problems, orphanProblem(p.id, m.k, "orphan metric hash: meta hash "+metaOf(m.k)+" is missing", nil))
			continue
		}
		p.items = append(p.items, item{metric: m.k, ownMeta: true, group: groups[m.mi], val: m.val})
	}
	for _, m := range pl.modeless {
		s.planModeless(m, ls, get, groups)
	}

	out := make([]*shardPlan, 0, len(plans))
	for _, p := range plans {
		p.adopted, p.shadows = countUnique(p.adoptedKeys), countUnique(p.shadowKeys)
		p.adoptedKeys, p.shadowKeys = nil, nil
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return lessShard(out[i].id, out[j].id) })
	return out, sortProblems(pl.loose)
}

// nameGroup is the metric hashes of one md5. The md5 is that of the
// sample key text, so every meta hash of the md5, under any pid or kind,
// holds the same original_key: a scan reads the one of rep (of the listed
// meta hashes of the md5, the one whose kind name and pid sort first) and
// names every member by it. Only when rep yields no key that hashes to
// the md5 (missing, expired, tampered with) are the members' own meta
// hashes read, one by one.
type nameGroup struct {
	md5    string
	rep    string
	key    *store.Key
	failed bool
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
// docs/formats.md says: a shadow of an existing gauge_<mode> metric hash, the
// value of a series whose gauge_<mode> meta hash alone exists, or mode all.
func (s *Store) planModeless(m listedMetric, ls *listing, get func(store.ShardID) *shardPlan, groups []*nameGroup) {
	k := m.k
	n, _ := s.splitKey(k)
	for _, mode := range store.GaugeModes {
		if ls.has("gauge_"+mode, n.pid, n.md5, false) {
			p := get(store.ShardID{Kind: store.KindGauge, Mode: mode, PID: n.pid})
			p.shadowKeys = append(p.shadowKeys, k)
			return
		}
	}
	mode, modeMeta := "all", ""
	for _, gm := range store.GaugeModes {
		if ls.has("gauge_"+gm, n.pid, n.md5, true) {
			mode, modeMeta = gm, s.keyOf("gauge_"+gm, n.pid, "meta", n.md5)
			break
		}
	}
	p := get(store.ShardID{Kind: store.KindGauge, Mode: mode, PID: n.pid})
	p.adoptedKeys = append(p.adoptedKeys, k)
	it := item{metric: k, val: m.val, ownMeta: ls.hasIndex(m.si, m.mi, true), modeMeta: modeMeta}
	if !it.ownMeta && modeMeta == "" {
		p.problems = append(p.problems, orphanProblem(p.id, k, "orphan modeless gauge hash: meta hash "+metaOf(k)+" is missing", nil))
		return
	}
	it.group = groups[m.mi]
	p.items = append(p.items, it)
}

func problem(key, reason string, err error) *store.ShardError {
	return &store.ShardError{Shard: key, Offset: -1, Reason: reason, Err: err}
}

// looseProblem is a problem of key k, named n, that is no sample: of
// n's shard when n names one.
func looseProblem(k string, n keyName, reason string) *store.ShardError {
	if kind, mode, err := store.ParseKindName(n.kind); err == nil && n.pid != "" {
		return shardProblem(store.ShardID{Kind: kind, Mode: mode, PID: n.pid}, k, reason, nil)
	}
	return problem(k, reason, nil)
}

// shardProblem is a problem of key, which belongs to shard id.
func shardProblem(id store.ShardID, key, reason string, err error) *store.ShardError {
	return &store.ShardError{Shard: key, Offset: -1, Reason: reason, Err: err, ID: id}
}

// orphanProblem is the problem of key, a key of shard id whose meta hash
// is missing or names nothing (store.ProblemOrphan).
func orphanProblem(id store.ShardID, key, reason string, err error) *store.ShardError {
	p := shardProblem(id, key, reason, err)
	p.Kind = store.ProblemOrphan
	return p
}

// lessShard orders shards by kind name, then pid (store.ComparePIDs).
func lessShard(a, b store.ShardID) bool {
	return lessShardName(shardName{a.KindName(), a.PID}, shardName{b.KindName(), b.PID})
}

func lessShardName(a, b shardName) bool {
	if a.kind != b.kind {
		return a.kind < b.kind
	}
	return store.ComparePIDs(a.pid, b.pid) < 0
}
