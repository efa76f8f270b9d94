package aggregate

import (
	"slices"
	"strings"

	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/store"
)

type family struct {
	Family
	series store.TextMap[*series]   // by series id
	hists  store.TextMap[*hist]     // by label id without le
	groups store.TextMap[*pidGroup] // gauges all/liveall: by series id without pid

	// The series, histograms and groups in the order created.
	seriesList []*series
	histList   []*hist
	groupList  []*pidGroup

	seriesChunk chunk[series]
	labels      labelArena
	leTexts     map[float64]string

	// epoch is the read (see Reset) whose first sample of the family set
	// its type, mode and help; stale is set once another kind of shard
	// came first in a later read and the family was made anew.
	epoch uint32
	stale bool

	// out is the samples the last Families call made of the family
	// (with ReuseFamilies), as it stood in read outEpoch after outAdds
	// additions; outOK until Revalue changes one of its series.
	out      []Sample
	outEpoch uint32
	outAdds  uint64
	outOK    bool
	// src is where each of out's values comes from, while srcOK: a
	// Revalue that changed values only leaves out's samples, names and
	// labels as they are, so Families makes them again with new values
	// (see family.revalued).
	src   []valueSrc
	srcOK bool
}

// valueSrc is where one sample of Families comes from: a series (sr), a
// process's value in a group (g, process number i), a histogram's bucket
// i with those below it (h, i >= 0) or their count (h, i == -1).
type valueSrc struct {
	sr *series
	g  *pidGroup
	h  *hist
	i  int32
}

// value is the sample's value as samples makes it; acc is the running
// sum of the histogram's buckets, reset at bucket 0.
func (s *valueSrc) value(acc *float64) float64 {
	switch {
	case s.sr != nil:
		return s.sr.value
	case s.g != nil:
		return s.g.byPID[s.i].value
	case s.i >= 0:
		if s.i == 0 {
			*acc = 0
		}
		*acc += *s.h.cells[s.i]
		return *acc
	default:
		c := 0.0
		for _, p := range s.h.cells {
			c += *p
		}
		return c
	}
}

// leText formats a bucket bound as Python release client does, once per
// bound.
func (f *family) leText(le float64, client pyclient.Version) string {
	t, ok := f.leTexts[le]
	if !ok {
		if f.leTexts == nil {
			f.leTexts = map[float64]string{}
		}
		t = client.FloatToGoString(le)
		f.leTexts[le] = t
	}
	return t
}

// pidGroup holds the per-process series of one all/liveall gauge series.
type pidGroup struct {
	name   string
	lid    string        // label id without pid
	labels []store.Label // without pid
	byPID  []pidValue    // by pid number (Aggregator.pidNum)
	n      int           // set entries of byPID
	mark
}

// pidValue is the value of one process in a pidGroup. Its labels (the
// group's plus pid) are made when the samples are, in output order.
type pidValue struct {
	value float64
	set   bool
}

// set records the value of process num.
func (g *pidGroup) set(num int32, v float64) {
	if int(num) >= len(g.byPID) {
		g.byPID = append(g.byPID, make([]pidValue, int(num)+1-len(g.byPID))...)
	}
	pv := &g.byPID[num]
	if !pv.set {
		pv.set = true
		g.n++
	}
	pv.value = v
}

type series struct {
	name   string
	lid    string // label id (labelIDOf of labels)
	labels []store.Label
	value  float64
	ts     float64
	set    bool
	procs  *procSet // with KeepProcesses
	mark
}

type hist struct {
	labels []store.Label // without le
	lid    string        // their label id
	// The bucket bounds in ascending order (NaN last, once) and their
	// cells.
	les   []float64
	cells []*float64
	procs *histProcs // with KeepProcesses
	mark
}

// bucket returns the cell of bound le, made from cells when new.
// Shards list a series' buckets in ascending order, so a new bound is
// mostly the largest.
func (h *hist) bucket(le float64, cells *chunk[float64]) *float64 {
	i := len(h.les)
	for i > 0 && leLess(le, h.les[i-1]) {
		i--
	}
	if i > 0 && !leLess(h.les[i-1], le) {
		return h.cells[i-1] // equal
	}
	c := cells.next()
	h.les = slices.Insert(h.les, i, le)
	h.cells = slices.Insert(h.cells, i, c)
	return c
}

// leLess orders bucket bounds ascending with NaN last (a NaN bound is one
// bucket; Python's collector would make one per process and then print
// just one of them).
func leLess(a, b float64) bool {
	if a != a {
		return false
	}
	return b != b || a < b
}

// Add merges one sample. It never fails; the error result lets Add serve
// as a store.ScanFunc.
func (a *Aggregator) Add(s store.Sample) error {
	a.adds++
	if id := s.Key.ID; int(id) < len(a.slots) && a.keep == 0 {
		if ki := a.slots[id]; ki != nil && ki.key == s.Key && ki.cell != nil {
			*ki.cell += s.Value
			return nil
		}
	}
	a.add(s, nil)
	return nil
}

// add merges s; p is its key's prep when computed ahead, else nil.
func (a *Aggregator) add(s store.Sample, p *keyPrep) {
	ki := a.lookup(s, p)
	if ki.epoch != a.epoch {
		a.revalidate(ki, s)
	}
	if a.keep > 0 {
		a.record(ki, a.pidNum(s.Shard.PID), s.Value, s.Timestamp)
	}
	a.fold(ki, s)
}

// fold adds s, a sample of ki met in this read, to what ki's samples add
// to, as its family's type and mode say.
func (a *Aggregator) fold(ki *keyInfo, s store.Sample) {
	f := ki.fam
	switch f.Type {
	case store.KindGauge:
		switch f.Mode {
		case "min", "livemin":
			sr := a.shortcut(ki)
			if !sr.set {
				sr.value, sr.set = s.Value, true
			} else if s.Value < sr.value {
				sr.value = s.Value
			}
		case "max", "livemax":
			sr := a.shortcut(ki)
			if !sr.set {
				sr.value, sr.set = s.Value, true
			} else if s.Value > sr.value {
				sr.value = s.Value
			}
		case "sum", "livesum":
			sr := a.shortcut(ki)
			sr.value += s.Value
			sr.set = true
			ki.cell = &sr.value
		case "mostrecent", "livemostrecent":
			sr := a.shortcut(ki)
			if sr.ts < s.Timestamp {
				sr.value, sr.ts, sr.set = s.Value, s.Timestamp, true
			}
		default: // all, liveall: one sample per process
			g := ki.group
			if g == nil {
				g = a.pidGroup(ki)
			}
			g.set(a.pidNum(s.Shard.PID), s.Value)
		}
	case store.KindHistogram:
		if ki.hist != nil {
			*ki.cell += s.Value
			return
		}
		sr := a.shortcut(ki)
		sr.value += s.Value
		sr.set = true
		ki.cell = &sr.value
	default: // counter, summary
		sr := a.shortcut(ki)
		sr.value += s.Value
		sr.set = true
		ki.cell = &sr.value
	}
}

// AddShard merges the samples of one shard, as Add does one by one (it
// serves as a store.ShardFunc). A key seen before whose samples only add
// up costs a few loads and an addition.
func (a *Aggregator) AddShard(id store.ShardID, entries []store.Entry) error {
	a.adds++
	if a.keep > 0 {
		// Every sample's process is kept, then its value added.
		num := a.pidNum(id.PID)
		for i := range entries {
			e := &entries[i]
			if kid := e.KeyID; int(kid) < len(a.slots) {
				if ki := a.slots[kid]; ki != nil && ki.key == e.Key && ki.cell != nil {
					a.record(ki, num, e.Value, e.Timestamp)
					*ki.cell += e.Value
					continue
				}
			}
			a.add(store.Sample{Shard: id, Key: e.Key, Value: e.Value, Timestamp: e.Timestamp}, nil)
		}
		return nil
	}
	preps := a.prepareNew(entries)
	num := int32(-1)
	for i := range entries {
		e := &entries[i]
		if kid := e.KeyID; int(kid) < len(a.slots) {
			if ki := a.slots[kid]; ki != nil && ki.key == e.Key {
				if ki.cell != nil {
					*ki.cell += e.Value
					continue
				}
				// A series of a gauge family of mode all/liveall met
				// before: the value of this shard's pid.
				if g := ki.group; g != nil {
					if num < 0 {
						num = a.pidNum(id.PID)
					}
					g.set(num, e.Value)
					continue
				}
			}
		}
		var p *keyPrep
		if preps != nil && preps[i].ok {
			p = &preps[i]
		}
		a.add(store.Sample{Shard: id, Key: e.Key, Value: e.Value, Timestamp: e.Timestamp}, p)
	}
	return nil
}

// pidGroup returns the group of per-process series of ki's series.
func (a *Aggregator) pidGroup(ki *keyInfo) *pidGroup {
	f, ks := ki.fam, a.series(ki)
	g, ok := f.groups.Get(ks.idHash, ks.id)
	if !ok {
		g = &pidGroup{name: ki.key.Name, lid: lidOf(ks.id), labels: ks.labels}
		f.groups.Put(ks.idHash, ks.id, g)
		f.groupList = append(f.groupList, g)
	}
	ki.group = g
	return g
}

func (a *Aggregator) shortcut(ki *keyInfo) *series {
	if ki.shortcut == nil {
		ks := a.series(ki)
		id, idHash, labels := ks.id, ks.idHash, ks.labels
		if ki.fam.Type == store.KindGauge && hasLabel(labels, "pid") {
			// A gauge merged over processes: Python merges its samples
			// without any "pid" label, the application's own included
			// (multiprocess.py's without_pid_key), so the series has
			// none and series differing only in it are one.
			labels = withoutLabel(labels, "pid")
			id = labelIDOf(ki.key.Name, "\xff", labels, -1)
			idHash = store.HashText(id)
		}
		sr, ok := ki.fam.series.Get(idHash, id)
		if !ok {
			sr = ki.fam.seriesChunk.next()
			sr.name, sr.lid, sr.labels = id[:strings.IndexByte(id, 0xff)], lidOf(id), labels
			ki.fam.series.Put(idHash, id, sr)
			ki.fam.seriesList = append(ki.fam.seriesList, sr)
		}
		ki.shortcut = sr
	}
	return ki.shortcut
}

// hasLabel reports whether labels hold one named name.
func hasLabel(labels []store.Label, name string) bool {
	for _, l := range labels {
		if l.Name == name {
			return true
		}
	}
	return false
}

// withoutLabel returns a copy of labels without those named name.
func withoutLabel(labels []store.Label, name string) []store.Label {
	out := make([]store.Label, 0, len(labels))
	for _, l := range labels {
		if l.Name != name {
			out = append(out, l)
		}
	}
	return out
}
