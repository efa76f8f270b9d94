// Package migrate copies whole shards from one store to another (a
// PROMETHEUS_MULTIPROC_DIR into the gunicorn-prometheus-exporter Redis
// layout, or back) safely: it plans first, detects conflicts with what the
// target already holds before writing anything, writes idempotently (so an
// interrupted run is completed by running it again), verifies the target
// afterwards and deletes the source only when asked and verified.
//
// The package knows nothing about flags or terminals; the migrate command
// wires it to them.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/promstore/promstore/internal/store"
)

// Policy says what to do with a conflict: a target sample that already
// exists with a different value or timestamp.
type Policy string

// Conflict policies.
const (
	// Fail writes nothing when any conflict exists.
	Fail Policy = "fail"
	// Skip leaves conflicting target samples as they are.
	Skip Policy = "skip"
	// Overwrite replaces conflicting target samples with the source's.
	Overwrite Policy = "overwrite"
	// Sum writes source plus target for conflicting counter, histogram and
	// summary samples. It needs a journal so that a rerun does not add the
	// source a second time.
	Sum Policy = "sum"
)

// Policies lists the valid policies.
var Policies = []string{string(Fail), string(Skip), string(Overwrite), string(Sum)}

// ParsePolicy parses a policy name.
func ParsePolicy(s string) (Policy, error) {
	for _, p := range Policies {
		if s == p {
			return Policy(s), nil
		}
	}
	return "", fmt.Errorf("unknown conflict policy %q: want one of %v", s, Policies)
}

// Options configure a migration.
type Options struct {
	// PIDPrefix is put in front of every pid in the target, to keep the
	// shards of several hosts apart in one store.
	PIDPrefix string
	// OnConflict is the conflict policy; empty means Fail.
	OnConflict Policy
	// Journal is the file recording what a Sum run wrote; required for Sum.
	Journal string
	// IgnoreTimestamps is set when the target does not keep timestamps
	// (the 8-byte file layout): they are then neither compared nor
	// verified.
	IgnoreTimestamps bool
	// FirstMigration says the source was never migrated into the target
	// before: the check that a rerun after a compaction would count a
	// shard twice (see archivedCheck) is skipped.
	FirstMigration bool
	// CheckTarget, when set, rejects target shard ids the target cannot
	// hold (e.g. a pid with "_" in a file name), before anything is written.
	CheckTarget func(store.ShardID) error
	// Workers is the number of shards written at once (default 4).
	Workers int
	// Progress, when set, is called after each shard is written (from one
	// goroutine at a time).
	Progress func(Progress)
}

func (o *Options) policy() Policy {
	if o.OnConflict == "" {
		return Fail
	}
	return o.OnConflict
}

// Action is what the plan does with one source sample.
type Action int

// Actions.
const (
	// Create: the target lacks the sample.
	Create Action = iota
	// Same: the target already holds it (already migrated).
	Same
	// Conflict: the target holds it with another value or timestamp.
	Conflict
)

// Item is one source sample in the plan.
type Item struct {
	// Sample is the source sample with Shard set to the target shard.
	Sample store.Sample
	// Text is the canonical key text the target addresses it by.
	Text   string
	Action Action
	// Target is the target's sample before the migration (Same, Conflict).
	Target store.Sample
	// Write says whether the sample is written; WriteValue and WriteTS are
	// what is written.
	Write      bool
	WriteValue float64
	WriteTS    float64
	summed     bool
}

// ShardPlan is the plan for one source shard.
type ShardPlan struct {
	Source, Target store.ShardID
	Items          []Item
	// New, Same and Conflicts count the items by action.
	New, Same, Conflicts int
	// Writes counts the items written.
	Writes int
	// Updated is the source shard file's mtime (its last update), zero
	// when unknown (a source that names no files); a target that keeps such a time
	// gets it instead of the time of the migration.
	Updated time.Time
	// others are target samples of the shard the source does not have;
	// they stay and are part of what verification expects.
	others []store.Sample
}

// Plan is a migration worked out before anything is written.
type Plan struct {
	Policy Policy
	Shards []*ShardPlan
	// Samples, New, Same, Conflicts and Writes total the shards' counts.
	Samples, New, Same, Conflicts, Writes int
	// TargetSamples is the number of samples the target held in the
	// shards of the plan before the migration.
	TargetSamples int
	// SourceProblems are source shards (or keys) that could not be read
	// and are not part of the plan; TargetProblems likewise for the target.
	SourceProblems, TargetProblems []*store.ShardError

	ignoreTS bool
	// source describes the source store, for the journal (sums only).
	source string
}

// ConflictInfo describes one conflict.
type ConflictInfo struct {
	Shard  store.ShardID
	Key    *store.Key
	Source store.Sample
	Target store.Sample
}

// ConflictList returns up to limit conflicts (all when limit <= 0), in
// plan order.
func (p *Plan) ConflictList(limit int) []ConflictInfo {
	var out []ConflictInfo
	for _, sp := range p.Shards {
		for i := range sp.Items {
			it := &sp.Items[i]
			if it.Action != Conflict {
				continue
			}
			if limit > 0 && len(out) == limit {
				return out
			}
			out = append(out, ConflictInfo{Shard: sp.Target, Key: it.Sample.Key, Source: it.Sample, Target: it.Target})
		}
	}
	return out
}

// WriteShards counts the shards that have something to write.
func (p *Plan) WriteShards() int {
	n := 0
	for _, sp := range p.Shards {
		if sp.Writes > 0 {
			n++
		}
	}
	return n
}

// Done reports whether the target already holds everything the plan
// would write (a finished migration run again).
func (p *Plan) Done() bool { return p.Writes == 0 && p.Conflicts == 0 }

// ConflictError is returned when conflicts stop a migration.
type ConflictError struct {
	Conflicts int
	Reason    string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%d conflicting samples in the target: %s", e.Conflicts, e.Reason)
}

// TargetID returns the target shard id of a source shard.
func TargetID(id store.ShardID, pidPrefix string) store.ShardID {
	id.PID = pidPrefix + id.PID
	return id
}

// sameFloat reports whether a and b are the same value: the same bits, or
// both NaN (NaN payloads do not survive Redis' decimal text).
func sameFloat(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || (math.IsNaN(a) && math.IsNaN(b))
}

func (p *Plan) sameSample(value, ts float64, t store.Sample) bool {
	if !sameFloat(value, t.Value) {
		return false
	}
	return p.ignoreTS || sameFloat(ts, t.Timestamp)
}

// keyText computes a target sample's canonical key text; a variable so
// that a test can count the calls.
var keyText = store.CanonicalKeyText

// Build reads the source and the target and works out the migration. It
// writes nothing. Source shards that cannot be read are left out and
// listed in Plan.SourceProblems; target problems are listed in
// Plan.TargetProblems.

// duplicateError says why a source shard holding one sample under the
// key texts first and again cannot be migrated: the target holds one
// value a sample, and which one Python's writer still updates (the last)
// and what its collector serves (both merged) differ.
func duplicateError(id store.ShardID, first, again string) error {
	const why = "Python's collector merges both entries as it merges processes, its writer updates only the last: promstore cannot tell which value to migrate, and writes nothing"
	const what = "move the shard out of the source to migrate the rest (promstore fsck lists every such shard)"
	if first == again {
		return fmt.Errorf("source shard %s holds the key %s twice (fsck's duplicate: two writers of one file, e.g. processes of two containers with the same pid); %s; %s", id, first, why, what)
	}
	return fmt.Errorf("source shard %s holds one sample under two keys, %s and %s, which the target names alike (e.g. a legacy 3-element key and the 4-element key with help %q it becomes); %s; %s", id, first, again, store.LegacyHelp, why, what)
}

func Build(ctx context.Context, src, dst store.Reader, opts Options) (*Plan, error) {
	pol := opts.policy()
	if pol == Sum && opts.Journal == "" {
		return nil, errors.New("--on-conflict sum needs a journal file: without one a rerun would add the source to the target a second time")
	}
	p := &Plan{Policy: pol, ignoreTS: opts.IgnoreTimestamps}

	// Read the source, a shard at a time: its items and index are made
	// at their size (a million items grown by appending cost twice their
	// memory, and a migration's rate counts this read).
	byTarget := map[store.ShardID]*ShardPlan{}
	index := map[store.ShardID]map[string]int{}
	err := store.ScanShards(ctx, src, func(id store.ShardID, entries []store.Entry) error {
		tid := TargetID(id, opts.PIDPrefix)
		sp := byTarget[tid]
		if sp == nil {
			if opts.CheckTarget != nil {
				if err := opts.CheckTarget(tid); err != nil {
					return fmt.Errorf("source shard %s cannot be written as target shard %s: %w", id, tid, err)
				}
			}
			sp = &ShardPlan{Source: id, Target: tid, Items: make([]Item, 0, len(entries))}
			byTarget[tid] = sp
			index[tid] = make(map[string]int, len(entries))
			p.Shards = append(p.Shards, sp)
		}
		idx := index[tid]
		for i := range entries {
			e := &entries[i]
			text := store.CanonicalKeyText(e.Key)
			if j, dup := idx[text]; dup {
				return duplicateError(id, sp.Items[j].Sample.Key.Text, e.Key.Text)
			}
			idx[text] = len(sp.Items)
			sp.Items = append(sp.Items, Item{Sample: store.Sample{Shard: tid, Key: e.Key, Value: e.Value, Timestamp: e.Timestamp}, Text: text})
		}
		return nil
	})
	if problems, ok := store.Partial(err); ok {
		p.SourceProblems = problems
	} else if err != nil {
		return nil, fmt.Errorf("read source: %w", err)
	}
	sort.Slice(p.Shards, func(i, j int) bool { return p.Shards[i].Target.String() < p.Shards[j].Target.String() })
	if _, ok := dst.(updatedWriter); ok {
		// The target keeps a time of last update: the source file's
		// mtime, a stat per shard (the source was read whole above).
		if loc, ok := store.As[store.ShardLocator](src); ok {
			for _, sp := range p.Shards {
				if path, err := loc.ShardLocation(sp.Source); err == nil {
					if fi, err := os.Stat(path); err == nil {
						sp.Updated = fi.ModTime()
					}
				}
			}
		}
	}

	// Read what the target holds in the shards of the plan, and what the
	// archive check needs of the others.
	// Under --first-migration the check is skipped: nothing is collected.
	var archived *archivedCheck
	if !opts.FirstMigration {
		archived = newArchivedCheck(opts.PIDPrefix, p.Shards)
	}
	err = dst.Scan(ctx, func(s store.Sample) error {
		sp := byTarget[s.Shard]
		if sp == nil {
			// The key text only when the check needs this shard's.
			if archived != nil && archived.wants(s.Shard) {
				archived.target(s, keyText(s.Key))
			}
			return nil
		}
		p.TargetSamples++
		text := keyText(s.Key)
		i, ok := index[s.Shard][text]
		if !ok {
			sp.others = append(sp.others, s)
			return nil
		}
		it := &sp.Items[i]
		if it.Action != Create {
			return fmt.Errorf("target shard %s holds the sample %s twice", s.Shard, text)
		}
		it.Target = s
		if p.sameSample(it.Sample.Value, it.Sample.Timestamp, s) {
			it.Action = Same
		} else {
			it.Action = Conflict
		}
		return nil
	})
	if problems, ok := store.Partial(err); ok {
		p.TargetProblems = problems
	} else if err != nil {
		return nil, fmt.Errorf("read target: %w", err)
	}
	if archived != nil {
		if err := archived.check(p); err != nil {
			return nil, err
		}
	}

	var journal map[string][]journalEntry
	if pol == Sum {
		if journal, err = readJournal(opts.Journal); err != nil {
			return nil, err
		}
		if d, ok := src.(interface{ Describe() string }); ok {
			p.source = d.Describe()
		}
	}
	var unsure []string
	for _, sp := range p.Shards {
		for i := range sp.Items {
			it := &sp.Items[i]
			if it.Action == Conflict && pol == Sum {
				if v, ts := sum(it); sameFloat(v, it.Target.Value) && (p.ignoreTS || sameFloat(ts, it.Target.Timestamp)) {
					// Adding 0 (a bucket or counter never counted):
					// nothing to write, nothing to journal.
					it.Action = Same
				} else {
					switch v, why := verdict(journal[journalKey(sp.Target, it.Text)], it, p.sourceOf(sp), p.ignoreTS); v {
					case journalDone:
						it.Action = Same
					case journalUnsure:
						unsure = append(unsure, fmt.Sprintf("%s %s: the target holds %s, the source %s: %s", sp.Target, store.QuoteClip(it.Text), store.PyRepr(it.Target.Value), store.PyRepr(it.Sample.Value), why))
					}
				}
			}
			switch it.Action {
			case Create:
				it.Write, it.WriteValue, it.WriteTS = true, it.Sample.Value, it.Sample.Timestamp
				sp.New++
			case Same:
				sp.Same++
			case Conflict:
				sp.Conflicts++
				switch pol {
				case Overwrite:
					it.Write, it.WriteValue, it.WriteTS = true, it.Sample.Value, it.Sample.Timestamp
				case Sum:
					if sp.Target.Kind == store.KindGauge {
						return nil, fmt.Errorf("--on-conflict sum: target shard %s: gauge sample %s conflicts, and gauges are not summed; use fail, skip or overwrite", sp.Target, it.Text)
					}
					it.Write, it.summed = true, true
					it.WriteValue, it.WriteTS = sum(it)
				}
			}
			if it.Write {
				sp.Writes++
			}
		}
		p.Samples += len(sp.Items)
		p.New += sp.New
		p.Same += sp.Same
		p.Conflicts += sp.Conflicts
		p.Writes += sp.Writes
	}
	if len(unsure) > 0 {
		shown := unsure
		if len(shown) > 10 {
			shown = shown[:10]
		}
		return nil, fmt.Errorf("--on-conflict sum: nothing written: the journal %s records sums of these sources, and for %d sample(s) whether the source is in the target's value cannot be told, so neither adding it (which may count it twice) nor leaving it (which may lose it) is safe; settle them in the target by hand, then run again (--on-conflict skip would leave every conflicting sample as it is, not these alone):\n  %s",
			opts.Journal, len(unsure), strings.Join(shown, "\n  "))
	}
	return p, nil
}

// sum is what summing it's source into its target writes: the values'
// sum, the later timestamp.
func sum(it *Item) (value, ts float64) {
	return it.Sample.Value + it.Target.Value, math.Max(it.Sample.Timestamp, it.Target.Timestamp)
}

// sourceOf names the source of sp's samples in the journal: the source
// store and the shard.
func (p *Plan) sourceOf(sp *ShardPlan) string { return p.source + " " + sp.Source.String() }
