package aggregate

import (
	"bytes"
	"math"
	"runtime"
	"slices"
	"strings"

	"github.com/promstore/promstore/internal/store"
)

// Families returns the merged families sorted by name, each with its
// samples sorted series by series (see SortSamples).
func (a *Aggregator) Families() []Family {
	st := a.Streamer()
	out := make([]Family, st.Len())
	workers := runtime.GOMAXPROCS(0)
	scratch := make([]outScratch, workers)
	// Families are independent: build their samples on every core.
	reuse := a.reuseFams && a.keep == 0
	store.ParallelWorkers(st.Len(), workers, func(w, i int) {
		f := st.fams[i]
		out[i] = f.header()
		if reuse && f.outEpoch == a.epoch && f.outAdds == a.adds {
			if f.outOK {
				out[i].Samples = f.out
				return
			}
			if f.srcOK {
				f.out, f.outOK = f.revalued(), true
				out[i].Samples = f.out
				return
			}
		}
		// One batch: the samples and their labels are kept.
		var src *[]valueSrc
		if reuse {
			f.src = f.src[:0]
			src = &f.src
		}
		f.samples(st.o, &scratch[w], &f.labels, 0, src, func(batch []Sample) {
			out[i].Samples = slices.Clip(batch)
		})
		if reuse {
			f.out, f.outEpoch, f.outAdds, f.outOK = out[i].Samples, a.epoch, a.adds, true
			f.srcOK = len(f.src) == len(f.out)
			clear(f.src[len(f.src):cap(f.src)]) // no series kept alive past its use
		}
	})
	return out
}

// revalued is out made again with the values its samples' sources hold
// now: a new slice (the last one may still be read), the same names and
// labels.
func (f *family) revalued() []Sample {
	out := slices.Clone(f.out)
	acc := 0.0
	for i := range f.src {
		out[i].Value = f.src[i].value(&acc)
	}
	return out
}

// Streamer builds the families Families returns, with the same samples in
// the same order, a batch of samples at a time, so that a writer holds
// few of them at once (see Samples).
type Streamer struct {
	fams []*family
	o    *outOrder
}

// Streamer returns a Streamer of the families as they are now; a is not
// to change while it is used.
func (a *Aggregator) Streamer() *Streamer {
	fams, o := a.sorted()
	return &Streamer{fams: fams, o: o}
}

// Len is the number of families.
func (s *Streamer) Len() int { return len(s.fams) }

// Header is family i (in Families' order) without its samples.
func (s *Streamer) Header(i int) Family { return s.fams[i].header() }

// StreamBatch is how many samples a batch of Streamer.Samples holds, at
// least (a series' samples are not cut).
const StreamBatch = 2048

// Samples calls fn with the samples of family i in order, in batches of
// about StreamBatch. The batch and its samples' labels are sc's memory
// again once fn returns: fn must not keep them. Samples of different
// families may be built at once, each with its own StreamScratch.
func (s *Streamer) Samples(i int, sc *StreamScratch, fn func(batch []Sample)) {
	sc.labels.reset()
	s.fams[i].samples(s.o, &sc.out, &sc.labels, StreamBatch, nil, fn)
}

// StreamScratch is the memory one goroutine builds samples in, from
// family to family.
type StreamScratch struct {
	out    outScratch
	labels labelArena
}

// outOrder is what the output of every family of one call needs: the
// processes' order and, when breakdowns are kept, each one's place in it.
type outOrder struct {
	a      *Aggregator
	order  []int32
	places []int32 // by pid number
}

// sorted returns the families met since Reset, sorted by name, and their
// outOrder.
func (a *Aggregator) sorted() ([]*family, *outOrder) {
	fams := make([]*family, 0, len(a.families))
	for _, f := range a.families {
		if f.epoch != a.epoch {
			continue // no sample since Reset
		}
		fams = append(fams, f)
	}
	slices.SortFunc(fams, func(a, b *family) int { return strings.Compare(a.Name, b.Name) })
	o := &outOrder{a: a, order: a.pidOrder()}
	if a.keep > 0 {
		o.places = make([]int32, len(o.order))
		for i, num := range o.order {
			o.places[num] = int32(i)
		}
	}
	return fams, o
}

// header is the family without samples, as Families returns it.
func (f *family) header() Family {
	out := f.Family
	out.Samples = nil
	if out.Type != store.KindGauge {
		out.Mode = ""
	}
	return out
}

// Headers returns the families, without their samples.
func (s *Streamer) Headers() []Family {
	out := make([]Family, len(s.fams))
	for i, f := range s.fams {
		out[i] = f.header()
	}
	return out
}

// Names reports whether ok holds for every name the families' samples
// carry: the families' names and the samples' names (ok(name, true)) and
// their label names, le and pid included (ok(name, false)). It stops at
// the first name ok does not hold for.
func (s *Streamer) Names(ok func(name string, metric bool) bool) bool {
	labels := func(ls []store.Label, extra string) bool {
		if extra != "" && !ok(extra, false) {
			return false
		}
		for _, l := range ls {
			if !ok(l.Name, false) {
				return false
			}
		}
		return true
	}
	for _, f := range s.fams {
		if !ok(f.Name, true) {
			return false
		}
		for _, sr := range f.seriesList {
			if !ok(sr.name, true) || !labels(sr.labels, "") {
				return false
			}
		}
		if len(f.histList) > 0 && (!ok(f.Name+"_bucket", true) || !ok(f.Name+"_count", true)) {
			return false
		}
		for _, h := range f.histList {
			if !labels(h.labels, "le") {
				return false
			}
		}
		for _, pg := range f.groupList {
			if !ok(pg.name, true) || !labels(pg.labels, "pid") {
				return false
			}
		}
	}
	return true
}

// outScratch is the memory samples uses only while it runs, kept from
// family to family.
type outScratch struct {
	groups  map[string]*outGroup
	slab    slab[outGroup]
	ordered []*outGroup
	keys    byteArena
	tmp     []byte
	out     []Sample
}

// outGroup is everything a family holds for one label set (without le
// and pid): plain series, a histogram's buckets, per-process series.
type outGroup struct {
	labels []store.Label
	key    []byte // sort key of labels, in the scratch's keys
	plain  []*series
	hist   *hist
	pids   []*pidGroup
}

// samples calls fn with the family's samples in SortSamples order, in
// batches of at least flush samples (all in one batch when flush is 0;
// at least one batch, maybe empty), their labels made in labels; a batch
// is sc's memory again once fn returns, and labels is reset then when it
// is a scratch arena. Rather than sorting every sample, it sorts the
// label sets once and emits each set's samples in order: by name, a
// histogram's buckets by le, a gauge's processes by pid. Their
// breakdowns are made when the aggregator keeps them. When src is not
// nil, where each sample's value comes from is appended to it.
func (f *family) samples(o *outOrder, sc *outScratch, labels *labelArena, flush int, src *[]valueSrc, fn func([]Sample)) {
	pidOrder, pids, client, keep := o.order, o.a.pids, o.a.client, o.a.keep
	var bs *breakdowns
	if keep > 0 {
		bs = &breakdowns{pids: pids, pidPlace: o.places}
	}
	if sc.groups == nil {
		sc.groups = make(map[string]*outGroup, len(f.seriesList)+len(f.histList)+len(f.groupList))
	}
	groups := sc.groups
	sc.slab.reset()
	ordered := sc.ordered[:0] // the groups as made, sorted below
	defer func() {
		clear(groups)
		clear(ordered)
		sc.ordered = ordered[:0]
	}()
	group := func(lid string, labels []store.Label) *outGroup {
		g := groups[lid]
		if g == nil {
			g = sc.slab.next()
			g.labels = labels
			groups[lid] = g
			ordered = append(ordered, g)
		}
		return g
	}
	n := 0
	for _, h := range f.histList {
		if len(h.les) == 0 {
			continue // no bucket since Reset
		}
		hid := h.lid
		g := group(hid, h.labels)
		g.hist = h
		n += len(h.les) + 1
	}
	for _, sr := range f.seriesList {
		if sr.set {
			g := group(sr.lid, sr.labels)
			g.plain = append(g.plain, sr)
			n++
		}
	}
	for _, pg := range f.groupList {
		if pg.n == 0 {
			continue // no process since Reset
		}
		g := group(pg.lid, pg.labels)
		g.pids = append(g.pids, pg)
		n += pg.n
	}
	sc.keys.reset()
	for _, g := range ordered {
		sc.tmp = appendLabelsKey(sc.tmp[:0], g.labels)
		g.key = sc.keys.copy(sc.tmp)
	}
	slices.SortFunc(ordered, func(a, b *outGroup) int { return bytes.Compare(a.key, b.key) })

	var out []Sample
	if flush == 0 {
		out = make([]Sample, 0, n) // kept by the caller
	} else {
		out = sc.out[:0]
	}
	emit := func() {
		fn(out)
		if flush == 0 {
			return
		}
		clear(out) // no key or label held past the call
		out = out[:0]
		if labels.keep {
			labels.reset()
		}
	}
	bucketName := f.Name + "_bucket"
	countName := f.Name + "_count"
	for _, g := range ordered {
		// The names present in this group, in order.
		type entry struct {
			name string
			sr   *series
			pg   *pidGroup
			hist bool
		}
		var room [4]entry
		entries := room[:0]
		for _, sr := range g.plain {
			if g.hist != nil && sr.name == countName {
				continue // replaced by the sum of the buckets below
			}
			entries = append(entries, entry{name: sr.name, sr: sr})
		}
		for _, pg := range g.pids {
			entries = append(entries, entry{name: pg.name, pg: pg})
		}
		if g.hist != nil {
			entries = append(entries, entry{name: bucketName, hist: true}, entry{name: countName})
		}
		if len(entries) > 1 {
			slices.SortStableFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
		}
		if flush > 0 && len(out) >= flush {
			emit()
		}
		for _, e := range entries {
			switch {
			case e.hist:
				at := insertAt(g.labels, "le")
				acc := 0.0
				for i, le := range g.hist.les {
					acc += *g.hist.cells[i]
					out = append(out, Sample{Name: bucketName, Labels: labels.withAt(g.labels, store.Label{Name: "le", Value: f.leText(le, client)}, at), Value: acc})
					if src != nil {
						*src = append(*src, valueSrc{h: g.hist, i: int32(i)})
					}
					if keep > 0 {
						out[len(out)-1].Procs = bs.histogram(g.hist, keep, le, acc)
					}
				}
			case e.name == countName && e.sr == nil && e.pg == nil:
				// A histogram's _count is the sum of its buckets, as
				// Python makes it (replacing any _count the shards held);
				// summed in ascending le order so that it equals the last
				// bucket to the bit.
				acc := 0.0
				for _, c := range g.hist.cells {
					acc += *c
				}
				out = append(out, Sample{Name: countName, Labels: g.labels, Value: acc})
				if src != nil {
					*src = append(*src, valueSrc{h: g.hist, i: -1})
				}
				if keep > 0 {
					out[len(out)-1].Procs = bs.histogram(g.hist, keep, math.Inf(1), acc)
				}
			case e.sr != nil:
				out = append(out, Sample{Name: e.sr.name, Labels: e.sr.labels, Value: e.sr.value})
				if src != nil {
					*src = append(*src, valueSrc{sr: e.sr})
				}
				if keep > 0 {
					out[len(out)-1].Procs = bs.series(e.sr, MergeOf(f.Type, f.Mode))
				}
			default:
				out = f.appendPIDs(out, labels, e.pg, pidOrder, pids, bs, src)
			}
		}
	}
	emit()
	if flush > 0 {
		sc.out = out[:0]
	}
}

// appendPIDs appends the per-process samples of g in pid order (see
// Aggregator.pidOrder), labelled with their pid (pids by number), with
// their breakdown when bs is not nil, and their sources to src when it
// is not nil.
func (f *family) appendPIDs(out []Sample, arena *labelArena, g *pidGroup, pidOrder []int32, pids []string, bs *breakdowns, src *[]valueSrc) []Sample {
	at := insertAt(g.labels, "pid")
	// A series with a "pid" label of the application's own: Python adds
	// the process's pid after it, and the sample's labels (a dict of
	// them) keep the label where it is with the process's pid.
	own := at > 0 && g.labels[at-1].Name == "pid"
	for _, num := range pidOrder {
		if int(num) < len(g.byPID) && g.byPID[num].set {
			var labels []store.Label
			if own {
				labels = arena.replacedAt(g.labels, store.Label{Name: "pid", Value: pids[num]}, at-1)
			} else {
				labels = arena.withAt(g.labels, store.Label{Name: "pid", Value: pids[num]}, at)
			}
			out = append(out, Sample{Name: g.name, Labels: labels, Value: g.byPID[num].value})
			if src != nil {
				*src = append(*src, valueSrc{g: g, i: num})
			}
			if bs != nil {
				// One process per series: its own.
				out[len(out)-1].Procs = bs.own(num, g.byPID[num].value)
			}
		}
	}
	return out
}
