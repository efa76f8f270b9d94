package tui

import (
	"context"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/promstore/promstore/internal/aggregate"
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
}

// PID is one process that wrote to the store.
type PID struct {
	ID    string
	Alive store.Liveness
}

// Series is one aggregated sample and what each process contributes to it.
type Series struct {
	// Key identifies the series across snapshots.
	Key    string
	Family string
	Type   store.Kind
	// Mode is the gauge multiprocess mode; empty for other types.
	Mode string
	// Name is the sample name, e.g. "requests_total" or "latency_bucket".
	Name string
	// Labels are sorted by name.
	Labels []store.Label
	// LabelText is the labels as `{a="x",b="y"}`, escaped for a terminal;
	// empty without labels.
	LabelText string
	Value     float64
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

// Contribution is the value one process holds for a series. For a
// histogram bucket it is the process's cumulative count up to that le.
type Contribution struct {
	PID   string
	Value float64
	// Timestamp is the sample's timestamp (16-byte layout, Redis); zero
	// where the store keeps none.
	Timestamp float64
}

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
}

// NewStoreSource returns a Source that scans st and aggregates it.
func NewStoreSource(st store.Store, opts SourceOptions) Source {
	if opts.MaxContributors <= 0 {
		opts.MaxContributors = DefaultMaxContributors
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &storeSource{st: st, opts: opts}
}

type storeSource struct {
	st   store.Store
	opts SourceOptions
}

func (s *storeSource) Snapshot(ctx context.Context) (*Snapshot, error) {
	start := s.opts.Now()
	b := newBuilder(s.opts.MaxContributors)
	err := s.st.Scan(ctx, b.add)
	var problems []*store.ShardError
	if err != nil {
		p, partial := store.Partial(err)
		if !partial {
			return nil, err
		}
		problems = p
	}
	snap := b.finish()
	snap.Store = s.st.Describe()
	snap.Time = start
	snap.Shards += len(problems)
	for _, p := range problems {
		snap.Problems = append(snap.Problems, p.Error())
	}
	for i := range snap.PIDs {
		snap.PIDs[i].Alive = store.AliveUnknown
		if s.opts.Alive != nil {
			snap.PIDs[i].Alive = s.opts.Alive(snap.PIDs[i].ID)
		}
	}
	snap.Took = s.opts.Now().Sub(start)
	return snap, nil
}

// combine says how a series merges its processes' values, which decides
// which processes are worth keeping for the breakdown.
type combine uint8

const (
	combineSum combine = iota
	combineMin
	combineMax
	combineLatest
	combineEach // gauge all/liveall: the pid is a label, one process per series
)

func combineOf(kind store.Kind, mode string) combine {
	if kind != store.KindGauge {
		return combineSum
	}
	switch mode {
	case "min", "livemin":
		return combineMin
	case "max", "livemax":
		return combineMax
	case "mostrecent", "livemostrecent":
		return combineLatest
	case "sum", "livesum":
		return combineSum
	}
	return combineEach
}

// rank orders contributions: the larger, the more worth keeping.
func (c combine) rank(x *Contribution) float64 {
	v := x.Value
	if math.IsNaN(v) {
		return math.Inf(-1)
	}
	switch c {
	case combineMin:
		return -v
	case combineMax:
		return v
	case combineLatest:
		return x.Timestamp
	}
	return math.Abs(v)
}

// contribSet keeps the top contributions of one series.
type contribSet struct {
	how   combine
	top   []Contribution
	added int
}

func (c *contribSet) add(max int, x Contribution) {
	for i := len(c.top) - 1; i >= 0; i-- {
		if c.top[i].PID == x.PID {
			// One process holding the key twice (keys differing only in
			// help text or label order): merge as the aggregator does.
			t := &c.top[i]
			switch c.how {
			case combineMin:
				t.Value = math.Min(t.Value, x.Value)
			case combineMax:
				t.Value = math.Max(t.Value, x.Value)
			case combineLatest:
				if x.Timestamp > t.Timestamp {
					*t = x
				}
			default:
				t.Value += x.Value
			}
			return
		}
	}
	c.added++
	if len(c.top) < max {
		c.top = append(c.top, x)
		return
	}
	worst := 0
	for i := 1; i < len(c.top); i++ {
		if c.how.rank(&c.top[i]) < c.how.rank(&c.top[worst]) {
			worst = i
		}
	}
	if c.how.rank(&x) > c.how.rank(&c.top[worst]) {
		c.top[worst] = x
	}
}

// pidBuckets are one process's raw (non-cumulative) bucket counts of one
// histogram.
type pidBuckets struct {
	pid   string
	les   []float64
	vals  []float64
	total float64
	// cum is vals made cumulative in ascending le order, by finish.
	cum []float64
}

func (p *pidBuckets) put(le, v float64) {
	p.total += v
	for i := len(p.les) - 1; i >= 0; i-- {
		if p.les[i] == le {
			p.vals[i] += v
			return
		}
	}
	p.les = append(p.les, le)
	p.vals = append(p.vals, v)
}

// upTo returns the process's cumulative count of buckets with le <= le.
func (p *pidBuckets) upTo(le float64) float64 {
	i := sort.Search(len(p.les), func(i int) bool { return p.les[i] > le })
	if i == 0 {
		return 0
	}
	return p.cum[i-1]
}

func (p *pidBuckets) rank() float64 {
	if math.IsNaN(p.total) {
		return math.Inf(-1)
	}
	return math.Abs(p.total)
}

// histContrib keeps the top processes of one histogram (one label set
// without le). A process's buckets all come from its one shard, which a
// scan reads in one go, so a process is ranked once its shard is done.
type histContrib struct {
	kept    []*pidBuckets
	pending *pidBuckets
	added   int
}

func (h *histContrib) add(max int, pid string, le, v float64) {
	if h.pending != nil && h.pending.pid == pid {
		h.pending.put(le, v)
		return
	}
	for _, k := range h.kept {
		if k.pid == pid {
			k.put(le, v)
			return
		}
	}
	h.commit(max)
	h.pending = &pidBuckets{pid: pid}
	h.added++
	h.pending.put(le, v)
}

func (h *histContrib) commit(max int) {
	p := h.pending
	if p == nil {
		return
	}
	h.pending = nil
	if len(h.kept) < max {
		h.kept = append(h.kept, p)
		return
	}
	worst := 0
	for i := 1; i < len(h.kept); i++ {
		if h.kept[i].rank() < h.kept[worst].rank() {
			worst = i
		}
	}
	if p.rank() > h.kept[worst].rank() {
		h.kept[worst] = p
	}
}

// rawKey caches what one per-process sample key means for the breakdown.
type rawKey struct {
	set    *contribSet  // plain series
	bucket *histContrib // histogram _bucket with a parseable le
	le     float64
}

type famInfo struct {
	kind store.Kind
	mode string
	how  combine
}

// builder turns a scan into a Snapshot: the aggregator computes the
// values (exactly as Python does), the builder keeps who contributed.
type builder struct {
	max     int
	agg     *aggregate.Aggregator
	keys    map[*store.Key]*rawKey
	byText  map[string]*rawKey
	fams    map[string]*famInfo
	sets    map[string]*contribSet  // by series key
	hists   map[string]*histContrib // by histogram key
	shards  map[store.ShardID]struct{}
	last    store.ShardID
	samples int
}

func newBuilder(max int) *builder {
	return &builder{
		max:    max,
		agg:    aggregate.New(),
		keys:   map[*store.Key]*rawKey{},
		byText: map[string]*rawKey{},
		fams:   map[string]*famInfo{},
		sets:   map[string]*contribSet{},
		hists:  map[string]*histContrib{},
		shards: map[store.ShardID]struct{}{},
	}
}

func (b *builder) add(s store.Sample) error {
	if b.samples == 0 || s.Shard != b.last {
		b.shards[s.Shard] = struct{}{}
		b.last = s.Shard
	}
	b.samples++
	_ = b.agg.Add(s)
	rk := b.keys[s.Key]
	if rk == nil {
		rk = b.resolve(s)
		b.keys[s.Key] = rk
	}
	switch {
	case rk.bucket != nil:
		rk.bucket.add(b.max, s.Shard.PID, rk.le, s.Value)
	case rk.set != nil:
		rk.set.add(b.max, Contribution{PID: s.Shard.PID, Value: s.Value, Timestamp: s.Timestamp})
	}
	return nil
}

func (b *builder) resolve(s store.Sample) *rawKey {
	if rk := b.byText[s.Key.Text]; rk != nil {
		return rk
	}
	k := s.Key
	fi := b.fams[k.Family]
	if fi == nil {
		// Like the aggregator, the first shard decides the family's type.
		fi = &famInfo{kind: s.Shard.Kind, mode: s.Shard.Mode, how: combineOf(s.Shard.Kind, s.Shard.Mode)}
		b.fams[k.Family] = fi
	}
	labels := sortedLabels(k.Labels)
	rk := &rawKey{}
	switch {
	case fi.how == combineEach:
		// The pid label makes each process its own series.
	case fi.kind == store.KindHistogram && hasLe(labels):
		le, without, ok := splitLe(labels)
		if ok {
			hk := histKey(k.Family, without)
			h := b.hists[hk]
			if h == nil {
				h = &histContrib{}
				b.hists[hk] = h
			}
			rk.bucket, rk.le = h, le
			break
		}
		fallthrough
	default:
		sk := seriesKey(k.Name, labels)
		set := b.sets[sk]
		if set == nil {
			set = &contribSet{how: fi.how}
			b.sets[sk] = set
		}
		rk.set = set
	}
	b.byText[k.Text] = rk
	return rk
}

func (b *builder) finish() *Snapshot {
	for _, h := range b.hists {
		h.commit(b.max)
		for _, p := range h.kept {
			sortBuckets(p)
		}
	}
	snap := &Snapshot{Samples: b.samples, Shards: len(b.shards)}
	pids := map[string]struct{}{}
	for id := range b.shards {
		pids[id.PID] = struct{}{}
	}
	for pid := range pids {
		snap.PIDs = append(snap.PIDs, PID{ID: pid})
	}
	sort.Slice(snap.PIDs, func(i, j int) bool { return lessPID(snap.PIDs[i].ID, snap.PIDs[j].ID) })

	fams := b.agg.Families()
	n := 0
	for i := range fams {
		n += len(fams[i].Samples)
	}
	snap.Series = make([]Series, 0, n)
	for i := range fams {
		f := &fams[i]
		how := combineOf(f.Type, f.Mode)
		for j := range f.Samples {
			as := &f.Samples[j]
			sr := Series{
				Key:         seriesKey(as.Name, as.Labels),
				Family:      f.Name,
				Type:        f.Type,
				Mode:        f.Mode,
				Name:        as.Name,
				Labels:      as.Labels,
				LabelText:   labelText(as.Labels),
				Value:       as.Value,
				Monotonic:   monotonic(f, as.Name),
				OthersValue: math.NaN(),
			}
			b.contributions(&sr, f, how)
			snap.Series = append(snap.Series, sr)
		}
	}
	return snap
}

// contributions fills the breakdown of one aggregated series.
func (b *builder) contributions(sr *Series, f *aggregate.Family, how combine) {
	if how == combineEach {
		for _, l := range sr.Labels {
			if l.Name == "pid" {
				sr.Contrib = []Contribution{{PID: l.Value, Value: sr.Value}}
			}
		}
		return
	}
	additive := how == combineSum
	if f.Type == store.KindHistogram && (sr.Name == f.Name+"_bucket" || sr.Name == f.Name+"_count") {
		le, without, ok := math.Inf(1), sr.Labels, true
		if sr.Name == f.Name+"_bucket" {
			le, without, ok = splitLe(sr.Labels)
		}
		if h := b.hists[histKey(f.Name, without)]; ok && h != nil {
			sr.Contrib = make([]Contribution, 0, len(h.kept))
			for _, p := range h.kept {
				sr.Contrib = append(sr.Contrib, Contribution{PID: p.pid, Value: p.upTo(le)})
			}
			sortContrib(sr.Contrib, combineSum)
			sr.Others = h.added - len(h.kept)
			sr.OthersValue = othersValue(sr)
			return
		}
	}
	set := b.sets[sr.Key]
	if set == nil {
		return
	}
	sr.Contrib = append([]Contribution(nil), set.top...)
	sortContrib(sr.Contrib, set.how)
	sr.Others = set.added - len(set.top)
	if additive {
		sr.OthersValue = othersValue(sr)
	}
}

func othersValue(sr *Series) float64 {
	if sr.Others == 0 {
		return 0
	}
	v := sr.Value
	for _, c := range sr.Contrib {
		v -= c.Value
	}
	return v
}

func sortContrib(cs []Contribution, how combine) {
	sort.SliceStable(cs, func(i, j int) bool {
		ri, rj := how.rank(&cs[i]), how.rank(&cs[j])
		if ri != rj {
			return ri > rj
		}
		return lessPID(cs[i].PID, cs[j].PID)
	})
}

func sortBuckets(p *pidBuckets) {
	idx := make([]int, len(p.les))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return p.les[idx[a]] < p.les[idx[b]] })
	les := make([]float64, len(idx))
	cum := make([]float64, len(idx))
	acc := 0.0
	for i, k := range idx {
		les[i] = p.les[k]
		acc += p.vals[k]
		cum[i] = acc
	}
	p.les, p.cum, p.vals = les, cum, nil
}

// monotonic reports whether a sample only grows while its processes run:
// the samples for which a rate is shown.
func monotonic(f *aggregate.Family, name string) bool {
	switch f.Type {
	case store.KindCounter:
		return true
	case store.KindHistogram, store.KindSummary:
		return name == f.Name+"_count" || name == f.Name+"_sum"
	}
	return false
}

func sortedLabels(ls []store.Label) []store.Label {
	out := append([]store.Label(nil), ls...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func hasLe(ls []store.Label) bool {
	for _, l := range ls {
		if l.Name == "le" {
			return true
		}
	}
	return false
}

// splitLe returns the le bound and the other labels, as the aggregator
// reads them.
func splitLe(ls []store.Label) (float64, []store.Label, bool) {
	for i, l := range ls {
		if l.Name != "le" {
			continue
		}
		le, err := store.ParsePyFloat(l.Value)
		if err != nil {
			return 0, nil, false
		}
		without := make([]store.Label, 0, len(ls)-1)
		without = append(without, ls[:i]...)
		without = append(without, ls[i+1:]...)
		return le, without, true
	}
	return 0, nil, false
}

func appendLabelID(b *strings.Builder, ls []store.Label) {
	for _, l := range ls {
		b.WriteString(l.Name)
		b.WriteByte(0xfe)
		b.WriteString(l.Value)
		b.WriteByte(0xfd)
	}
}

// seriesKey identifies a series: sample name and sorted labels.
func seriesKey(name string, sorted []store.Label) string {
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte(0xff)
	appendLabelID(&b, sorted)
	return b.String()
}

// histKey identifies a histogram: family and sorted labels without le.
func histKey(family string, without []store.Label) string {
	var b strings.Builder
	b.WriteString(family)
	b.WriteByte(0xfc)
	appendLabelID(&b, without)
	return b.String()
}

// lessPID orders pids numerically where both are numbers, else as text.
func lessPID(a, b string) bool {
	x, errx := strconv.ParseUint(a, 10, 64)
	y, erry := strconv.ParseUint(b, 10, 64)
	switch {
	case errx == nil && erry == nil:
		if x != y {
			return x < y
		}
	case errx == nil:
		return true
	case erry == nil:
		return false
	}
	return a < b
}

// labelText formats labels as the exposition does, with anything that
// would move a terminal's cursor escaped.
func labelText(ls []store.Label) string {
	if len(ls) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteByte(',')
		}
		writeSafe(&b, l.Name)
		b.WriteString(`="`)
		writeSafe(&b, l.Value)
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// writeSafe writes s with backslash, quote, newline and every other
// control character escaped.
func writeSafe(b *strings.Builder, s string) {
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '"':
			b.WriteString(`\"`)
		case r == '\n':
			b.WriteString(`\n`)
		case isControl(r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
}

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
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0xfffd
}
