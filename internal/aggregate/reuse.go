package aggregate

import "github.com/promstore/promstore/internal/store"

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
