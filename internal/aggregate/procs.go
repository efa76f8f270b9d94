package aggregate

import (
	"math"
	"slices"

	"github.com/promstore/promstore/internal/store"
)

// Contribution is the value one process holds for an aggregated sample.
// For a histogram bucket it is the process's cumulative count up to that
// bucket's le.
type Contribution struct {
	PID   string
	Value float64
	// Timestamp is the sample's timestamp (16-byte layout, Redis); zero
	// where the store keeps none.
	Timestamp float64
}

// Breakdown is what the processes contribute to one aggregated sample
// (see Aggregator.KeepProcesses).
type Breakdown struct {
	// Contrib are the processes contributing the most, largest first (by
	// the merge: the smallest first for min gauges, the latest for
	// mostrecent); at most the kept number.
	Contrib []Contribution
	// Others is how many further processes contributed; OthersValue is
	// their sum, NaN where the merge is not a sum (gauge min, max,
	// mostrecent).
	Others      int
	OthersValue float64
}

// KeepProcesses makes the aggregator keep, for every sample, what the
// processes contribute to it: the max contributing the most (see
// Breakdown), in Sample.Procs. It must be called before the first Add.
func (a *Aggregator) KeepProcesses(max int) { a.keep = max }

// Merge says how a family merges its processes' values.
type Merge uint8

// The merges of MergeOf.
const (
	MergeSum Merge = iota
	MergeMin
	MergeMax
	MergeLatest
	// MergeEach is gauge all/liveall: the pid is a label, one process
	// per series.
	MergeEach
)

// MergeOf returns the merge of a family of kind and gauge mode.
func MergeOf(kind store.Kind, mode string) Merge {
	if kind != store.KindGauge {
		return MergeSum
	}
	switch mode {
	case "min", "livemin":
		return MergeMin
	case "max", "livemax":
		return MergeMax
	case "mostrecent", "livemostrecent":
		return MergeLatest
	case "sum", "livesum":
		return MergeSum
	}
	return MergeEach
}

// rank orders contributions: the larger, the more worth keeping.
func (m Merge) rank(x *Contribution) float64 {
	v := x.Value
	if math.IsNaN(v) {
		return math.Inf(-1)
	}
	switch m {
	case MergeMin:
		return -v
	case MergeMax:
		return v
	case MergeLatest:
		return x.Timestamp
	}
	return math.Abs(v)
}

// procSet keeps the top contributions of one series.
type procSet struct {
	top   []Contribution
	added int
}

func (c *procSet) add(how Merge, limit int, x Contribution) {
	for i := len(c.top) - 1; i >= 0; i-- {
		if c.top[i].PID == x.PID {
			// One process holding the series under two keys (keys
			// differing only in help text or label order): merged as the
			// aggregator merges them.
			t := &c.top[i]
			switch how {
			case MergeMin:
				t.Value = math.Min(t.Value, x.Value)
			case MergeMax:
				t.Value = math.Max(t.Value, x.Value)
			case MergeLatest:
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
	if len(c.top) < limit {
		c.top = append(c.top, x)
		return
	}
	worst := 0
	for i := 1; i < len(c.top); i++ {
		if how.rank(&c.top[i]) < how.rank(&c.top[worst]) {
			worst = i
		}
	}
	if how.rank(&x) > how.rank(&c.top[worst]) {
		c.top[worst] = x
	}
}

// pidBuckets are one process's raw (not cumulative) bucket counts of one
// histogram.
type pidBuckets struct {
	pid   string
	les   []float64
	vals  []float64
	total float64
	cum   []float64 // vals made cumulative in ascending le order, by finish
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

// upTo returns the process's cumulative count of the buckets with bounds
// up to le.
func (p *pidBuckets) upTo(le float64) float64 {
	i, _ := slices.BinarySearchFunc(p.les, le, func(x, t float64) int {
		if x <= t {
			return -1
		}
		return 1
	})
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

// histProcs keeps the top processes of one histogram. A process's buckets
// come from its one shard, read in one go, so a process is ranked once
// the next process comes.
type histProcs struct {
	kept    []*pidBuckets
	pending *pidBuckets
	added   int
	done    bool
}

func (h *histProcs) add(limit int, pid string, le, v float64) {
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
	h.pending = &pidBuckets{pid: pid}
	h.added++
	h.pending.put(le, v)
}

func (h *histProcs) commit(limit int) {
	p := h.pending
	if p == nil {
		return
	}
	h.pending = nil
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
func (h *histProcs) finish(limit int) {
	if h.done {
		return
	}
	h.commit(limit)
	for _, p := range h.kept {
		idx := make([]int, len(p.les))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int {
			switch {
			case leLess(p.les[a], p.les[b]):
				return -1
			case leLess(p.les[b], p.les[a]):
				return 1
			}
			return 0
		})
		les := make([]float64, len(idx))
		p.cum = make([]float64, len(idx))
		acc := 0.0
		for i, k := range idx {
			les[i] = p.les[k]
			acc += p.vals[k]
			p.cum[i] = acc
		}
		p.les, p.vals = les, nil
	}
	h.done = true
}

// record keeps what shard pid's sample s of key ki contributes.
func (a *Aggregator) record(ki *keyInfo, pid string, value, ts float64) {
	f := ki.fam
	how := MergeOf(f.Type, f.Mode)
	switch {
	case how == MergeEach:
		// The pid is a label: the breakdown is made with the sample.
	case ki.hist != nil:
		if ki.hist.procs == nil {
			ki.hist.procs = &histProcs{}
		}
		ki.hist.procs.add(a.keep, pid, ki.le, value)
	default:
		sr := a.shortcut(ki)
		if sr.procs == nil {
			sr.procs = &procSet{}
		}
		sr.procs.add(how, a.keep, Contribution{PID: pid, Value: value, Timestamp: ts})
	}
}

// seriesBreakdown returns the breakdown of a plain series.
func seriesBreakdown(sr *series, how Merge) *Breakdown {
	b := &Breakdown{OthersValue: math.NaN()}
	if sr.procs == nil {
		return b
	}
	b.Contrib = slices.Clone(sr.procs.top)
	sortContrib(b.Contrib, how)
	b.Others = sr.procs.added - len(b.Contrib)
	if how == MergeSum {
		b.OthersValue = othersValue(sr.value, b)
	}
	return b
}

// histBreakdown returns the breakdown of a histogram's bucket le (+Inf
// for _count) whose aggregated value is value.
func histBreakdown(h *hist, limit int, le, value float64) *Breakdown {
	b := &Breakdown{OthersValue: math.NaN()}
	if h.procs == nil {
		return b
	}
	h.procs.finish(limit)
	b.Contrib = make([]Contribution, len(h.procs.kept))
	for i, p := range h.procs.kept {
		b.Contrib[i] = Contribution{PID: p.pid, Value: p.upTo(le)}
	}
	sortContrib(b.Contrib, MergeSum)
	b.Others = h.procs.added - len(b.Contrib)
	b.OthersValue = othersValue(value, b)
	return b
}

// othersValue is what the processes left out of b add to value: zero
// when none is.
func othersValue(value float64, b *Breakdown) float64 {
	if b.Others == 0 {
		return 0
	}
	for _, c := range b.Contrib {
		value -= c.Value
	}
	return value
}

func sortContrib(cs []Contribution, how Merge) {
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
		}
		return store.ComparePIDs(a.PID, b.PID)
	})
}
