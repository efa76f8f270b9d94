package aggregate

import (
	"math"
	"slices"
	"strings"

	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/store"
)

// Families returns the merged families sorted by name, each with its
// samples sorted series by series (see SortSamples).
func (a *Aggregator) Families() []Family {
	fams := make([]*family, 0, len(a.families))
	for _, f := range a.families {
		if f.epoch != a.epoch {
			continue // no sample since Reset
		}
		fams = append(fams, f)
	}
	order := a.pidOrder()
	var places []int32 // by pid number
	if a.keep > 0 {
		places = make([]int32, len(order))
		for i, num := range order {
			places[num] = int32(i)
		}
	}
	slices.SortFunc(fams, func(a, b *family) int { return strings.Compare(a.Name, b.Name) })
	out := make([]Family, len(fams))
	// Families are independent: build their samples on every core.
	store.Parallel(len(fams), func(i int) {
		f := fams[i]
		out[i] = f.Family
		if out[i].Type != store.KindGauge {
			out[i].Mode = ""
		}
		var bs *breakdowns
		if a.keep > 0 {
			bs = &breakdowns{pids: a.pids, pidPlace: places}
		}
		out[i].Samples = f.samples(order, a.pids, a.client, a.keep, bs)
	})
	return out
}

// outGroup is everything a family holds for one label set (without le
// and pid): plain series, a histogram's buckets, per-process series.
type outGroup struct {
	labels []store.Label
	key    string // sort key of labels
	plain  []*series
	hist   *hist
	pids   []*pidGroup
}

// samples returns the family's samples in SortSamples order. Rather than
// sorting every sample, it sorts the label sets once and emits each set's
// samples in order: by name, a histogram's buckets by le, a gauge's
// processes by pid. Their breakdowns are made by bs when keep > 0.
func (f *family) samples(pidOrder []int32, pids []string, client pyclient.Version, keep int, bs *breakdowns) []Sample {
	groups := make(map[string]*outGroup, len(f.seriesList)+len(f.histList)+len(f.groupList))
	group := func(lid string, labels []store.Label) *outGroup {
		g := groups[lid]
		if g == nil {
			g = &outGroup{labels: labels}
			groups[lid] = g
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
	ordered := make([]*outGroup, 0, len(groups))
	var buf []byte
	for _, g := range groups {
		buf = appendLabelsKey(buf[:0], g.labels)
		g.key = string(buf)
		ordered = append(ordered, g)
	}
	slices.SortFunc(ordered, func(a, b *outGroup) int { return strings.Compare(a.key, b.key) })

	out := make([]Sample, 0, n)
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
		for _, e := range entries {
			switch {
			case e.hist:
				at := insertAt(g.labels, "le")
				acc := 0.0
				for i, le := range g.hist.les {
					acc += *g.hist.cells[i]
					out = append(out, Sample{Name: bucketName, Labels: f.labels.withAt(g.labels, store.Label{Name: "le", Value: f.leText(le, client)}, at), Value: acc})
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
				if keep > 0 {
					out[len(out)-1].Procs = bs.histogram(g.hist, keep, math.Inf(1), acc)
				}
			case e.sr != nil:
				out = append(out, Sample{Name: e.sr.name, Labels: e.sr.labels, Value: e.sr.value})
				if keep > 0 {
					out[len(out)-1].Procs = bs.series(e.sr, MergeOf(f.Type, f.Mode))
				}
			default:
				out = f.appendPIDs(out, e.pg, pidOrder, pids, bs)
			}
		}
	}
	return out
}

// appendPIDs appends the per-process samples of g in pid order (see
// Aggregator.pidOrder), labelled with their pid (pids by number), with
// their breakdown when bs is not nil.
func (f *family) appendPIDs(out []Sample, g *pidGroup, pidOrder []int32, pids []string, bs *breakdowns) []Sample {
	at := insertAt(g.labels, "pid")
	for _, num := range pidOrder {
		if int(num) < len(g.byPID) && g.byPID[num].set {
			labels := f.labels.withAt(g.labels, store.Label{Name: "pid", Value: pids[num]}, at)
			out = append(out, Sample{Name: g.name, Labels: labels, Value: g.byPID[num].value})
			if bs != nil {
				// One process per series: its own.
				out[len(out)-1].Procs = bs.own(num, g.byPID[num].value)
			}
		}
	}
	return out
}
