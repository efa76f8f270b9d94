// Package aggregate merges the per-process samples of a store into metric
// families exactly as prometheus_client's MultiProcessCollector does.
package aggregate

import (
	"encoding/binary"
	"math"
	"slices"
	"strconv"
	"strings"

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
	Labels []store.Label
	Value  float64
}

// Aggregator merges samples. The zero value is not usable; call New.
// Samples must be added in a deterministic order (the store's scan order)
// for the output to be deterministic, as Python's is in its file order.
type Aggregator struct {
	families map[string]*family
	slots    []*keyInfo // by store.Key.ID
	keys     map[*store.Key]*keyInfo
	byText   map[string]*keyInfo
}

// maxSlots bounds the slice indexed by key ID; keys with larger IDs use
// the map.
const maxSlots = 1 << 24

type family struct {
	Family
	series map[string]*series   // by series id
	hists  map[string]*hist     // by label id without le
	groups map[string]*pidGroup // gauges all/liveall: by series id without pid
}

// pidGroup holds the per-process series of one all/liveall gauge series.
type pidGroup struct {
	name   string
	labels []store.Label // without pid
	byPID  map[string]*series
}

type series struct {
	name   string
	labels []store.Label
	value  float64
	ts     float64
	set    bool
}

type hist struct {
	labels  []store.Label // without le
	buckets map[float64]*float64
}

// keyInfo caches what a key text means for aggregation.
type keyInfo struct {
	fam      *family
	id       string        // series id without pid
	labels   []store.Label // sorted
	key      *store.Key
	bucket   *float64  // the bucket a histogram _bucket sample adds to
	shortcut *series   // resolved series for non-pid aggregations
	group    *pidGroup // resolved group for all/liveall gauges
}

// New returns an empty Aggregator.
func New() *Aggregator {
	return &Aggregator{
		families: map[string]*family{},
		keys:     map[*store.Key]*keyInfo{},
		byText:   map[string]*keyInfo{},
	}
}

// Add merges one sample. It never fails; the error result lets Add serve
// as a store.ScanFunc.
func (a *Aggregator) Add(s store.Sample) error {
	ki := a.lookup(s)
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
			sr := g.byPID[s.Shard.PID]
			if sr == nil {
				sr = g.add(s.Shard.PID)
			}
			sr.value, sr.set = s.Value, true
		}
	case store.KindHistogram:
		if ki.bucket != nil {
			*ki.bucket += s.Value
			return nil
		}
		sr := a.shortcut(ki)
		sr.value += s.Value
		sr.set = true
	default: // counter, summary
		sr := a.shortcut(ki)
		sr.value += s.Value
		sr.set = true
	}
	return nil
}

// lookup returns what s.Key means for aggregation: by the key's ID when the
// reader gave one (a slice index), else by pointer, else by text.
func (a *Aggregator) lookup(s store.Sample) *keyInfo {
	k := s.Key
	if id := k.ID; id != 0 && int(id) < len(a.slots) {
		if ki := a.slots[id]; ki != nil && ki.key == k {
			return ki
		}
	}
	ki := a.keys[k]
	if ki == nil {
		ki = a.resolve(s)
		if ki.key != k {
			// Same text, another pointer (another reader): share the
			// aggregation state under a keyInfo of this pointer.
			c := *ki
			c.key = k
			ki = &c
		}
		a.keys[k] = ki
	}
	if id := k.ID; id != 0 && id < maxSlots {
		if int(id) >= len(a.slots) {
			a.slots = append(a.slots, make([]*keyInfo, int(id)+1-len(a.slots)+len(a.slots)/2)...)
		}
		if a.slots[id] == nil {
			a.slots[id] = ki
		}
	}
	return ki
}

// pidGroup returns the group of per-process series of ki's series.
func (f *family) pidGroup(ki *keyInfo) *pidGroup {
	g := f.groups[ki.id]
	if g == nil {
		g = &pidGroup{name: ki.key.Name, labels: ki.labels, byPID: map[string]*series{}}
		f.groups[ki.id] = g
	}
	ki.group = g
	return g
}

// add creates the series of pid, labelled with it.
func (g *pidGroup) add(pid string) *series {
	labels := make([]store.Label, 0, len(g.labels)+1)
	labels = append(labels, g.labels...)
	labels = append(labels, store.Label{Name: "pid", Value: pid})
	sortLabels(labels)
	sr := &series{name: g.name, labels: labels}
	g.byPID[pid] = sr
	return sr
}

func (a *Aggregator) shortcut(ki *keyInfo) *series {
	if ki.shortcut == nil {
		sr := ki.fam.series[ki.id]
		if sr == nil {
			sr = &series{name: ki.id[:strings.IndexByte(ki.id, 0xff)], labels: ki.labels}
			ki.fam.series[ki.id] = sr
		}
		ki.shortcut = sr
	}
	return ki.shortcut
}

func (a *Aggregator) resolve(s store.Sample) *keyInfo {
	if ki := a.byText[s.Key.Text]; ki != nil {
		return ki
	}
	k := s.Key
	f := a.families[k.Family]
	if f == nil {
		f = &family{
			Family: Family{Name: k.Family, Type: s.Shard.Kind, Help: k.Help, Mode: s.Shard.Mode},
			series: map[string]*series{},
			hists:  map[string]*hist{},
			groups: map[string]*pidGroup{},
		}
		a.families[k.Family] = f
	}
	labels := append([]store.Label(nil), k.Labels...)
	sortLabels(labels)
	ki := &keyInfo{key: k, fam: f, labels: labels, id: k.Name + "\xff" + labelID(labels)}
	if f.Type == store.KindHistogram {
		for i, l := range labels {
			if l.Name != "le" {
				continue
			}
			le, err := store.ParsePyFloat(l.Value)
			if err != nil {
				// Python's float() would raise here and fail the whole
				// scrape; keep the sample as a plain series instead.
				break
			}
			without := append(append([]store.Label(nil), labels[:i]...), labels[i+1:]...)
			hid := labelID(without)
			h := f.hists[hid]
			if h == nil {
				h = &hist{labels: without, buckets: map[float64]*float64{}}
				f.hists[hid] = h
			}
			cell := h.buckets[le]
			if cell == nil {
				cell = new(float64)
				h.buckets[le] = cell
			}
			ki.bucket = cell
			break
		}
	}
	a.byText[k.Text] = ki
	return ki
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

func labelID(ls []store.Label) string {
	var b strings.Builder
	for _, l := range ls {
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
	out := make([]Family, 0, len(a.families))
	for _, f := range a.families {
		if f.Type == store.KindHistogram {
			f.setCounts()
		}
		fam := f.Family
		items := make([]sortItem, 0, len(f.series)+16*len(f.hists))
		for _, sr := range f.series {
			if sr.set {
				items = append(items, newSortItem(Sample{Name: sr.name, Labels: sr.labels, Value: sr.value}))
			}
		}
		for _, g := range f.groups {
			for _, sr := range g.byPID {
				items = append(items, newSortItem(Sample{Name: sr.name, Labels: sr.labels, Value: sr.value}))
			}
		}
		if f.Type == store.KindHistogram {
			items = f.appendBuckets(items)
		}
		if fam.Type != store.KindGauge {
			fam.Mode = ""
		}
		fam.Samples = sortItems(items)
		out = append(out, fam)
	}
	slices.SortFunc(out, func(a, b Family) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// setCounts sets each histogram's _count to the sum of its buckets, as
// Python does (replacing any _count sample the shards held).
func (f *family) setCounts() {
	countName := f.Name + "_count"
	for hid, h := range f.hists {
		// Sum in ascending le order, as the cumulative buckets do, so
		// _count equals the last bucket to the bit.
		acc := 0.0
		for _, le := range h.sortedLes() {
			acc += *h.buckets[le]
		}
		id := countName + "\xff" + hid
		sr := f.series[id]
		if sr == nil {
			sr = &series{name: countName, labels: h.labels}
			f.series[id] = sr
		}
		sr.value, sr.set = acc, true
	}
}

func (h *hist) sortedLes() []float64 {
	les := make([]float64, 0, len(h.buckets))
	for le := range h.buckets {
		les = append(les, le)
	}
	slices.Sort(les)
	return les
}

// appendBuckets appends each histogram's buckets, cumulative in ascending
// le order as Python makes them.
func (f *family) appendBuckets(items []sortItem) []sortItem {
	name := f.Name + "_bucket"
	for _, h := range f.hists {
		acc := 0.0
		for _, le := range h.sortedLes() {
			acc += *h.buckets[le]
			labels := make([]store.Label, 0, len(h.labels)+1)
			labels = append(labels, h.labels...)
			labels = append(labels, store.Label{Name: "le", Value: store.FloatToGoString(le)})
			sortLabels(labels)
			items = append(items, newSortItem(Sample{Name: name, Labels: labels, Value: acc}))
		}
	}
	return items
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
	for _, l := range s.Labels {
		if l.Name == "le" {
			le, hasLE = l.Value, true
			continue
		}
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
	b = append(b, 0)
	b = append(b, s.Name...)
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
