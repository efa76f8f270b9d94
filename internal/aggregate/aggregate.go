// Package aggregate merges the per-process samples of a store into metric
// families exactly as prometheus_client's MultiProcessCollector does.
package aggregate

import (
	"encoding/binary"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/store"
)

// Family is one aggregated metric family.
type Family struct {
	// Name is the family name as the sample keys give it (a counter
	// "requests" has samples "requests_total").
	Name string
	// Type is the family's metric type.
	Type store.Kind
	// Help is the help text of the first key seen.
	Help string
	// Mode is the gauge multiprocess mode; empty for other types.
	Mode string
	// Samples are sorted series by series: by labels without le, then
	// name, then le (see SortSamples).
	Samples []Sample
}

// Sample is one aggregated sample.
type Sample struct {
	Name string
	// Labels are sorted by name; gauges of mode all/liveall carry "pid",
	// histogram buckets "le" formatted as Python does ("1.0", "1e+06").
	// They may share memory with the store's keys: read only.
	Labels []store.Label
	Value  float64
	// Procs is what the processes contribute, when the aggregator keeps
	// it (KeepProcesses); nil otherwise.
	Procs *Breakdown
}

// Aggregator merges samples. The zero value is not usable; call New.
// Samples must be added in a deterministic order (the store's scan order)
// for the output to be deterministic, as Python's is in its file order.
type Aggregator struct {
	families map[string]*family
	slots    []*keyInfo // by store.Key.ID
	keys     map[*store.Key]*keyInfo
	byText   store.TextMap[*keyInfo]

	// keyInfos and cells are allocated from chunks, in the order keys are
	// first seen: a store's shards list their keys in much the same
	// order, so the fast path of Add walks memory nearly sequentially.
	infoChunk chunk[keyInfo]
	cellChunk chunk[float64]

	// Process ids are numbered as they are met; per-process series are
	// found by number (the last pid is remembered: samples come shard by
	// shard).
	pids    []string
	pidNums map[string]int32
	lastPID string
	lastNum int32

	// client is the prometheus_client release whose spelling of bucket
	// bounds (le) Families writes.
	client pyclient.Version

	// keep is how many processes each sample's breakdown keeps; zero
	// for none (see KeepProcesses).
	keep int
}

// pidNum returns the number of a process id.
func (a *Aggregator) pidNum(pid string) int32 {
	if pid == a.lastPID && len(a.pids) > 0 {
		return a.lastNum
	}
	n, ok := a.pidNums[pid]
	if !ok {
		n = int32(len(a.pids))
		a.pids = append(a.pids, pid)
		a.pidNums[pid] = n
	}
	a.lastPID, a.lastNum = pid, n
	return n
}

// pidOrder returns the pid numbers in output order: numerically where
// pids are numbers, then by text.
func (a *Aggregator) pidOrder() []int32 {
	type pidKey struct {
		num float64
		ok  bool
		n   int32
	}
	ks := make([]pidKey, len(a.pids))
	for i, pid := range a.pids {
		f, ok := parseNumber(pid)
		ks[i] = pidKey{f, ok, int32(i)}
	}
	slices.SortFunc(ks, func(x, y pidKey) int {
		switch {
		case x.ok && y.ok && x.num != y.num:
			if x.num < y.num {
				return -1
			}
			return 1
		case x.ok != y.ok:
			if x.ok {
				return -1
			}
			return 1
		}
		return strings.Compare(a.pids[x.n], a.pids[y.n])
	})
	order := make([]int32, len(ks))
	for i, k := range ks {
		order[i] = k.n
	}
	return order
}

// maxSlots bounds the slice indexed by key ID; keys with larger IDs use
// the map.
const maxSlots = 1 << 24

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
}

type hist struct {
	labels []store.Label // without le
	lid    string        // their label id
	// The bucket bounds in ascending order (NaN last, once) and their
	// cells.
	les   []float64
	cells []*float64
	procs *histProcs // with KeepProcesses
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

// keyInfo caches what a key text means for aggregation.
type keyInfo struct {
	fam      *family
	id       string        // series id without pid
	idHash   uint64        // store.HashText(id)
	labels   []store.Label // sorted
	key      *store.Key
	bucket   *float64 // the bucket a histogram _bucket sample adds to
	hist     *hist    // its histogram and bound
	le       float64
	shortcut *series   // resolved series for non-pid aggregations
	group    *pidGroup // resolved group for all/liveall gauges
	// cell, once set, is all a sample of the key does: add its value
	// there (counters, summaries, histograms, gauges sum/livesum).
	cell *float64
}

// chunk hands out zero values cut from blocks of 1,024: an aggregator
// makes hundreds of thousands of small objects, and one allocation each
// costs the garbage collector dearly; cut in order, the objects of keys
// met one after the other also lie side by side.
type chunk[T any] []T

func (c *chunk[T]) next() *T {
	if len(*c) == 0 {
		*c = make([]T, 1024)
	}
	v := &(*c)[0]
	*c = (*c)[1:]
	return v
}

// New returns an empty Aggregator whose families spell bucket bounds as
// the newest prometheus_client does (pyclient.Latest).
func New() *Aggregator { return NewFor(pyclient.Latest) }

// NewFor returns an empty Aggregator whose families spell bucket bounds
// (le="1e+10" or "1e+010") as prometheus_client release client does.
func NewFor(client pyclient.Version) *Aggregator {
	return &Aggregator{
		families: map[string]*family{},
		keys:     map[*store.Key]*keyInfo{},
		pidNums:  map[string]int32{},
		client:   client,
	}
}

// Add merges one sample. It never fails; the error result lets Add serve
// as a store.ScanFunc.
func (a *Aggregator) Add(s store.Sample) error {
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
	if a.keep > 0 {
		a.record(ki, s.Shard.PID, s.Value, s.Timestamp)
	}
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
				g = ki.fam.pidGroup(ki)
			}
			g.set(a.pidNum(s.Shard.PID), s.Value)
		}
	case store.KindHistogram:
		if ki.bucket != nil {
			*ki.bucket += s.Value
			ki.cell = ki.bucket
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
	if a.keep > 0 {
		// Every sample's process is kept: no shortcut.
		for i := range entries {
			e := &entries[i]
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
		if preps != nil && preps[i].id != "" {
			p = &preps[i]
		}
		a.add(store.Sample{Shard: id, Key: e.Key, Value: e.Value, Timestamp: e.Timestamp}, p)
	}
	return nil
}

// prepMin is how many new keys a shard must bring for their preps to be
// computed ahead, on every core.
const prepMin = 2048

// prepareNew computes the preps of the keys of entries met for the first
// time (their ID's slot is free) on every core, when a shard brings many
// (the first shards of a store bring all its keys); nil otherwise.
func (a *Aggregator) prepareNew(entries []store.Entry) []keyPrep {
	isNew := func(e *store.Entry) bool {
		return e.KeyID != 0 && (int(e.KeyID) >= len(a.slots) || a.slots[e.KeyID] == nil)
	}
	workers := runtime.GOMAXPROCS(0)
	if len(entries) < prepMin || workers < 2 {
		return nil
	}
	// Look at a few entries before counting them all.
	seen := 0
	for i := 0; i < 8; i++ {
		if isNew(&entries[i*(len(entries)-1)/7]) {
			seen++
		}
	}
	if seen < 4 {
		return nil
	}
	preps := make([]keyPrep, len(entries))
	chunk := (len(entries) + workers - 1) / workers
	parallel(workers, func(w int) {
		for i := w * chunk; i < min((w+1)*chunk, len(entries)); i++ {
			if e := &entries[i]; isNew(e) {
				preps[i] = prepare(e.Key)
			}
		}
	})
	return preps
}

// lookup returns what s.Key means for aggregation: by the key's ID when the
// reader gave one (a slice index), else by pointer, else by text. A key
// whose ID's slot is free is met for the first time: it goes straight to
// the slot, without the pointer map.
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
		ki := a.named(s, p)
		a.slots[id] = ki
		return ki
	}
	ki := a.keys[k]
	if ki == nil {
		ki = a.named(s, p)
		a.keys[k] = ki
	}
	return ki
}

// named resolves s.Key by its text, under a keyInfo of its own pointer.
func (a *Aggregator) named(s store.Sample, p *keyPrep) *keyInfo {
	ki := a.resolve(s, p)
	if ki.key != s.Key {
		// Same text, another pointer (another reader): share the
		// aggregation state under a keyInfo of this pointer.
		c := a.infoChunk.next()
		*c = *ki
		c.key = s.Key
		ki = c
	}
	return ki
}

// pidGroup returns the group of per-process series of ki's series.
func (f *family) pidGroup(ki *keyInfo) *pidGroup {
	g, ok := f.groups.Get(ki.idHash, ki.id)
	if !ok {
		g = &pidGroup{name: ki.key.Name, lid: ki.lid(), labels: ki.labels}
		f.groups.Put(ki.idHash, ki.id, g)
		f.groupList = append(f.groupList, g)
	}
	ki.group = g
	return g
}

// labelArena hands out label slices cut from large blocks.
type labelArena struct {
	buf []store.Label
}

// withAt returns labels (sorted by name) with extra inserted at index at
// (see insertAt), in arena memory.
func (a *labelArena) withAt(labels []store.Label, extra store.Label, at int) []store.Label {
	n := len(labels) + 1
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]store.Label, 0, max(4096, n))
	}
	start := len(a.buf)
	a.buf = append(a.buf, labels[:at]...)
	a.buf = append(a.buf, extra)
	a.buf = append(a.buf, labels[at:]...)
	return a.buf[start:len(a.buf):len(a.buf)]
}

// insertAt is where a label named name goes in labels sorted by name:
// after the labels of that name or before it.
func insertAt(labels []store.Label, name string) int {
	i := 0
	for i < len(labels) && labels[i].Name <= name {
		i++
	}
	return i
}

// lid returns the label id part of ki.id (name \xff label id).
func (ki *keyInfo) lid() string { return ki.id[strings.IndexByte(ki.id, 0xff)+1:] }

func (a *Aggregator) shortcut(ki *keyInfo) *series {
	if ki.shortcut == nil {
		sr, ok := ki.fam.series.Get(ki.idHash, ki.id)
		if !ok {
			sr = ki.fam.seriesChunk.next()
			sr.name, sr.lid, sr.labels = ki.id[:strings.IndexByte(ki.id, 0xff)], ki.lid(), ki.labels
			ki.fam.series.Put(ki.idHash, ki.id, sr)
			ki.fam.seriesList = append(ki.fam.seriesList, sr)
		}
		ki.shortcut = sr
	}
	return ki.shortcut
}

// keyPrep is what resolving a key derives from the key alone, so that
// it can be computed for many new keys at once on every core.
type keyPrep struct {
	textHash uint64
	labels   []store.Label // sorted
	id       string        // name \xff labelIDOf("", labels, -1)
	idHash   uint64
	// For a sample with a parsable "le" label: its bound, its index in
	// labels and the label id of the others.
	leOK    bool
	le      float64
	leIdx   int
	hid     string
	hidHash uint64
}

func prepare(k *store.Key) keyPrep {
	p := keyPrep{textHash: store.HashText(k.Text), labels: k.Labels} // sorted as Python's encoder writes them, usually
	if !labelsSorted(p.labels) {
		p.labels = append([]store.Label(nil), p.labels...)
		sortLabels(p.labels)
	}
	p.id = labelIDOf(k.Name+"\xff", p.labels, -1)
	p.idHash = store.HashText(p.id)
	for i, l := range p.labels {
		if l.Name != "le" {
			continue
		}
		// A bound that does not parse (Python's float() would raise and
		// fail the whole scrape) keeps the sample a plain series.
		if le, err := store.ParsePyFloat(l.Value); err == nil {
			p.leOK, p.le, p.leIdx = true, le, i
			p.hid = labelIDOf("", p.labels, i)
			p.hidHash = store.HashText(p.hid)
		}
		break
	}
	return p
}

// without returns the prep's labels without le (a new slice).
func (p *keyPrep) without() []store.Label {
	return append(append([]store.Label(nil), p.labels[:p.leIdx]...), p.labels[p.leIdx+1:]...)
}

// resolve finds or makes the keyInfo of s.Key's text; p is the key's
// prep when it was computed ahead, else nil.
func (a *Aggregator) resolve(s store.Sample, p *keyPrep) *keyInfo {
	k := s.Key
	if p == nil {
		pp := prepare(k)
		p = &pp
	}
	if ki, ok := a.byText.Get(p.textHash, k.Text); ok {
		return ki
	}
	f := a.families[k.Family]
	if f == nil {
		f = &family{
			Family: Family{Name: k.Family, Type: s.Shard.Kind, Help: k.Help, Mode: s.Shard.Mode},
		}
		a.families[k.Family] = f
	}
	ki := a.infoChunk.next()
	*ki = keyInfo{key: k, fam: f, labels: p.labels, id: p.id, idHash: p.idHash}
	if f.Type == store.KindHistogram && p.leOK {
		h, _ := f.hists.Get(p.hidHash, p.hid)
		if h == nil {
			h = &hist{labels: p.without(), lid: p.hid}
			f.hists.Put(p.hidHash, p.hid, h)
			f.histList = append(f.histList, h)
		}
		ki.bucket = h.bucket(p.le, &a.cellChunk)
		ki.hist, ki.le = h, p.le
	}
	a.byText.Put(p.textHash, k.Text, ki)
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

// labelIDOf is prefix followed by the label id of ls without ls[skip]
// (skip -1 for none), built in one allocation.
func labelIDOf(prefix string, ls []store.Label, skip int) string {
	n := len(prefix)
	for i, l := range ls {
		if i != skip {
			n += len(l.Name) + len(l.Value) + 2
		}
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(prefix)
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

// Families returns the merged families sorted by name, each with its
// samples sorted series by series (see SortSamples).
func (a *Aggregator) Families() []Family {
	fams := make([]*family, 0, len(a.families))
	for _, f := range a.families {
		fams = append(fams, f)
	}
	order := a.pidOrder()
	slices.SortFunc(fams, func(a, b *family) int { return strings.Compare(a.Name, b.Name) })
	out := make([]Family, len(fams))
	// Families are independent: build their samples on every core.
	parallel(len(fams), func(i int) {
		f := fams[i]
		out[i] = f.Family
		if out[i].Type != store.KindGauge {
			out[i].Mode = ""
		}
		out[i].Samples = f.samples(order, a.pids, a.client, a.keep)
	})
	return out
}

// parallel calls fn(0) ... fn(n-1) on up to GOMAXPROCS goroutines and
// returns when all calls have.
func parallel(n int, fn func(int)) {
	workers := min(n, runtime.GOMAXPROCS(0))
	if workers <= 1 {
		for i := 0; i < n; i++ {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				fn(i)
			}
		}()
	}
	wg.Wait()
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
// processes by pid.
func (f *family) samples(pidOrder []int32, pids []string, client pyclient.Version, keep int) []Sample {
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
						out[len(out)-1].Procs = histBreakdown(g.hist, keep, le, acc)
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
					out[len(out)-1].Procs = histBreakdown(g.hist, keep, math.Inf(1), acc)
				}
			case e.sr != nil:
				out = append(out, Sample{Name: e.sr.name, Labels: e.sr.labels, Value: e.sr.value})
				if keep > 0 {
					out[len(out)-1].Procs = seriesBreakdown(e.sr, MergeOf(f.Type, f.Mode))
				}
			default:
				out = f.appendPIDs(out, e.pg, pidOrder, pids, keep > 0)
			}
		}
	}
	return out
}

// appendPIDs appends the per-process samples of g in pid order (see
// Aggregator.pidOrder), labelled with their pid (pids by number), with
// their breakdown when procs is set.
func (f *family) appendPIDs(out []Sample, g *pidGroup, pidOrder []int32, pids []string, procs bool) []Sample {
	at := insertAt(g.labels, "pid")
	for _, num := range pidOrder {
		if int(num) < len(g.byPID) && g.byPID[num].set {
			labels := f.labels.withAt(g.labels, store.Label{Name: "pid", Value: pids[num]}, at)
			out = append(out, Sample{Name: g.name, Labels: labels, Value: g.byPID[num].value})
			if procs {
				// One process per series: its own.
				out[len(out)-1].Procs = &Breakdown{Contrib: []Contribution{{PID: pids[num], Value: g.byPID[num].value}}, OthersValue: math.NaN()}
			}
		}
	}
	return out
}

// appendLabelsKey encodes the order of label sets: label names as strings,
// "pid" values numerically where they are numbers, other values as
// strings; a shorter set that is a prefix of a longer one sorts first.
func appendLabelsKey(b []byte, labels []store.Label) []byte {
	for _, l := range labels {
		b = append(b, l.Name...)
		b = append(b, 0)
		if l.Name == "pid" {
			if f, ok := parseNumber(l.Value); ok {
				b = append(b, 1)
				b = binary.BigEndian.AppendUint64(b, orderedBits(f))
				continue
			}
		}
		b = append(b, 2)
		b = append(b, l.Value...)
		b = append(b, 0)
	}
	return append(b, 0)
}

// sortItem is a sample with its sort key: one byte string whose order is
// the sample order, so that sorting costs one comparison of two strings.
type sortItem struct {
	Sample
	key string
}

func newSortItem(s Sample) sortItem {
	return sortItem{Sample: s, key: string(appendSortKey(nil, &s))}
}

// appendSortKey encodes the order of samples: by label set without "le"
// (label names as strings; "pid" values numerically where they are
// numbers, every other value as a string), then by sample name, then by
// "le" numerically. So each series reads as one group: a histogram's
// buckets in ascending le, then _count and _sum; a gauge's processes in
// pid order.
func appendSortKey(b []byte, s *Sample) []byte {
	le, hasLE := "", false
	var pid *store.Label
	rest := make([]store.Label, 0, len(s.Labels))
	for i, l := range s.Labels {
		switch l.Name {
		case "le":
			le, hasLE = l.Value, true
		case "pid":
			pid = &s.Labels[i]
		default:
			rest = append(rest, l)
		}
	}
	b = appendLabelsKey(b, rest)
	b = append(b, s.Name...)
	b = append(b, 0)
	if pid != nil {
		b = appendLabelsKey(b, []store.Label{*pid})
	}
	b = append(b, 0)
	if hasLE {
		if f, ok := parseNumber(le); ok {
			b = append(b, 1)
			b = binary.BigEndian.AppendUint64(b, orderedBits(f))
		} else {
			b = append(b, 2)
			b = append(b, le...)
		}
	}
	return b
}

// orderedBits maps a float to an integer of the same order (NaN last).
func orderedBits(f float64) uint64 {
	if math.IsNaN(f) {
		return math.MaxUint64
	}
	u := math.Float64bits(f)
	if u>>63 == 1 {
		return ^u
	}
	return u | 1<<63
}

// parseNumber parses v as a float, sparing ParseFloat (and its error
// allocation) the values that cannot be numbers.
func parseNumber(v string) (float64, bool) {
	if v == "" {
		return 0, false
	}
	if c := v[0]; !(c >= '0' && c <= '9') && c != '-' && c != '+' && c != '.' {
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	return f, err == nil
}

// compareItems orders samples by their sort keys; equal keys (only
// possible with NUL bytes in label values) fall back to the label text.
func compareItems(a, b *sortItem) int {
	if c := strings.Compare(a.key, b.key); c != 0 {
		return c
	}
	n := min(len(a.Labels), len(b.Labels))
	for i := 0; i < n; i++ {
		if c := strings.Compare(a.Labels[i].Name, b.Labels[i].Name); c != 0 {
			return c
		}
		if c := strings.Compare(a.Labels[i].Value, b.Labels[i].Value); c != 0 {
			return c
		}
	}
	return len(a.Labels) - len(b.Labels)
}

func sortItems(items []sortItem) []Sample {
	ptrs := make([]*sortItem, len(items))
	for i := range items {
		ptrs[i] = &items[i]
	}
	slices.SortFunc(ptrs, compareItems)
	out := make([]Sample, len(ptrs))
	for i, it := range ptrs {
		out[i] = it.Sample
	}
	return out
}

// SortSamples sorts samples series by series: by label set without le,
// then name, then le (see appendSortKey).
func SortSamples(ss []Sample) {
	items := make([]sortItem, len(ss))
	for i := range ss {
		items[i] = newSortItem(ss[i])
	}
	copy(ss, sortItems(items))
}
