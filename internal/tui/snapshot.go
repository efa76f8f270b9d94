package tui

import (
	"cmp"
	"context"
	"hash/maphash"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/render"
	"github.com/promstore/promstore/internal/store"
)

// DefaultMaxContributors is how many processes a series remembers by
// default for the per-process breakdown; the rest are summed up as others.
const DefaultMaxContributors = 16

// Snapshot is one aggregated read of a store. It is never modified after
// a Source returns it.
type Snapshot struct {
	// Store names the store (store.Store.Describe).
	Store string
	// Time is when the read started; Took is how long it took.
	Time time.Time
	Took time.Duration
	// Shards counts the shards read plus those that could not be read.
	Shards int
	// Samples counts the per-process samples read.
	Samples int
	// PIDs are the processes whose shards were read, sorted.
	PIDs []PID
	// Series are the aggregated series, sorted by family, then sample
	// name, then labels (the order of dump).
	Series []Series
	// Problems names the shards that were skipped because they could not
	// be read; the rest of the store is in the snapshot.
	Problems []string
	// Client is the prometheus_client release whose spelling of floats
	// (le labels and, in Print, values) the snapshot follows.
	Client pyclient.Version
}

// PID is one process that wrote to the store.
type PID struct {
	ID    string
	Alive store.Liveness
}

// Series is one aggregated sample and what each process contributes to it.
type Series struct {
	// The series' identity and its family's, shared (read only): by the
	// snapshots that show the series, by the series of its family.
	*SeriesID
	*SeriesFamily
	Value float64
	// Monotonic is set for counters and for the _count and _sum of
	// histograms and summaries: the series whose rate means something.
	Monotonic bool
	// Contrib are the processes contributing the most, largest first; at
	// most the source's MaxContributors.
	Contrib []Contribution
	// Others is how many further contributions were merged in but not
	// kept; OthersValue is their sum, NaN where the merge is not a sum
	// (gauge min, max, mostrecent).
	Others      int
	OthersValue float64
}

// SeriesID is what identifies a series and how it shows.
type SeriesID struct {
	// Key identifies the series across snapshots.
	Key string
	// Name is the sample name, e.g. "requests_total" or "latency_bucket".
	Name string
	// Labels are sorted by name.
	Labels []store.Label
	// LabelText is the labels as `{a="x",b="y"}`, escaped for a terminal;
	// empty without labels.
	LabelText string
}

// SeriesFamily is what a series has of its family.
type SeriesFamily struct {
	Family string
	Type   store.Kind
	// Mode is the gauge multiprocess mode; empty for other types.
	Mode string
}

// Contribution is the value one process holds for a series. For a
// histogram bucket it is the process's cumulative count up to that le.
type Contribution = aggregate.Contribution

// Source reads snapshots. The model calls Snapshot from a tea.Cmd, never
// twice at the same time.
type Source interface {
	Snapshot(ctx context.Context) (*Snapshot, error)
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context) (*Snapshot, error)

// Snapshot calls f.
func (f SourceFunc) Snapshot(ctx context.Context) (*Snapshot, error) { return f(ctx) }

// SourceOptions configure NewStoreSource.
type SourceOptions struct {
	// Alive says whether a pid runs; nil reports store.AliveUnknown for
	// every pid (right for Redis stores, whose writers run elsewhere).
	Alive func(pid string) store.Liveness
	// MaxContributors bounds the processes kept per series; zero means
	// DefaultMaxContributors.
	MaxContributors int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// PythonClient is the prometheus_client release whose spelling of
	// floats the snapshots follow; the zero value is the newest.
	PythonClient pyclient.Version
}

// NewStoreSource returns a Source that scans st and aggregates it. It
// remembers what the keys of one read mean for the next, so its reads
// must not overlap (the model never overlaps them).
func NewStoreSource(st store.Store, opts SourceOptions) Source {
	if opts.MaxContributors <= 0 {
		opts.MaxContributors = DefaultMaxContributors
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &storeSource{st: st, opts: opts, c: newCache()}
}

type storeSource struct {
	st   store.Store
	opts SourceOptions
	mu   sync.Mutex // serialises reads, which share c and agg
	c    *cache
	agg  *aggregate.Aggregator
	// last is what the last read handed over, when it read every shard
	// from the store's kept entries (store.KeptShardScanner) and agg
	// holds exactly its aggregation; nil otherwise.
	last []aggregate.Shard
	// revalued counts the reads that revalued agg.
	revalued int
}

func (s *storeSource) Snapshot(ctx context.Context) (*Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The engine of dump aggregates, keeping what each process
	// contributes to every series; its aggregator is kept from read to
	// read (Reset, or revalued: see read), knowing the store's keys.
	if s.agg == nil {
		s.agg = aggregate.NewFor(s.opts.PythonClient)
		s.agg.KeepProcesses(s.opts.MaxContributors)
	}
	snap, fams, err := s.read(ctx, s.agg)
	if err != nil {
		return nil, err
	}
	snap.Series = s.c.snapshot(fams).Series
	return snap, nil
}

// read scans the store into agg and returns the snapshot's facts (all
// but its series) and the families. A read that hands over the last
// read's kept shards with the same keys, some with other values (running
// processes), revalues agg (aggregate.Aggregator.Revalue: only the series
// whose samples changed are added again); any other read Resets it and
// aggregates every shard. Either gives what a new aggregator would.
func (s *storeSource) read(ctx context.Context, agg *aggregate.Aggregator) (*Snapshot, []aggregate.Family, error) {
	start := s.opts.Now()
	shards := map[store.ShardID]struct{}{}
	samples := 0
	prev := s.last
	s.last = nil // until this read is complete
	var cur []aggregate.Shard
	if prev != nil {
		cur = make([]aggregate.Shard, 0, len(prev))
	}
	// m counts the shards handed over as the last read's (or with other
	// values), not aggregated yet; replay aggregates them after all.
	m := aggregate.Matcher{Last: prev}
	matching, allKept, reset := prev != nil, true, false
	replay := func() error {
		agg.Reset()
		reset = true
		for _, h := range cur[:m.Skipped] {
			if err := agg.AddShard(h.ID, h.Entries); err != nil {
				return err
			}
		}
		return nil
	}
	scan := func(id store.ShardID, entries []store.Entry, kept bool) error {
		shards[id] = struct{}{}
		samples += len(entries)
		allKept = allKept && kept
		if kept && allKept {
			cur = append(cur, aggregate.Shard{ID: id, Entries: entries})
		}
		if matching {
			// The last read's entries are all kept (see s.last).
			if kept && m.Match(id, entries, kept, true) {
				return nil
			}
			matching = false
			if err := replay(); err != nil {
				return err
			}
		}
		if !reset {
			agg.Reset()
			reset = true
		}
		return agg.AddShard(id, entries)
	}
	err := store.ScanKeptShards(ctx, s.st, scan)
	if _, partial := store.Partial(err); err == nil || partial {
		switch {
		case err == nil && matching && m.Complete():
			// The last read's shards and keys: revalued when values
			// changed, else agg holds this read's aggregation already.
			if len(m.Changed) > 0 {
				if agg.Revalue(prev, cur, m.Changed) {
					s.revalued++
				} else {
					err = replay()
				}
			}
		case matching:
			err = cmp.Or(replay(), err)
		case !reset:
			agg.Reset() // nothing handed over
		}
	}
	if err == nil && allKept {
		s.last = cur
	}
	var problems []*store.ShardError
	if err != nil {
		p, partial := store.Partial(err)
		if !partial {
			return nil, nil, err
		}
		problems = p
	}
	fams := agg.Families()
	snap := &Snapshot{}
	snap.Samples = samples
	snap.Shards = len(shards) + len(problems)
	snap.Store = s.st.Describe()
	snap.Client = s.opts.PythonClient
	snap.Time = start
	for _, p := range problems {
		snap.Problems = append(snap.Problems, p.Error())
	}
	pids := map[string]struct{}{}
	for id := range shards {
		pids[id.PID] = struct{}{}
	}
	for pid := range pids {
		alive := store.AliveUnknown
		if s.opts.Alive != nil {
			alive = s.opts.Alive(pid)
		}
		snap.PIDs = append(snap.PIDs, PID{ID: pid, Alive: alive})
	}
	slices.SortFunc(snap.PIDs, func(a, b PID) int { return store.ComparePIDs(a.ID, b.ID) })
	snap.Took = s.opts.Now().Sub(start)
	return snap, fams, nil
}

// slot is what a series shows, computed once and kept from read to read:
// its identity and display text.
type slot struct {
	id  SeriesID // never changed once made: snapshots share it
	gen int      // last read that showed it
	at  int      // its place in that read's series
}

// cache keeps the slots of the series of the last reads.
type cache struct {
	gen    int
	seed   maphash.Seed
	slots  map[uint64][]*slot
	nslots int
	// order holds the slots of the last read's series in their order:
	// a read of a store whose series did not change meets them in the
	// same order, each found by one comparison (see next).
	order []*slot
}

func newCache() *cache {
	return &cache{seed: maphash.MakeSeed(), slots: map[uint64][]*slot{}}
}

// slot finds or makes the slot of the series of name and sorted labels.
func (c *cache) slot(name string, labels []store.Label) *slot {
	var h maphash.Hash
	h.SetSeed(c.seed)
	h.WriteString(name)
	h.WriteByte(0xff)
	for _, l := range labels {
		h.WriteString(l.Name)
		h.WriteByte(0xfe)
		h.WriteString(l.Value)
		h.WriteByte(0xfd)
	}
	sum := h.Sum64()
	for _, sl := range c.slots[sum] {
		if sl.id.Name == name && slices.Equal(sl.id.Labels, labels) {
			return sl
		}
	}
	own := append([]store.Label(nil), labels...)
	sl := &slot{id: SeriesID{Name: name, Labels: own, Key: aggregate.SeriesID(name, own), LabelText: labelText(own)}}
	c.slots[sum] = append(c.slots[sum], sl)
	c.nslots++
	return sl
}

// next returns the slot of the series of name and sorted labels, the
// at-th of the read: the slot that followed the last one found in the
// last read's order (*cur) when it is that series, else the one slot
// finds. *cur moves past the slot found in the last read's order.
func (c *cache) next(cur *int, at int, name string, labels []store.Label) *slot {
	var sl *slot
	if i := *cur; i < len(c.order) && c.order[i].id.Name == name && slices.Equal(c.order[i].id.Labels, labels) {
		sl = c.order[i]
	} else {
		sl = c.slot(name, labels)
	}
	if sl.gen == c.gen-1 {
		*cur = sl.at + 1
	}
	sl.gen, sl.at = c.gen, at
	return sl
}

// snapshot makes the series of a read from the engine's families, in
// their order (that of dump).
func (c *cache) snapshot(fams []aggregate.Family) *Snapshot {
	c.gen++
	n := 0
	for i := range fams {
		n += len(fams[i].Samples)
	}
	snap := &Snapshot{Series: make([]Series, 0, n)}
	order := make([]*slot, 0, n)
	cur := 0
	for i := range fams {
		f := &fams[i]
		names := familyNames{bucket: f.Name + "_bucket", count: f.Name + "_count", sum: f.Name + "_sum"}
		fam := &SeriesFamily{Family: f.Name, Type: f.Type, Mode: f.Mode}
		for j := range f.Samples {
			as := &f.Samples[j]
			sl := c.next(&cur, len(order), as.Name, as.Labels)
			order = append(order, sl)
			sr := Series{
				SeriesID:     &sl.id,
				SeriesFamily: fam,
				Value:        as.Value,
				Monotonic:    monotonic(f.Type, as.Name, names),
				OthersValue:  math.NaN(),
			}
			if b := as.Procs; b != nil {
				sr.Contrib, sr.Others, sr.OthersValue = b.Contrib, b.Others, b.OthersValue
			}
			snap.Series = append(snap.Series, sr)
		}
	}
	c.order = order
	// Start afresh once most slots are of series gone, so that a store
	// whose series churn does not grow the cache without bound.
	if c.nslots > 2*n+1024 {
		c.nslots = 0
		for h, sls := range c.slots {
			kept := sls[:0]
			for _, sl := range sls {
				if sl.gen == c.gen {
					kept = append(kept, sl)
				}
			}
			c.nslots += len(kept)
			if len(kept) == 0 {
				delete(c.slots, h)
			} else {
				c.slots[h] = kept
			}
		}
	}
	return snap
}

type familyNames struct{ bucket, count, sum string }

// monotonic reports whether a sample only grows while its processes run:
// the samples for which a rate is shown.
func monotonic(kind store.Kind, name string, names familyNames) bool {
	switch kind {
	case store.KindCounter:
		return true
	case store.KindHistogram, store.KindSummary:
		return name == names.count || name == names.sum
	}
	return false
}

// labelText formats labels as the exposition does, with anything that
// would move a terminal's cursor escaped.
func labelText(ls []store.Label) string { return render.LabelsText(ls, render.EscapeTerminal) }

// safeText returns s with control characters escaped, for names and
// messages shown on a terminal.
func safeText(s string) string {
	for _, r := range s {
		if isControl(r) {
			var b strings.Builder
			for _, r := range s {
				if isControl(r) {
					q := strconv.QuoteRuneToASCII(r)
					b.WriteString(q[1 : len(q)-1])
					continue
				}
				b.WriteRune(r)
			}
			return b.String()
		}
	}
	return s
}

func isControl(r rune) bool {
	return store.IsControl(r) || r == 0xfffd
}
