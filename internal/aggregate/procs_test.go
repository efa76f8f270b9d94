package aggregate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/promstore/promstore/internal/store"
)

// TestBreakdownsMatchReference feeds random contributions — repeated
// pids, ties, NaN values and timestamps, -0, infinities, histogram
// bounds out of order, NaN bounds, a process's buckets split in two runs
// — to the kept sets and to refProcSet and refHistProcs, a plain
// implementation of the same rules (PID strings, every process ranked
// again, slices.SortStableFunc with store.ComparePIDs), and checks that
// the breakdowns are the same to the bit.
func TestBreakdownsMatchReference(t *testing.T) {
	merges := []Merge{MergeSum, MergeMin, MergeMax, MergeLatest}
	for seed := range uint64(400) {
		rnd := rand.New(rand.NewPCG(seed, 3))
		limit := []int{1, 2, 3, 16, 25}[seed%5]
		var pids []string
		nums := map[string]int32{}
		num := func(pid string) int32 {
			n, ok := nums[pid]
			if !ok {
				n = int32(len(pids))
				pids = append(pids, pid)
				nums[pid] = n
			}
			return n
		}
		npid := 1 + rnd.IntN(90)
		pid := func() string {
			p := strconv.Itoa(1 + rnd.IntN(npid))
			if rnd.IntN(8) == 0 {
				p = "w" + p
			}
			return p
		}
		value := func() float64 {
			switch rnd.IntN(12) {
			case 0:
				return math.NaN()
			case 1:
				return math.Copysign(0, -1)
			case 2:
				return math.Inf(1 - 2*rnd.IntN(2))
			case 3, 4, 5:
				return float64(rnd.IntN(3))
			}
			return math.Round((rnd.Float64()-0.3)*1e6) / 1e3
		}
		var m procMem
		how := merges[rnd.IntN(len(merges))]
		sr := &series{procs: &procSet{}}
		ref := &refProcSet{}
		h := &hist{procs: &histProcs{}}
		href := &refHistProcs{}
		bounds := []float64{math.Copysign(0, -1), 0, 0.1, 0.5, 1, 5, math.Inf(1), math.NaN(), math.Inf(-1)}
		var les []float64
		for range 1 + rnd.IntN(300) {
			p := pid()
			v, ts := value(), float64(rnd.IntN(4))
			if rnd.IntN(20) == 0 {
				ts = math.NaN()
			}
			sr.value += v
			sr.procs.add(&m, how, limit, held{value: v, ts: ts, num: num(p)})
			ref.add(how, limit, Contribution{PID: p, Value: v, Timestamp: ts})

			// A process's buckets, in ascending order but now and then
			// shuffled, cut short or in two runs.
			bs := slices.Clone(bounds)
			if rnd.IntN(4) == 0 {
				rnd.Shuffle(len(bs), func(i, j int) { bs[i], bs[j] = bs[j], bs[i] })
			}
			bs = bs[:1+rnd.IntN(len(bs))]
			for i, le := range bs {
				if i > 0 && rnd.IntN(10) == 0 {
					p = pid() // another process comes in between
				}
				v := value()
				h.procs.add(&m, limit, num(p), le, v, len(bs))
				href.add(limit, p, le, v)
				les = append(les, le)
			}
		}
		slices.SortFunc(les, func(a, b float64) int {
			switch {
			case leLess(a, b):
				return -1
			case leLess(b, a):
				return 1
			}
			return 0
		})
		les = slices.CompactFunc(les, func(a, b float64) bool { return !leLess(a, b) && !leLess(b, a) })
		les = append(les, math.Inf(1)) // _count
		order := make([]int32, len(pids))
		for i := range order {
			order[i] = int32(i)
		}
		slices.SortFunc(order, func(x, y int32) int { return store.ComparePIDs(pids[x], pids[y]) })
		places := make([]int32, len(pids))
		for i, n := range order {
			places[n] = int32(i)
		}
		bs := &breakdowns{pids: pids, pidPlace: places}
		check := func(what string, got, want *Breakdown) {
			t.Helper()
			if g, w := breakdownText(got), breakdownText(want); g != w {
				t.Fatalf("seed %d, limit %d, %s:\n got %s\nwant %s", seed, limit, what, g, w)
			}
		}
		check(fmt.Sprintf("series of merge %d", how), bs.series(sr, how), ref.breakdown(sr.value, how))
		for i, le := range les {
			value := float64(i) * 1.5
			check(fmt.Sprintf("bucket %v", le), bs.histogram(h, limit, le, value), href.breakdown(limit, le, value))
		}
		// Again, as a second call of Families would.
		check("bucket again", bs.histogram(h, limit, les[0], 7), href.breakdown(limit, les[0], 7))
	}
}

// breakdownText spells out b with the bits of its floats (NaN as one).
func breakdownText(b *Breakdown) string {
	bits := func(v float64) string {
		if math.IsNaN(v) {
			return "NaN"
		}
		return strconv.FormatUint(math.Float64bits(v), 16)
	}
	s := fmt.Sprintf("others %d %s:", b.Others, bits(b.OthersValue))
	for _, c := range b.Contrib {
		s += fmt.Sprintf(" %s=%s@%s", c.PID, bits(c.Value), bits(c.Timestamp))
	}
	return s
}

// The reference: the rules of KeepProcesses as first written.

func refRank(m Merge, x *Contribution) float64 { return m.rank(x.Value, x.Timestamp) }

type refProcSet struct {
	top   []Contribution
	added int
}

func (c *refProcSet) add(how Merge, limit int, x Contribution) {
	for i := len(c.top) - 1; i >= 0; i-- {
		if c.top[i].PID == x.PID {
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
		if refRank(how, &c.top[i]) < refRank(how, &c.top[worst]) {
			worst = i
		}
	}
	if refRank(how, &x) > refRank(how, &c.top[worst]) {
		c.top[worst] = x
	}
}

func (c *refProcSet) breakdown(value float64, how Merge) *Breakdown {
	b := &Breakdown{OthersValue: math.NaN()}
	b.Contrib = slices.Clone(c.top)
	refSortContrib(b.Contrib, how)
	b.Others = c.added - len(b.Contrib)
	if how == MergeSum {
		b.OthersValue = othersValue(value, b)
	}
	return b
}

type refPidBuckets struct {
	pid   string
	les   []float64
	vals  []float64
	total float64
	cum   []float64
}

func (p *refPidBuckets) put(le, v float64) {
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

func (p *refPidBuckets) upTo(le float64) float64 {
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

func (p *refPidBuckets) rank() float64 {
	if math.IsNaN(p.total) {
		return math.Inf(-1)
	}
	return math.Abs(p.total)
}

type refHistProcs struct {
	kept    []*refPidBuckets
	pending *refPidBuckets
	added   int
	done    bool
}

func (h *refHistProcs) add(limit int, pid string, le, v float64) {
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
	h.pending = &refPidBuckets{pid: pid}
	h.added++
	h.pending.put(le, v)
}

func (h *refHistProcs) commit(limit int) {
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

func (h *refHistProcs) finish(limit int) {
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

func (h *refHistProcs) breakdown(limit int, le, value float64) *Breakdown {
	b := &Breakdown{OthersValue: math.NaN()}
	h.finish(limit)
	b.Contrib = make([]Contribution, len(h.kept))
	for i, p := range h.kept {
		b.Contrib[i] = Contribution{PID: p.pid, Value: p.upTo(le)}
	}
	refSortContrib(b.Contrib, MergeSum)
	b.Others = h.added - len(b.Contrib)
	b.OthersValue = othersValue(value, b)
	return b
}

func refSortContrib(cs []Contribution, how Merge) {
	if len(cs) < 2 {
		return
	}
	slices.SortStableFunc(cs, func(a, b Contribution) int {
		ra, rb := refRank(how, &a), refRank(how, &b)
		switch {
		case ra > rb:
			return -1
		case ra < rb:
			return 1
		}
		return store.ComparePIDs(a.PID, b.PID)
	})
}

// TestMostrecentBreakdownKeepsTheServedProcess: a mostrecent series
// serves the value of the latest timestamp, NaN included, so the
// process that set it is the first of its breakdown (top's per-process
// view), and kept when fewer processes are kept than contributed; a NaN
// value ranked last, as it does for min and max, left the served
// process out. A NaN timestamp never wins in Python and ranks last.
func TestMostrecentBreakdownKeepsTheServedProcess(t *testing.T) {
	k, err := store.ParseKey(`["g", "g", {}, "h"]`)
	if err != nil {
		t.Fatal(err)
	}
	a := New()
	a.KeepProcesses(2)
	for i, c := range []struct{ v, ts float64 }{{1, 100}, {math.NaN(), 300}, {3, 200}, {4, 0}, {5, math.NaN()}} {
		id := store.ShardID{Kind: store.KindGauge, Mode: "mostrecent", PID: strconv.Itoa(10 + i)}
		if err := a.AddShard(id, []store.Entry{{Key: k, Value: c.v, Timestamp: c.ts}}); err != nil {
			t.Fatal(err)
		}
	}
	fs := a.Families()
	if len(fs) != 1 || len(fs[0].Samples) != 1 {
		t.Fatalf("families = %+v", fs)
	}
	s := fs[0].Samples[0]
	if !math.IsNaN(s.Value) || s.Procs == nil || len(s.Procs.Contrib) != 2 ||
		s.Procs.Contrib[0].PID != "11" || s.Procs.Contrib[1].PID != "12" || s.Procs.Others != 3 {
		t.Fatalf("value %v, breakdown %+v: want NaN from pid 11, then pid 12, 3 others", s.Value, s.Procs)
	}
}
