package aggregate

import (
	"math"
	"slices"

	"github.com/promstore/promstore/internal/store"
)

// Reset empties the aggregator for another read of the same store (serve
// and top read one again and again), keeping what it learned about each
// key — its family, series, histogram and bound — so that the next read
// does not work it out again. What the next read's Families returns is
// exactly what a new Aggregator fed the same samples returns: every key
// is checked again when its first sample comes (a family's type, mode
// and help are those of its first sample in this read; a family first
// met in another kind of shard than before is made anew), and nothing
// but the samples of this read makes a series, bucket or process appear.
// The families an earlier Families call returned stay valid.
//
// When most of what it keeps was not met by the last read (series that
// are gone), it forgets everything, as a new Aggregator.
func (a *Aggregator) Reset() {
	infos := len(a.keys)
	for _, ki := range a.slots {
		if ki != nil {
			infos++
		}
	}
	if infos > 2*a.met+4096 {
		keep, reuseFams := a.keep, a.reuseFams
		*a = *NewFor(a.client)
		a.keep, a.reuseFams = keep, reuseFams
		return
	}
	a.epoch++
	a.met = 0
	a.pids, a.pidNums, a.lastPID, a.lastNum = nil, map[string]int32{}, "", 0
	for _, f := range a.families {
		for _, sr := range f.seriesList {
			sr.value, sr.ts, sr.set, sr.procs = 0, 0, false, nil
		}
		for _, h := range f.histList {
			// New cells for the bounds met from now on; the old ones
			// may be read by no one.
			clear(h.cells)
			h.les, h.cells, h.procs = h.les[:0], h.cells[:0], nil
		}
		for _, g := range f.groupList {
			g.byPID, g.n = g.byPID[:0], 0
		}
		// Labels of earlier Families calls live on in their blocks.
		f.labels = labelArena{}
	}
	// Every key's first sample now takes the slow path (add), which
	// checks the key again (revalidate).
	reset := func(ki *keyInfo) { ki.cell, ki.group = nil, nil }
	for _, ki := range a.slots {
		if ki != nil {
			reset(ki)
		}
	}
	for _, ki := range a.keys {
		reset(ki)
	}
}

// revalidate makes ki, met for the first time since Reset, what a new
// Aggregator would make of it at sample s: the first sample of its family
// sets the family's help, or makes the family anew when it comes from
// another kind (or gauge mode) of shard than the one the family was made
// for; a histogram bucket gets its cell.
func (a *Aggregator) revalidate(ki *keyInfo, s store.Sample) {
	a.met++
	f := ki.fam
	if !f.stale && f.epoch != a.epoch {
		a.claim(f, s)
	}
	if f.stale {
		// Resolved again under the family made anew.
		*ki = *a.resolve(s, nil)
		ki.key = s.Key
		return
	}
	ki.epoch = a.epoch
	if ki.hist != nil {
		ki.cell = ki.hist.bucket(ki.le, &a.cellChunk)
	}
}

// claim makes f, a family kept from an earlier read, the family of this
// read's first sample s of it: its help is s's, as a new Aggregator's
// would be. It reports false, and marks f stale, when s comes from
// another kind (or gauge mode) of shard than f was made for: the family
// is then made anew.
func (a *Aggregator) claim(f *family, s store.Sample) bool {
	if f.Type == s.Shard.Kind && f.Mode == a.client.GaugeMode(s.Shard.Mode) {
		f.epoch, f.Help = a.epoch, s.Key.Help
		return true
	}
	f.stale = true
	delete(a.families, f.Name)
	return false
}

// Shard is the samples of one shard as a read handed them over.
type Shard struct {
	ID      store.ShardID
	Entries []store.Entry
}

// Revalue makes the aggregator what aggregating cur anew (Reset, then
// AddShard of each) makes of it, when it holds the aggregation of last
// exactly (nothing added and no Reset since) and cur is last with values
// changed only: the same shards in the same order, each with the same
// keys in the same order; changed lists the indexes of the shards whose
// entries may differ from last's (the others are the same slices). A
// series, histogram or per-process group none of whose samples changed
// keeps its value: its samples are the same, added in the same order. One
// with a changed sample is emptied and its samples added again, in the
// order a new read adds them (each one's samples are its own: the order
// among them is all that matters). Where they are is indexed once per
// read of another shape (epoch): a read of a store whose running
// processes wrote values in place then costs a look at the changed
// shards' entries and the additions of the series they changed.
//
// With KeepProcesses, what the processes of an emptied one contribute is
// kept again too, in the same order.
//
// It returns false, having changed nothing, when cur is not so (another
// shard or key at some place; a key the last read did not meet): aggregate
// cur anew.
func (a *Aggregator) Revalue(last, cur []Shard, changed []int) bool {
	if len(last) != len(cur) {
		return false
	}
	for _, i := range changed {
		if i < 0 || i >= len(cur) || last[i].ID != cur[i].ID || !SameKeys(last[i].Entries, cur[i].Entries) {
			return false
		}
	}
	if !a.indexPlaces(last) {
		return false
	}
	d := &a.dirty
	for _, i := range changed {
		l, c := last[i].Entries, cur[i].Entries
		for j := range c {
			ce, le := &c[j], &l[j]
			if math.Float64bits(ce.Value) == math.Float64bits(le.Value) && math.Float64bits(ce.Timestamp) == math.Float64bits(le.Timestamp) {
				continue
			}
			ki := a.known(ce.Key)
			if ki == nil || ki.mark() == nil || ki.mark().gen != a.markGen {
				// Not a key of the read indexed.
				d.clear()
				a.placeAt = nil // its values may be cur's
				return false
			}
			ki.fam.outOK = false
			d.mark(ki)
			at := a.placeOf[a.shardAt[i]+int32(j)]
			a.placeVal[at], a.placeTS[at] = ce.Value, ce.Timestamp
		}
	}
	if d.empty() {
		return true
	}
	// Whether each series is set and how many processes each group
	// holds, before and after: what Families' samples are made of.
	shape := d.shape(a.shapeBuf[:0])
	d.reset()
	readd := func(m *mark) {
		for at := a.placeAt[m.num]; at < a.placeAt[m.num+1]; at++ {
			s := store.Sample{Value: a.placeVal[at], Timestamp: a.placeTS[at]}
			ki := a.placeKI[at]
			if ki.group != nil || a.keep > 0 {
				s.Shard = cur[a.placeShard[at]].ID
			}
			if a.keep > 0 {
				a.record(ki, a.pidNum(s.Shard.PID), s.Value, s.Timestamp)
			}
			a.fold(ki, s)
		}
	}
	for _, sr := range d.series {
		readd(&sr.mark)
	}
	for _, h := range d.hists {
		readd(&h.mark)
	}
	for _, g := range d.groups {
		readd(&g.mark)
	}
	n := len(shape)
	shape = d.shape(shape)
	if !slices.Equal(shape[:n], shape[n:]) {
		// A series set or not set now (mostrecent gauges): the
		// samples of Families are others.
		for _, f := range a.families {
			f.srcOK = false
		}
	}
	a.shapeBuf = shape[:0]
	d.clear()
	for _, f := range a.families {
		// Labels of earlier Families calls live on in their blocks.
		f.labels = labelArena{}
	}
	return true
}

// Matcher follows a read as it goes against the last read's shards
// (Last): Skipped of them so far were handed over again at their places,
// as the same entries (slices) or, for those listed in Changed, as kept
// entries with the same keys and other values (see Revalue).
type Matcher struct {
	Last    []Shard
	Skipped int
	Changed []int
}

// Match reports whether a shard handed over (kept: its entries are a kept
// shard's, see store.KeptShardFunc) is the last read's at its place, and
// counts it; revaluable allows other values (kept entries, the last
// read's kept too).
func (m *Matcher) Match(id store.ShardID, entries []store.Entry, kept, revaluable bool) bool {
	if m.Skipped >= len(m.Last) || m.Last[m.Skipped].ID != id {
		return false
	}
	last := m.Last[m.Skipped].Entries
	switch {
	case len(last) == len(entries) && (len(last) == 0 || &last[0] == &entries[0]):
	case revaluable && kept && SameKeys(last, entries):
		m.Changed = append(m.Changed, m.Skipped)
	default:
		return false
	}
	m.Skipped++
	return true
}

// Complete reports whether every shard of the last read was matched.
func (m *Matcher) Complete() bool { return m.Skipped == len(m.Last) }

// SameKeys reports whether a and b hold the same keys in the same order.
func SameKeys(a, b []store.Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key {
			return false
		}
	}
	return true
}

// indexPlaces makes, once per epoch, the index of the samples of read (of
// this epoch's shape, aggregated) by what they add to: every mark met by
// this read numbered (mark.num); for mark n, at [placeAt[n], placeAt[n+1])
// in read order, each sample's shard, keyInfo, value and timestamp (kept
// as the samples are revalued): 32 bytes a sample;
// placeOf[shardAt[shard]+entry] is a sample's index there. It reports
// whether the index is there.
func (a *Aggregator) indexPlaces(read []Shard) bool {
	if a.placesEpoch == a.epoch && a.placeAt != nil && len(a.shardAt) == len(read)+1 {
		return true
	}
	a.placeAt = nil
	a.placesEpoch = a.epoch
	a.markGen++
	total := 0
	for _, sh := range read {
		total += len(sh.Entries)
	}
	if len(read) >= 1<<31 || total >= 1<<31 {
		return false
	}
	kis := slices.Grow(a.placeKI[:0], total)[:total]
	shardAt := slices.Grow(a.shardAt[:0], len(read)+1)[:len(read)+1]
	n := int32(0)
	k := 0
	for i, sh := range read {
		shardAt[i] = int32(k)
		for j := range sh.Entries {
			ki := a.known(sh.Entries[j].Key)
			var m *mark
			if ki != nil {
				m = ki.mark()
			}
			if m == nil {
				a.placeKI, a.shardAt = kis[:0], shardAt[:0]
				return false
			}
			if m.gen != a.markGen {
				m.gen, m.num = a.markGen, n
				n++
			}
			kis[k] = ki
			k++
		}
	}
	shardAt[len(read)] = int32(k)
	at := slices.Grow(a.placeAt[:0], int(n)+1)[:n+1]
	clear(at)
	for _, ki := range kis {
		at[ki.mark().num+1]++
	}
	for i := 1; i < len(at); i++ {
		at[i] += at[i-1]
	}
	next := slices.Clone(at[:n])
	shards := slices.Grow(a.placeShard[:0], total)[:total]
	placeKI := make([]*keyInfo, total)
	val := slices.Grow(a.placeVal[:0], total)[:total]
	ts := slices.Grow(a.placeTS[:0], total)[:total]
	placeOf := slices.Grow(a.placeOf[:0], total)[:total]
	k = 0
	for i, sh := range read {
		for j := range sh.Entries {
			e := &sh.Entries[j]
			ki := kis[k]
			num := ki.mark().num
			p := next[num]
			next[num]++
			shards[p], placeKI[p], val[p], ts[p] = int32(i), ki, e.Value, e.Timestamp
			placeOf[k] = p
			k++
		}
	}
	clear(kis)
	a.placeAt, a.placeShard, a.placeKI, a.placeVal, a.placeTS, a.placeOf, a.shardAt = at, shards, placeKI, val, ts, placeOf, shardAt
	return true
}

// known returns the keyInfo of k met by the current read, or nil.
func (a *Aggregator) known(k *store.Key) *keyInfo {
	var ki *keyInfo
	if id := k.ID; id != 0 && int(id) < len(a.slots) {
		if s := a.slots[id]; s != nil && s.key == k {
			ki = s
		}
	}
	if ki == nil {
		ki = a.keys[k]
	}
	if ki == nil || ki.epoch != a.epoch || ki.fam == nil || ki.fam.stale || ki.fam.epoch != a.epoch {
		return nil
	}
	return ki
}

// mark is what Revalue notes of a series, histogram or per-process group:
// whether a changed sample adds to it, and its number in the index of
// places made in generation gen (see indexPlaces).
type mark struct {
	dirty bool
	gen   uint32
	num   int32
}

// mark returns the mark of what ki's samples add to (its histogram, group
// of processes or series), nil when it has none.
func (ki *keyInfo) mark() *mark {
	switch {
	case ki.hist != nil:
		if ki.cell == nil {
			return nil
		}
		return &ki.hist.mark
	case ki.group != nil:
		return &ki.group.mark
	case ki.shortcut != nil:
		return &ki.shortcut.mark
	}
	return nil
}

// dirtySet holds what changed samples add to, for Revalue.
type dirtySet struct {
	series []*series
	hists  []*hist
	groups []*pidGroup
}

// mark marks what ki's samples add to (ki.mark() is not nil).
func (d *dirtySet) mark(ki *keyInfo) {
	m := ki.mark()
	if m.dirty {
		return
	}
	m.dirty = true
	switch {
	case ki.hist != nil:
		d.hists = append(d.hists, ki.hist)
	case ki.group != nil:
		d.groups = append(d.groups, ki.group)
	default:
		d.series = append(d.series, ki.shortcut)
	}
}

// shape appends, for each marked series, 1 when it is set (else 0), then
// for each marked group how many processes it holds.
func (d *dirtySet) shape(buf []int) []int {
	for _, sr := range d.series {
		v := 0
		if sr.set {
			v = 1
		}
		buf = append(buf, v)
	}
	for _, g := range d.groups {
		buf = append(buf, g.n)
	}
	return buf
}

func (d *dirtySet) empty() bool {
	return len(d.series) == 0 && len(d.hists) == 0 && len(d.groups) == 0
}

// reset empties what is marked, as Reset does, for its samples to be
// added again; the marks stay.
func (d *dirtySet) reset() {
	for _, sr := range d.series {
		sr.value, sr.ts, sr.set = 0, 0, false
		if sr.procs != nil {
			sr.procs.reset()
		}
	}
	for _, h := range d.hists {
		for _, c := range h.cells {
			*c = 0
		}
		if h.procs != nil {
			h.procs.reset()
		}
	}
	for _, g := range d.groups {
		clear(g.byPID)
		g.byPID, g.n = g.byPID[:0], 0
	}
}

// clear takes the marks off.
func (d *dirtySet) clear() {
	for _, sr := range d.series {
		sr.dirty = false
	}
	for _, h := range d.hists {
		h.dirty = false
	}
	for _, g := range d.groups {
		g.dirty = false
	}
	d.series, d.hists, d.groups = d.series[:0], d.hists[:0], d.groups[:0]
}
