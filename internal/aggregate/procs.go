package aggregate

import (
	"cmp"
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

// rank orders contributions of value v at timestamp ts: the larger, the
// more worth keeping. A mostrecent series serves the value of the latest
// timestamp, NaN or not, so its contributions rank by timestamp alone; a
// NaN timestamp, which never wins in Python (0.0 < nan is false), last.
func (m Merge) rank(v, ts float64) float64 {
	if m == MergeLatest {
		if math.IsNaN(ts) {
			return math.Inf(-1)
		}
		return ts
	}
	if math.IsNaN(v) {
		return math.Inf(-1)
	}
	switch m {
	case MergeMin:
		return -v
	case MergeMax:
		return v
	}
	return math.Abs(v)
}

// The processes' contributions are kept while a read goes on for every
// series — on a big store hundreds of thousands of small sets, each
// sample of each process going through one. They are kept by pid number
// (Aggregator.pidNum, no strings: the garbage collector need not look
// into them) in memory cut from large blocks (procMem), and made
// Contributions only by Families.

// held is one process's contribution to a series while samples come.
type held struct {
	value, ts float64
	num       int32 // pid number (Aggregator.pidNum)
}

// procMem hands out the memory of the kept contributions, cut from large
// blocks (see chunk).
type procMem struct {
	sets    chunk[procSet]
	hists   chunk[histProcs]
	buckets chunk[pidBuckets]
	held    []held
	floats  []float64
}

// heldRoom returns an empty slice of capacity n.
func (m *procMem) heldRoom(n int) []held { return cut(&m.held, n, 4096) }

// floatRoom returns an empty slice of capacity n.
func (m *procMem) floatRoom(n int) []float64 { return cut(&m.floats, n, 8192) }

// cut returns an empty slice of capacity n cut from the front of *block,
// which is replaced by a new block of max(size, n) elements when it holds
// fewer than n.
func cut[T any](block *[]T, n, size int) []T {
	if len(*block) < n {
		*block = make([]T, max(size, n))
	}
	s := (*block)[:0:n]
	*block = (*block)[n:]
	return s
}

// procSet keeps the top contributions of one series.
type procSet struct {
	top   []held
	added int
	// nums has bit num%64 set for the pid number num of every
	// contribution in top: most samples are of a process not there, found
	// without looking into top.
	nums uint64
	// worst is the index in a full top of the contribution a better one
	// replaces, of rank worstRank; set when worstOK.
	worst     int
	worstRank float64
	worstOK   bool
}

func (c *procSet) add(m *procMem, how Merge, limit int, x held) {
	bit := uint64(1) << (uint32(x.num) % 64)
	for i := len(c.top) - 1; i >= 0 && c.nums&bit != 0; i-- {
		if c.top[i].num == x.num {
			// One process holding the series under two keys (keys
			// differing only in help text or label order): merged as the
			// aggregator merges them.
			t := &c.top[i]
			switch how {
			case MergeMin:
				t.value = math.Min(t.value, x.value)
			case MergeMax:
				t.value = math.Max(t.value, x.value)
			case MergeLatest:
				if x.ts > t.ts {
					*t = x
				}
			default:
				t.value += x.value
			}
			c.worstOK = false
			return
		}
	}
	c.added++
	if len(c.top) < limit {
		if len(c.top) == cap(c.top) {
			top := m.heldRoom(min(limit, max(2, 2*cap(c.top))))
			c.top = append(top, c.top...)
		}
		c.top = append(c.top, x)
		c.nums |= bit
		return
	}
	if !c.worstOK {
		// The first of the lowest rank.
		c.worst, c.worstRank = 0, how.rank(c.top[0].value, c.top[0].ts)
		for i := 1; i < len(c.top); i++ {
			if r := how.rank(c.top[i].value, c.top[i].ts); r < c.worstRank {
				c.worst, c.worstRank = i, r
			}
		}
		c.worstOK = true
	}
	if how.rank(x.value, x.ts) > c.worstRank {
		c.top[c.worst] = x
		c.worstOK = false
		c.nums = 0
		for i := range c.top {
			c.nums |= 1 << (uint32(c.top[i].num) % 64)
		}
	}
}

// pidBuckets are one process's raw (not cumulative) bucket counts of one
// histogram; made cumulative in ascending le order by finish.
type pidBuckets struct {
	les   []float64
	vals  []float64
	total float64
	num   int32 // pid number
	// sorted says les are in strictly ascending order (leLess), as a
	// shard lists them.
	sorted bool
}

func (p *pidBuckets) put(le, v float64) {
	p.total += v
	if n := len(p.les); p.sorted && (n == 0 || leLess(p.les[n-1], le)) {
		// Above every bound so far: a new one.
		p.les = append(p.les, le)
		p.vals = append(p.vals, v)
		return
	}
	for i := len(p.les) - 1; i >= 0; i-- {
		if p.les[i] == le {
			p.vals[i] += v
			return
		}
	}
	p.les = append(p.les, le)
	p.vals = append(p.vals, v)
	p.sorted = false
}

// upTo returns the process's cumulative count of the buckets with bounds
// up to le.
func (p *pidBuckets) upTo(le float64) float64 {
	// The first bound not <= le.
	i, j := 0, len(p.les)
	for i < j {
		h := int(uint(i+j) >> 1)
		if p.les[h] <= le {
			i = h + 1
		} else {
			j = h
		}
	}
	if i == 0 {
		return 0
	}
	return p.vals[i-1]
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
	kept []*pidBuckets
	// nums has bit num%64 set for the pid number num of every kept
	// process (see procSet).
	nums    uint64
	pending *pidBuckets
	// spare is a process ranked out, whose memory the next one takes.
	spare *pidBuckets
	added int
	done  bool
	// worst is the index in a full kept of the process a better one
	// replaces, of rank worstRank; set when worstOK.
	worst     int
	worstRank float64
	worstOK   bool
	// free are processes' buckets of an earlier fill (see reset), for
	// new processes to take before the arenas.
	free []*pidBuckets
}

// reset empties h for its samples to be added again (Revalue), keeping
// its memory: the processes' buckets go to free.
func (h *histProcs) reset() {
	free := append(h.free, h.kept...)
	for _, p := range []*pidBuckets{h.pending, h.spare} {
		if p != nil {
			free = append(free, p)
		}
	}
	*h = histProcs{kept: h.kept[:0], free: free}
}

// reset empties c for its samples to be added again (Revalue), keeping
// its room.
func (c *procSet) reset() { *c = procSet{top: c.top[:0]} }

// add keeps process num's count v of bound le; bounds is how many the
// histogram has so far.
func (h *histProcs) add(m *procMem, limit int, num int32, le, v float64, bounds int) {
	if h.pending != nil && h.pending.num == num {
		h.pending.put(le, v)
		return
	}
	if h.nums&(1<<(uint32(num)%64)) != 0 {
		for _, k := range h.kept {
			if k.num == num {
				k.put(le, v)
				h.worstOK = false
				return
			}
		}
	}
	h.commit(limit)
	p := h.spare
	if n := len(h.free); p == nil && n > 0 {
		p, h.free = h.free[n-1], h.free[:n-1]
	} else if p != nil {
		h.spare = nil
	}
	if p != nil {
		p.les, p.vals, p.total = p.les[:0], p.vals[:0], 0
	} else {
		p = m.buckets.next()
		n := max(bounds, 4)
		p.les, p.vals = m.floatRoom(n), m.floatRoom(n)
	}
	p.num, p.sorted = num, true
	h.pending = p
	h.added++
	p.put(le, v)
}

func (h *histProcs) commit(limit int) {
	p := h.pending
	if p == nil {
		return
	}
	h.pending = nil
	if len(h.kept) < limit {
		h.kept = append(h.kept, p)
		h.nums |= 1 << (uint32(p.num) % 64)
		return
	}
	if !h.worstOK {
		// The first of the lowest rank.
		h.worst, h.worstRank = 0, h.kept[0].rank()
		for i := 1; i < len(h.kept); i++ {
			if r := h.kept[i].rank(); r < h.worstRank {
				h.worst, h.worstRank = i, r
			}
		}
		h.worstOK = true
	}
	if p.rank() > h.worstRank {
		h.spare = h.kept[h.worst]
		h.kept[h.worst] = p
		h.worstOK = false
		h.nums = 0
		for _, k := range h.kept {
			h.nums |= 1 << (uint32(k.num) % 64)
		}
		return
	}
	h.spare = p
}

// finish ranks the last process and makes every kept one cumulative.
func (h *histProcs) finish(limit int) {
	if h.done {
		return
	}
	h.commit(limit)
	h.spare = nil
	for _, p := range h.kept {
		if p.sorted {
			acc := 0.0
			for i, v := range p.vals {
				acc += v
				p.vals[i] = acc
			}
			continue
		}
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
		cum := make([]float64, len(idx))
		acc := 0.0
		for i, k := range idx {
			les[i] = p.les[k]
			acc += p.vals[k]
			cum[i] = acc
		}
		p.les, p.vals = les, cum
	}
	h.done = true
}

// record keeps what process num's sample of key ki contributes.
func (a *Aggregator) record(ki *keyInfo, num int32, value, ts float64) {
	f := ki.fam
	how := MergeOf(f.Type, f.Mode)
	switch {
	case how == MergeEach:
		// The pid is a label: the breakdown is made with the sample.
	case ki.hist != nil:
		h := ki.hist
		if h.procs == nil {
			h.procs = a.procMem.hists.next()
		}
		h.procs.add(&a.procMem, a.keep, num, ki.le, value, len(h.les))
	default:
		sr := a.shortcut(ki)
		if sr.procs == nil {
			sr.procs = a.procMem.sets.next()
		}
		sr.procs.add(&a.procMem, how, a.keep, held{value: value, ts: ts, num: num})
	}
}

// breakdowns makes the breakdowns of one family's samples (Families makes
// families on several goroutines, each with its own), cut from large
// blocks.
type breakdowns struct {
	pids     []string // by number
	pidPlace []int32  // by pid number: the pid's place in pid order
	bds      []Breakdown
	cs       []Contribution

	// The processes of the sample at hand (for histogram, those of
	// the histogram of the last call, whose order then is where the next
	// bucket's sort starts): their order, values, ranks and places in pid
	// order.
	hist   *hist
	order  []int32
	vals   []float64
	ranks  []float64
	places []int32
}

func (b *breakdowns) next() *Breakdown {
	bd := &cut(&b.bds, 1, 1024)[:1][0]
	bd.OthersValue = math.NaN()
	return bd
}

// contribs returns n contributions to fill in (capacity n).
func (b *breakdowns) contribs(n int) []Contribution { return cut(&b.cs, n, 4096)[:n] }

// sort orders b.order as sortContrib did the contributions: by b.ranks,
// the largest first, then by pid (b.places); stable, as
// slices.SortStableFunc (whose insertion sort this is, up to 20).
func (b *breakdowns) sort() {
	ord, ranks, places := b.order, b.ranks, b.places
	if len(ord) > 20 {
		slices.SortStableFunc(ord, func(x, y int32) int {
			switch {
			case ranks[x] > ranks[y]:
				return -1
			case ranks[x] < ranks[y]:
				return 1
			}
			return cmp.Compare(places[x], places[y])
		})
		return
	}
	for i := 1; i < len(ord); i++ {
		x := ord[i]
		rx, px := ranks[x], places[x]
		j := i
		for ; j > 0; j-- {
			y := ord[j-1]
			if ry := ranks[y]; !(rx > ry || !(rx < ry) && px < places[y]) {
				break
			}
			ord[j] = y
		}
		ord[j] = x
	}
}

// identity sets b.order to 0 ... n-1 and sizes b.vals, b.ranks and
// b.places.
func (b *breakdowns) identity(n int) {
	b.order = b.order[:0]
	for i := range n {
		b.order = append(b.order, int32(i))
	}
	if cap(b.vals) < n {
		b.vals, b.ranks, b.places = make([]float64, n), make([]float64, n), make([]int32, n)
	}
	b.vals, b.ranks, b.places = b.vals[:n], b.ranks[:n], b.places[:n]
}

// series returns the breakdown of a plain series.
func (b *breakdowns) series(sr *series, how Merge) *Breakdown {
	bd := b.next()
	if sr.procs == nil {
		return bd
	}
	top := sr.procs.top
	b.hist = nil
	b.identity(len(top))
	for i := range top {
		b.ranks[i], b.places[i] = how.rank(top[i].value, top[i].ts), b.pidPlace[top[i].num]
	}
	b.sort()
	cs := b.contribs(len(top))
	for i, k := range b.order {
		t := &top[k]
		cs[i] = Contribution{PID: b.pids[t.num], Value: t.value, Timestamp: t.ts}
	}
	bd.Contrib = cs
	bd.Others = sr.procs.added - len(cs)
	if how == MergeSum {
		bd.OthersValue = othersValue(sr.value, bd)
	}
	return bd
}

// histogram returns the breakdown of a histogram's bucket le (+Inf for
// _count) whose aggregated value is value.
func (b *breakdowns) histogram(h *hist, limit int, le, value float64) *Breakdown {
	bd := b.next()
	if h.procs == nil {
		return bd
	}
	h.procs.finish(limit)
	kept := h.procs.kept
	if b.hist != h || len(b.order) != len(kept) {
		// Buckets come in ascending order, the processes' order changing
		// little from one to the next: each sort starts from the last.
		b.hist = h
		b.identity(len(kept))
	}
	for i, p := range kept {
		v := p.upTo(le)
		b.vals[i], b.ranks[i], b.places[i] = v, MergeSum.rank(v, 0), b.pidPlace[p.num]
	}
	b.sort()
	cs := b.contribs(len(kept))
	for i, k := range b.order {
		cs[i] = Contribution{PID: b.pids[kept[k].num], Value: b.vals[k]}
	}
	bd.Contrib = cs
	bd.Others = h.procs.added - len(cs)
	bd.OthersValue = othersValue(value, bd)
	return bd
}

// own returns the breakdown of a per-process series (gauge all/liveall):
// its own process.
func (b *breakdowns) own(num int32, value float64) *Breakdown {
	bd := b.next()
	bd.Contrib = b.contribs(1)
	bd.Contrib[0] = Contribution{PID: b.pids[num], Value: value}
	return bd
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
