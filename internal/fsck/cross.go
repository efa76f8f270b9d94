package fsck

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/promstore/promstore/internal/store"
)

// crossCheck collects what must agree between the shards of a store.
type crossCheck struct {
	// families maps a family to its kinds ("counter", "gauge_max", ...)
	// and help texts, each with the first shard that had it.
	kinds, helps map[string]map[string]string
	// mismatch counts, per shard and family, samples whose name does not
	// fit the shard's kind, with the first such name.
	mismatch map[[2]string]*nameMismatch
	// buckets maps a histogram family to, per shard, its le values.
	buckets map[string]map[string]map[string]bool
}

type nameMismatch struct {
	n     int
	first string
	kind  string
}

func newCrossCheck() *crossCheck {
	return &crossCheck{
		kinds:    map[string]map[string]string{},
		helps:    map[string]map[string]string{},
		mismatch: map[[2]string]*nameMismatch{},
		buckets:  map[string]map[string]map[string]bool{},
	}
}

// nameFits reports whether a sample name belongs in a shard of kind.
func nameFits(kind store.Kind, k *store.Key) bool {
	switch kind {
	case store.KindCounter:
		return k.Name == k.Family+"_total"
	case store.KindGauge:
		return k.Name == k.Family
	case store.KindHistogram:
		return k.Name == k.Family+"_bucket" || k.Name == k.Family+"_count" || k.Name == k.Family+"_sum"
	case store.KindSummary:
		return k.Name == k.Family+"_count" || k.Name == k.Family+"_sum" || k.Name == k.Family
	}
	return false
}

func note(m map[string]map[string]string, family, v, shard string) {
	s := m[family]
	if s == nil {
		s = map[string]string{}
		m[family] = s
	}
	if _, ok := s[v]; !ok {
		s[v] = shard
	}
}

func (c *crossCheck) add(shard string, id store.ShardID, k *store.Key) {
	note(c.kinds, k.Family, id.KindName(), shard)
	if !k.Legacy {
		note(c.helps, k.Family, k.Help, shard)
	}
	if !nameFits(id.Kind, k) {
		key := [2]string{shard, k.Family}
		m := c.mismatch[key]
		if m == nil {
			m = &nameMismatch{first: k.Name, kind: id.KindName()}
			c.mismatch[key] = m
		}
		m.n++
	}
	if id.Kind == store.KindHistogram && k.Name == k.Family+"_bucket" {
		for _, l := range k.Labels {
			if l.Name == "le" {
				per := c.buckets[k.Family]
				if per == nil {
					per = map[string]map[string]bool{}
					c.buckets[k.Family] = per
				}
				if per[shard] == nil {
					per[shard] = map[string]bool{}
				}
				per[shard][l.Value] = true
			}
		}
	}
}

// describeSet lists the values of a set with the first shard of each.
func describeSet(s map[string]string, quote bool) string {
	vals := make([]string, 0, len(s))
	for v := range s {
		vals = append(vals, v)
	}
	sort.Strings(vals)
	parts := make([]string, len(vals))
	for i, v := range vals {
		if quote {
			v = strconv.Quote(v)
		}
		parts[i] = fmt.Sprintf("%s (first in %s)", v, s[vals[i]])
	}
	return strings.Join(parts, ", ")
}

func (c *crossCheck) report(r *Report) {
	for fam, kinds := range c.kinds {
		if len(kinds) > 1 {
			r.add(Problem{Shard: "family " + fam, Kind: KindTypeMismatch,
				Detail: "one family under several kinds or gauge modes: " + describeSet(kinds, false) + "; Python's collector takes the first type and the last mode it reads"})
		}
	}
	for fam, helps := range c.helps {
		if len(helps) > 1 {
			r.add(Problem{Shard: "family " + fam, Kind: KindHelpMismatch,
				Detail: fmt.Sprintf("%d help texts: %s", len(helps), describeSet(helps, true))})
		}
	}
	for key, m := range c.mismatch {
		r.add(Problem{Shard: key[0], Kind: KindKindMismatch,
			Detail: fmt.Sprintf("%d samples of family %s do not fit a %s shard, e.g. sample %s", m.n, key[1], m.kind, m.first)})
	}
	for fam, per := range c.buckets {
		var ref string
		var refSet map[string]bool
		var differ []string
		shards := make([]string, 0, len(per))
		for s := range per {
			shards = append(shards, s)
		}
		sort.Strings(shards)
		for _, s := range shards {
			if !hasInf(per[s]) {
				// Python creates every bucket of a series at once, +Inf
				// last: a set without it is what a salvage kept of a
				// damaged shard, not other buckets.
				continue
			}
			if refSet == nil {
				ref, refSet = s, per[s]
				continue
			}
			if !sameSet(refSet, per[s]) {
				differ = append(differ, fmt.Sprintf("%s has %s", s, les(per[s])))
			}
		}
		if len(differ) > 0 {
			r.add(Problem{Shard: "family " + fam, Kind: KindBucketsDiffer,
				Detail: fmt.Sprintf("buckets differ between processes: %s has %s; %s (a deploy changed the buckets: Python's collector, and dump, output the bounds of both, and a bucket whose bound some processes lack misses those processes' observations between their next lower bound and it)", ref, les(refSet), strings.Join(differ, "; "))})
		}
	}
}

// sameSet reports whether two shards' le values are the same buckets
// to Python's collector, which parses each with float() and merges
// them by value: le="1" and le="1.0" are one bucket (written "1.0"), in
// promstore's output too. Values that do not parse compare as text.
func sameSet(a, b map[string]bool) bool {
	ca, cb := bucketBounds(a), bucketBounds(b)
	if len(ca) != len(cb) {
		return false
	}
	for k := range ca {
		if !cb[k] {
			return false
		}
	}
	return true
}

// bucketBounds maps le values to the bounds they parse to (as text, so
// that NaN compares equal to itself); a value that does not parse stays
// as it is.
func bucketBounds(s map[string]bool) map[string]bool {
	out := make(map[string]bool, len(s))
	for v := range s {
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			v = "bound " + strconv.FormatFloat(f, 'g', -1, 64)
		}
		out[v] = true
	}
	return out
}

// hasInf reports whether a set of le values holds the +Inf bucket.
func hasInf(s map[string]bool) bool {
	return bucketBounds(s)["bound +Inf"]
}

func les(s map[string]bool) string {
	vals := make([]string, 0, len(s))
	for v := range s {
		vals = append(vals, v)
	}
	sort.Slice(vals, func(i, j int) bool {
		a, ea := strconv.ParseFloat(vals[i], 64)
		b, eb := strconv.ParseFloat(vals[j], 64)
		if ea != nil || eb != nil {
			return vals[i] < vals[j]
		}
		return a < b
	})
	return "le " + strings.Join(vals, ",")
}

// mappedBy finds, in /proc/*/maps, the processes that map each shard of
// dir (store.MappedBy). A shard mapped by more than one process is
// written by several: processes of other containers with the same pid,
// or a forked child that has not yet left its parent's files.
func mappedBy(dir string, names []string) []Problem {
	paths := make([]string, len(names))
	for i, n := range names {
		paths[i] = filepath.Join(dir, n)
	}
	mappers := store.MappedBy(paths)
	var out []Problem
	for path, pids := range mappers {
		if len(pids) < 2 {
			continue
		}
		sort.Strings(pids)
		out = append(out, Problem{Shard: filepath.Base(path), Kind: KindPIDCollision,
			Detail: fmt.Sprintf("mapped by %d live processes (%s): processes of other containers with the same pid write one shard and overwrite each other's values (client_python #823), or a forked child still holds its parent's file", len(pids), strings.Join(pids, ", "))})
	}
	return out
}
