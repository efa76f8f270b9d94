package aggregate

import (
	"math"

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
		keep := a.keep
		*a = *NewFor(a.client)
		a.keep = keep
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
	if f.Type == s.Shard.Kind && f.Mode == s.Shard.Mode {
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
// with a changed sample is emptied and its samples added again from
// every shard of cur, in order, as a new read adds them. So a read of a
// store whose running processes wrote values in place costs a pass over
// its entries and the additions of the series they changed.
//
// It returns false, having changed nothing, when cur is not so (another
// shard or key at some place; a key the last read did not meet), and
// when the aggregator keeps processes (KeepProcesses): aggregate cur anew.
func (a *Aggregator) Revalue(last, cur []Shard, changed []int) bool {
	if a.keep > 0 || len(last) != len(cur) {
		return false
	}
	var dirty dirtySet
	for _, i := range changed {
		if i < 0 || i >= len(cur) {
			dirty.clear()
			return false
		}
		l, c := last[i].Entries, cur[i].Entries
		if last[i].ID != cur[i].ID || len(l) != len(c) {
			dirty.clear()
			return false
		}
		for j := range c {
			ce, le := &c[j], &l[j]
			if ce.Key != le.Key {
				dirty.clear()
				return false
			}
			if math.Float64bits(ce.Value) == math.Float64bits(le.Value) && math.Float64bits(ce.Timestamp) == math.Float64bits(le.Timestamp) {
				continue
			}
			ki := a.known(ce.Key)
			if ki == nil || !dirty.mark(ki) {
				dirty.clear()
				return false
			}
		}
	}
	if dirty.empty() {
		return true
	}
	dirty.reset()
	for _, sh := range cur {
		for j := range sh.Entries {
			e := &sh.Entries[j]
			ki := a.known(e.Key)
			if ki == nil || !ki.dirty() {
				continue
			}
			a.add(store.Sample{Shard: sh.ID, Key: e.Key, Value: e.Value, Timestamp: e.Timestamp}, nil)
		}
	}
	dirty.clear()
	for _, f := range a.families {
		// Labels of earlier Families calls live on in their blocks.
		f.labels = labelArena{}
	}
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

// dirty says whether what ki's samples add to (its histogram, group of
// processes or series) is marked by a dirtySet.
func (ki *keyInfo) dirty() bool {
	switch {
	case ki.hist != nil:
		return ki.hist.dirty
	case ki.group != nil:
		return ki.group.dirty
	case ki.shortcut != nil:
		return ki.shortcut.dirty
	}
	return false
}

// dirtySet marks what changed samples add to, for Revalue.
type dirtySet struct {
	series []*series
	hists  []*hist
	groups []*pidGroup
}

// mark marks what ki's samples add to; false when the key has none (it
// was never added to).
func (d *dirtySet) mark(ki *keyInfo) bool {
	switch {
	case ki.hist != nil:
		if ki.cell == nil {
			return false
		}
		if !ki.hist.dirty {
			ki.hist.dirty = true
			d.hists = append(d.hists, ki.hist)
		}
	case ki.group != nil:
		if !ki.group.dirty {
			ki.group.dirty = true
			d.groups = append(d.groups, ki.group)
		}
	case ki.shortcut != nil:
		if !ki.shortcut.dirty {
			ki.shortcut.dirty = true
			d.series = append(d.series, ki.shortcut)
		}
	default:
		return false
	}
	return true
}

func (d *dirtySet) empty() bool {
	return len(d.series) == 0 && len(d.hists) == 0 && len(d.groups) == 0
}

// reset empties what is marked, as Reset does, for its samples to be
// added again; the marks stay.
func (d *dirtySet) reset() {
	for _, sr := range d.series {
		sr.value, sr.ts, sr.set = 0, 0, false
	}
	for _, h := range d.hists {
		for _, c := range h.cells {
			*c = 0
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
}
