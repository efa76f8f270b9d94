package aggregate

import (
	"runtime"
	"strings"

	"github.com/promstore/promstore/internal/store"
)

// maxSlots bounds the slice indexed by key ID; keys with larger IDs use
// the map.
const maxSlots = 1 << 24

// keyInfo caches what a key text means for aggregation.
type keyInfo struct {
	fam *family
	key *store.Key
	// ser is the key's series id and sorted labels, made when first
	// needed (see series): a histogram bucket's key, most keys of a
	// store, needs none.
	ser      *keySeries
	hist     *hist // a histogram bucket's histogram and bound
	le       float64
	shortcut *series   // resolved series for non-pid aggregations
	group    *pidGroup // resolved group for all/liveall gauges
	// cell, once set, is all a sample of the key does: add its value
	// there (counters, summaries, histograms, gauges sum/livesum). A
	// histogram bucket's is its bucket, set when the key is resolved
	// (and again when first met after Reset).
	cell *float64
	// epoch is the read (see Reset) in which the key was last met.
	epoch uint32
}

// keySeries is a key's series id without pid (its name, \xff and its
// label id), the id's hash (store.HashText) and the key's labels, sorted.
type keySeries struct {
	id     string
	idHash uint64
	labels []store.Label
}

// prepMin is how many new keys a shard must bring for their preps to be
// computed ahead, on every core.
const prepMin = 2048

// prepareNew computes the preps of the keys of entries met for the first
// time (their ID's slot is free) on every core, when a shard brings many
// (the first shards of a store bring all its keys); nil otherwise.
func (a *Aggregator) prepareNew(entries []store.Entry) []keyPrep {
	workers := runtime.GOMAXPROCS(0)
	if len(entries) < prepMin || workers < 2 {
		return nil
	}
	// Look at a few entries before counting them all.
	seen := 0
	for i := 0; i < 8; i++ {
		if a.isNew(&entries[i*(len(entries)-1)/7]) {
			seen++
		}
	}
	if seen < 4 {
		return nil
	}
	preps := make([]keyPrep, len(entries))
	chunk := (len(entries) + workers - 1) / workers
	store.Parallel(workers, func(w int) {
		for i := w * chunk; i < min((w+1)*chunk, len(entries)); i++ {
			if e := &entries[i]; a.isNew(e) {
				preps[i] = prepare(e.Key)
			}
		}
	})
	return preps
}

// isNew reports whether e's key is met for the first time: its ID's slot
// is free.
func (a *Aggregator) isNew(e *store.Entry) bool {
	return e.KeyID != 0 && (int(e.KeyID) >= len(a.slots) || a.slots[e.KeyID] == nil)
}

// lookup returns what s.Key means for aggregation: by the key's ID when the
// reader gave one (a slice index), else by pointer. A key whose ID's slot
// is free is met for the first time: it goes straight to the slot, without
// the pointer map. A key met for the first time is resolved: another
// pointer of a text met before (a reader that parsed it again) gets a
// keyInfo of its own, which finds the same series, histogram and group by
// their ids (what a reader gives is one pointer per text: looking texts up
// here too cost a tenth of a large store's dump).
func (a *Aggregator) lookup(s store.Sample, p *keyPrep) *keyInfo {
	k := s.Key
	id := k.ID
	if id != 0 && int(id) < len(a.slots) {
		if ki := a.slots[id]; ki != nil && ki.key == k {
			return ki
		}
	}
	slotted := id != 0 && id < maxSlots
	if slotted && int(id) >= len(a.slots) {
		a.slots = append(a.slots, make([]*keyInfo, int(id)+1-len(a.slots)+len(a.slots)/2)...)
	}
	if slotted && a.slots[id] == nil {
		ki := a.resolve(s, p)
		a.slots[id] = ki
		return ki
	}
	ki := a.keys[k]
	if ki == nil {
		ki = a.resolve(s, p)
		a.keys[k] = ki
	}
	return ki
}

// series returns ki's keySeries, made on the first call.
func (a *Aggregator) series(ki *keyInfo) *keySeries {
	if ki.ser == nil {
		p := prepare(ki.key)
		ki.ser = a.keySeries(&p)
	}
	if ki.ser.id == "" {
		ki.ser.id = labelIDOf(ki.key.Name, "\xff", ki.ser.labels, -1)
		ki.ser.idHash = store.HashText(ki.ser.id)
	}
	return ki.ser
}

// keySeries returns a new keySeries of what prep p holds.
func (a *Aggregator) keySeries(p *keyPrep) *keySeries {
	ks := a.serChunk.next()
	*ks = keySeries{id: p.id, idHash: p.idHash, labels: p.labels}
	return ks
}

// lid returns the label id part of a series id.
func lidOf(id string) string {
	return id[strings.IndexByte(id, 0xff)+1:]
}

// keyPrep is what resolving a key derives from the key alone, so that
// it can be computed for many new keys at once on every core.
type keyPrep struct {
	ok     bool          // computed
	labels []store.Label // sorted
	// id is labelIDOf(name, "\xff", labels, -1), idHash its hash; not
	// made for a sample with a parsable le (see Aggregator.series).
	id     string
	idHash uint64
	// For a sample with a parsable "le" label: its bound, its index in
	// labels and the hash of the label id of the others (see hid).
	leOK    bool
	le      float64
	leIdx   int
	hidHash uint64
}

// hid is the label id of the prep's labels but le: labelIDOf("", "",
// labels, leIdx).
func (p *keyPrep) hid() string { return labelIDOf("", "", p.labels, p.leIdx) }

// isHid reports whether id is the prep's hid, without making that.
func (p *keyPrep) isHid(id string) bool {
	for j, l := range p.labels {
		if j == p.leIdx {
			continue
		}
		n := len(l.Name) + len(l.Value) + 2
		if len(id) < n || id[:len(l.Name)] != l.Name || id[len(l.Name)] != 0xfe ||
			id[len(l.Name)+1:n-1] != l.Value || id[n-1] != 0xfd {
			return false
		}
		id = id[n:]
	}
	return id == ""
}

func prepare(k *store.Key) keyPrep {
	p := keyPrep{ok: true, labels: k.Labels} // sorted as Python's encoder writes them, usually
	if !labelsSorted(p.labels) {
		p.labels = append([]store.Label(nil), p.labels...)
		sortLabels(p.labels)
	}
	if i, le, ok := leIndex(p.labels); ok {
		// The label id of the other labels is hashed, not made: most
		// buckets find their histogram made by another bucket.
		p.leOK, p.le, p.leIdx = true, le, i
		var h store.TextHasher
		h.Reset()
		for j, l := range p.labels {
			if j != i {
				h.WriteString(l.Name)
				_ = h.WriteByte(0xfe)
				h.WriteString(l.Value)
				_ = h.WriteByte(0xfd)
			}
		}
		p.hidHash = h.Sum()
	} else {
		p.id = labelIDOf(k.Name, "\xff", p.labels, -1)
		p.idHash = store.HashText(p.id)
	}
	return p
}

// leIndex returns the index of the "le" label of a bucket sample and its
// bound; false when there is none, or when the bound does not parse
// (Python's float() would raise and fail the whole scrape): the sample is
// then a plain series.
func leIndex(labels []store.Label) (int, float64, bool) {
	for i, l := range labels {
		if l.Name != "le" {
			continue
		}
		le, err := store.ParsePyFloat(l.Value)
		return i, le, err == nil
	}
	return 0, 0, false
}

// SplitLE returns a bucket sample's bound and its other labels (a new
// slice), as the aggregator reads them; false when the sample has no le
// label or its bound does not parse.
func SplitLE(labels []store.Label) (float64, []store.Label, bool) {
	i, le, ok := leIndex(labels)
	if !ok {
		return 0, nil, false
	}
	without := make([]store.Label, 0, len(labels)-1)
	without = append(without, labels[:i]...)
	return le, append(without, labels[i+1:]...), true
}

// SeriesID identifies a series as the aggregator does: its sample name
// and its labels, sorted by name. Different series have different ids.
func SeriesID(name string, sorted []store.Label) string {
	return labelIDOf(name, "\xff", sorted, -1)
}

// HistogramID identifies a histogram: its family and its labels other
// than le, sorted by name.
func HistogramID(family string, sortedWithoutLE []store.Label) string {
	return labelIDOf(family, "\xfc", sortedWithoutLE, -1)
}

// without returns the prep's labels without le (a new slice).
func (p *keyPrep) without() []store.Label {
	return append(append([]store.Label(nil), p.labels[:p.leIdx]...), p.labels[p.leIdx+1:]...)
}

// resolve makes the keyInfo of s.Key; p is the key's prep when it was
// computed ahead, else nil.
func (a *Aggregator) resolve(s store.Sample, p *keyPrep) *keyInfo {
	k := s.Key
	if p == nil {
		pp := prepare(k)
		p = &pp
	}
	f := a.families[k.Family]
	if f != nil && f.epoch != a.epoch && !a.claim(f, s) {
		f = nil // made anew for another kind of shard (see Reset)
	}
	if f == nil {
		f = &family{
			Family: Family{Name: k.Family, Type: s.Shard.Kind, Help: k.Help, Mode: a.client.GaugeMode(s.Shard.Mode)},
			epoch:  a.epoch,
		}
		a.families[k.Family] = f
	}
	ki := a.infoChunk.next()
	*ki = keyInfo{key: k, fam: f, epoch: a.epoch}
	a.met++
	if f.Type == store.KindHistogram && p.leOK {
		h, _ := f.hists.GetFunc(p.hidHash, p.isHid)
		if h == nil {
			hid := p.hid()
			h = &hist{labels: p.without(), lid: hid}
			f.hists.Put(p.hidHash, hid, h)
			f.histList = append(f.histList, h)
		}
		ki.cell = h.bucket(p.le, &a.cellChunk)
		ki.hist, ki.le = h, p.le
		return ki
	}
	ki.ser = a.keySeries(p)
	return ki
}

// labelsSorted reports whether labels are sorted by name.
func labelsSorted(labels []store.Label) bool {
	for i := 1; i < len(labels); i++ {
		if labels[i].Name < labels[i-1].Name {
			return false
		}
	}
	return true
}

// sortLabels sorts a few labels by name (insertion sort: label sets are
// small and usually sorted already).
func sortLabels(ls []store.Label) {
	for i := 1; i < len(ls); i++ {
		for j := i; j > 0 && ls[j].Name < ls[j-1].Name; j-- {
			ls[j], ls[j-1] = ls[j-1], ls[j]
		}
	}
}

// labelIDOf is name and sep followed by the label id of ls without
// ls[skip] (skip -1 for none), built in one allocation.
func labelIDOf(name, sep string, ls []store.Label, skip int) string {
	n := len(name) + len(sep)
	for i, l := range ls {
		if i != skip {
			n += len(l.Name) + len(l.Value) + 2
		}
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(name)
	b.WriteString(sep)
	for i, l := range ls {
		if i == skip {
			continue
		}
		b.WriteString(l.Name)
		b.WriteByte(0xfe)
		b.WriteString(l.Value)
		b.WriteByte(0xfd)
	}
	return b.String()
}
