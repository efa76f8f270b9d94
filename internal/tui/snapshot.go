package tui

import (
	"context"
	"hash/maphash"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/pyclient"
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
	mu   sync.Mutex // serialises reads, which share c
	c    *cache
}

func (s *storeSource) Snapshot(ctx context.Context) (*Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := s.opts.Now()
	b := s.c.begin(s.opts.MaxContributors, s.opts.PythonClient)
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

// contribSet keeps the top contributions of one series in one read.
type contribSet struct {
	gen   int // the read the contents belong to
	how   combine
	top   []Contribution
	added int
}

func (c *contribSet) add(gen int, how combine, max int, x Contribution) {
	if c.gen != gen {
		c.gen, c.how, c.top, c.added = gen, how, c.top[:0], 0
	}
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
// without le) in one read. A process's buckets all come from its one
// shard, which a scan reads in one go, so a process is ranked once its
// shard is done.
type histContrib struct {
	gen     int
	kept    []*pidBuckets
	pending *pidBuckets
	added   int
	done    bool // cumulated by finish
	// buckets is how many buckets a process had last time, to size the
	// next process's slices in one allocation.
	buckets int
}

func (h *histContrib) add(gen, limit int, pid string, le, v float64) {
	if h.gen != gen {
		h.gen, h.kept, h.pending, h.added, h.done = gen, h.kept[:0], nil, 0, false
	}
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
	h.commit(limit)
	n := max(h.buckets, 1)
	buf := make([]float64, 0, 2*n)
	h.pending = &pidBuckets{pid: pid, les: buf[:0:n], vals: buf[n : n : 2*n]}
	h.added++
	h.pending.put(le, v)
}

func (h *histContrib) commit(limit int) {
	p := h.pending
	if p == nil {
		return
	}
	h.pending = nil
	h.buckets = max(h.buckets, len(p.les))
	if len(h.kept) < limit {
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

// finish ranks the last process and makes every kept one cumulative.
func (h *histContrib) finish(max int) {
	if h.done {
		return
	}
	h.commit(max)
	for _, p := range h.kept {
		sortBuckets(p)
	}
	h.done = true
}

// slot is one aggregated series as the cache knows it across reads: its
// identity and display text, computed once, and its contributions.
type slot struct {
	name      string
	labels    []store.Label // sorted
	key       string
	labelText string
	gen       int // last read that saw it
	set       contribSet
	// For histogram _bucket and _count series: the histogram and the
	// bucket bound (+Inf for _count), resolved on first use.
	hist *histContrib
	le   float64
}

// rawKey is what one per-process sample key means for the breakdown.
type rawKey struct {
	fam    *famInfo
	labels []store.Label // sorted
	slot   *slot         // the series the key's values merge into; lazily
	hist   *histContrib  // a histogram _bucket key with a parseable le
	le     float64
	gen    int
}

// famInfo is a family's type in the current read: like the aggregator,
// the first shard a read sees the family in decides it.
type famInfo struct {
	gen  int
	kind store.Kind
	mode string
	how  combine
}

// cache is what one read learns about keys and series that the next read
// reuses; the store's key cache hands out the same *store.Key for the
// same key text from scan to scan.
type cache struct {
	gen    int
	seed   maphash.Seed
	keys   map[*store.Key]*rawKey
	byText map[string]*rawKey
	fams   map[string]*famInfo
	slots  map[uint64][]*slot
	nslots int
	hists  map[string]*histContrib
}

func newCache() *cache {
	return &cache{
		seed:   maphash.MakeSeed(),
		keys:   map[*store.Key]*rawKey{},
		byText: map[string]*rawKey{},
		fams:   map[string]*famInfo{},
		slots:  map[uint64][]*slot{},
		hists:  map[string]*histContrib{},
	}
}

// builder turns one scan into a Snapshot: the aggregator computes the
// values (exactly as Python does), the builder keeps who contributed.
type builder struct {
	c       *cache
	gen     int
	max     int
	agg     *aggregate.Aggregator
	client  pyclient.Version
	shards  map[store.ShardID]struct{}
	last    store.ShardID
	samples int
	keysHit int
	seen    int // series touched in this read
	// chunk is where contributions of the snapshot's series are copied.
	chunk []Contribution
}

func (c *cache) begin(max int, client pyclient.Version) *builder {
	c.gen++
	return &builder{c: c, gen: c.gen, max: max, agg: aggregate.NewFor(client), client: client, shards: map[store.ShardID]struct{}{}}
}

func (b *builder) add(s store.Sample) error {
	if b.samples == 0 || s.Shard != b.last {
		b.shards[s.Shard] = struct{}{}
		b.last = s.Shard
	}
	b.samples++
	_ = b.agg.Add(s)
	c := b.c
	rk := c.keys[s.Key]
	if rk == nil {
		rk = c.resolve(s.Key)
		c.keys[s.Key] = rk
	}
	if rk.gen != b.gen {
		rk.gen = b.gen
		b.keysHit++
	}
	fi := rk.fam
	if fi.gen != b.gen {
		fi.gen, fi.kind, fi.mode, fi.how = b.gen, s.Shard.Kind, s.Shard.Mode, combineOf(s.Shard.Kind, s.Shard.Mode)
	}
	switch {
	case fi.how == combineEach:
		// The pid label makes each process its own series.
	case fi.kind == store.KindHistogram && rk.hist != nil:
		rk.hist.add(b.gen, b.max, s.Shard.PID, rk.le, s.Value)
	default:
		sl := rk.slot
		if sl == nil {
			sl = c.slot(s.Key.Name, rk.labels, true)
			rk.slot = sl
		}
		b.touch(sl)
		sl.set.add(b.gen, fi.how, b.max, Contribution{PID: s.Shard.PID, Value: s.Value, Timestamp: s.Timestamp})
	}
	return nil
}

// touch marks a series as part of this read.
func (b *builder) touch(sl *slot) {
	if sl.gen != b.gen {
		sl.gen = b.gen
		b.seen++
	}
}

func (c *cache) resolve(k *store.Key) *rawKey {
	if rk := c.byText[k.Text]; rk != nil {
		return rk
	}
	fi := c.fams[k.Family]
	if fi == nil {
		fi = &famInfo{}
		c.fams[k.Family] = fi
	}
	labels := sortedLabels(k.Labels)
	rk := &rawKey{fam: fi, labels: labels}
	if le, without, ok := splitLe(labels); ok {
		rk.hist, rk.le = c.hist(k.Family, without), le
	}
	c.byText[k.Text] = rk
	return rk
}

func (c *cache) hist(family string, without []store.Label) *histContrib {
	hk := histKey(family, without)
	h := c.hists[hk]
	if h == nil {
		h = &histContrib{}
		c.hists[hk] = h
	}
	return h
}

// slot finds the series of name and sorted labels without allocating,
// creating it when create is set.
func (c *cache) slot(name string, labels []store.Label, create bool) *slot {
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
		if sl.name == name && slices.Equal(sl.labels, labels) {
			return sl
		}
	}
	if !create {
		return nil
	}
	own := append([]store.Label(nil), labels...)
	sl := &slot{name: name, labels: own, key: seriesKey(name, own), labelText: labelText(own)}
	c.slots[sum] = append(c.slots[sum], sl)
	c.nslots++
	return sl
}

func (b *builder) finish() *Snapshot {
	c := b.c
	snap := &Snapshot{Samples: b.samples, Shards: len(b.shards), Client: b.client}
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
		names := familyNames{bucket: f.Name + "_bucket", count: f.Name + "_count", sum: f.Name + "_sum"}
		for j := range f.Samples {
			as := &f.Samples[j]
			sl := c.slot(as.Name, as.Labels, true)
			b.touch(sl)
			sr := Series{
				Key:         sl.key,
				Family:      f.Name,
				Type:        f.Type,
				Mode:        f.Mode,
				Name:        sl.name,
				Labels:      sl.labels,
				LabelText:   sl.labelText,
				Value:       as.Value,
				Monotonic:   monotonic(f.Type, as.Name, names),
				OthersValue: math.NaN(),
			}
			b.contributions(&sr, sl, f, how, names)
			snap.Series = append(snap.Series, sr)
		}
	}
	b.sweep()
	return snap
}

type familyNames struct{ bucket, count, sum string }

// contributions fills the breakdown of one aggregated series.
func (b *builder) contributions(sr *Series, sl *slot, f *aggregate.Family, how combine, names familyNames) {
	if how == combineEach {
		for _, l := range sr.Labels {
			if l.Name == "pid" {
				sr.Contrib = b.alloc(1)
				sr.Contrib[0] = Contribution{PID: l.Value, Value: sr.Value}
			}
		}
		return
	}
	if f.Type == store.KindHistogram && (sr.Name == names.bucket || sr.Name == names.count) {
		if sl.hist == nil {
			le, without, ok := math.Inf(1), sl.labels, true
			if sr.Name == names.bucket {
				le, without, ok = splitLe(sl.labels)
			}
			if ok {
				sl.hist, sl.le = b.c.hists[histKey(f.Name, without)], le
			}
		}
		if h := sl.hist; h != nil && h.gen == b.gen {
			h.finish(b.max)
			sr.Contrib = b.alloc(len(h.kept))
			for i, p := range h.kept {
				sr.Contrib[i] = Contribution{PID: p.pid, Value: p.upTo(sl.le)}
			}
			sortContrib(sr.Contrib, combineSum)
			sr.Others = h.added - len(h.kept)
			sr.OthersValue = othersValue(sr)
			return
		}
	}
	set := &sl.set
	if set.gen != b.gen {
		return
	}
	sr.Contrib = b.alloc(len(set.top))
	copy(sr.Contrib, set.top)
	sortContrib(sr.Contrib, set.how)
	sr.Others = set.added - len(set.top)
	if how == combineSum {
		sr.OthersValue = othersValue(sr)
	}
}

// alloc returns n contributions carved from a shared chunk, so that a
// snapshot of many series makes few allocations.
func (b *builder) alloc(n int) []Contribution {
	if n == 0 {
		return nil
	}
	if len(b.chunk)+n > cap(b.chunk) {
		b.chunk = make([]Contribution, 0, max(4096, n))
	}
	start := len(b.chunk)
	b.chunk = b.chunk[:start+n]
	return b.chunk[start : start+n : start+n]
}

// sweep starts the cache afresh once most of it is keys and series this
// read did not see, so a store whose series churn does not grow it
// without bound; the next read rebuilds it.
func (b *builder) sweep() {
	c := b.c
	if len(c.keys) > 2*b.keysHit+1024 || c.nslots > 2*b.seen+1024 {
		fresh := newCache()
		fresh.gen = c.gen
		*c = *fresh
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
	if len(cs) < 2 {
		return
	}
	slices.SortStableFunc(cs, func(a, b Contribution) int {
		ra, rb := how.rank(&a), how.rank(&b)
		switch {
		case ra > rb:
			return -1
		case ra < rb:
			return 1
		case lessPID(a.PID, b.PID):
			return -1
		case lessPID(b.PID, a.PID):
			return 1
		}
		return 0
	})
}

// sortBuckets orders a process's buckets by le and makes them
// cumulative. Python writes them in ascending order, which needs no
// allocation.
func sortBuckets(p *pidBuckets) {
	if slices.IsSorted(p.les) {
		acc := 0.0
		for i, v := range p.vals {
			acc += v
			p.vals[i] = acc
		}
		p.cum, p.vals = p.vals, nil
		return
	}
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
func monotonic(kind store.Kind, name string, names familyNames) bool {
	switch kind {
	case store.KindCounter:
		return true
	case store.KindHistogram, store.KindSummary:
		return name == names.count || name == names.sum
	}
	return false
}

func sortedLabels(ls []store.Label) []store.Label {
	out := append([]store.Label(nil), ls...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
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
