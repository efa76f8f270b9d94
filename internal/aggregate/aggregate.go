// Package aggregate merges the per-process samples of a store into metric
// families exactly as prometheus_client's MultiProcessCollector does.
package aggregate

import (
	"math"
	"sort"
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
	// Samples are sorted by name, then labels.
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
	keys     map[*store.Key]*keyInfo
	byText   map[string]*keyInfo
}

type family struct {
	Family
	series map[string]*series // by series id
	hists  map[string]*hist   // by label id without le
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
	buckets map[float64]float64
}

// keyInfo caches what a key text means for aggregation.
type keyInfo struct {
	fam      *family
	id       string        // series id without pid
	labels   []store.Label // sorted
	bucket   *hist         // histogram _bucket samples
	le       float64       // bucket bound
	leText   string
	shortcut *series // resolved series for non-pid aggregations
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
	ki := a.keys[s.Key]
	if ki == nil {
		ki = a.resolve(s)
		a.keys[s.Key] = ki
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
		case "mostrecent", "livemostrecent":
			sr := a.shortcut(ki)
			if sr.ts < s.Timestamp {
				sr.value, sr.ts, sr.set = s.Value, s.Timestamp, true
			}
		default: // all, liveall: one sample per process
			id := ki.id + "\xffpid\xfe" + s.Shard.PID
			sr := f.series[id]
			if sr == nil {
				labels := make([]store.Label, 0, len(ki.labels)+1)
				labels = append(labels, ki.labels...)
				labels = append(labels, store.Label{Name: "pid", Value: s.Shard.PID})
				sortLabels(labels)
				sr = &series{name: s.Key.Name, labels: labels}
				f.series[id] = sr
			}
			sr.value, sr.set = s.Value, true
		}
	case store.KindHistogram:
		if ki.bucket != nil {
			ki.bucket.buckets[ki.le] += s.Value
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
		}
		a.families[k.Family] = f
	}
	labels := append([]store.Label(nil), k.Labels...)
	sortLabels(labels)
	ki := &keyInfo{fam: f, labels: labels, id: k.Name + "\xff" + labelID(labels)}
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
				h = &hist{labels: without, buckets: map[float64]float64{}}
				f.hists[hid] = h
			}
			ki.bucket, ki.le = h, le
			break
		}
	}
	a.byText[k.Text] = ki
	return ki
}

func sortLabels(ls []store.Label) {
	if !sort.SliceIsSorted(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name }) {
		sort.SliceStable(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
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
// samples sorted by name then labels.
func (a *Aggregator) Families() []Family {
	out := make([]Family, 0, len(a.families))
	for _, f := range a.families {
		fam := f.Family
		fam.Samples = make([]Sample, 0, len(f.series))
		for _, sr := range f.series {
			if !sr.set {
				continue
			}
			fam.Samples = append(fam.Samples, Sample{Name: sr.name, Labels: sr.labels, Value: sr.value})
		}
		if f.Type == store.KindHistogram {
			fam.Samples = appendBuckets(fam.Samples, f)
		}
		if fam.Type != store.KindGauge {
			fam.Mode = ""
		}
		SortSamples(fam.Samples)
		out = append(out, fam)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// appendBuckets makes each histogram's buckets cumulative in ascending le
// order and sets _count to the last cumulative value, as Python does.
func appendBuckets(samples []Sample, f *family) []Sample {
	for _, h := range f.hists {
		les := make([]float64, 0, len(h.buckets))
		for le := range h.buckets {
			les = append(les, le)
		}
		sort.Float64s(les)
		acc := 0.0
		for _, le := range les {
			acc += h.buckets[le]
			labels := make([]store.Label, 0, len(h.labels)+1)
			labels = append(labels, h.labels...)
			labels = append(labels, store.Label{Name: "le", Value: store.FloatToGoString(le)})
			sortLabels(labels)
			samples = append(samples, Sample{Name: f.Name + "_bucket", Labels: labels, Value: acc})
		}
		countName := f.Name + "_count"
		replaced := false
		for i := range samples {
			if samples[i].Name == countName && sameLabels(samples[i].Labels, h.labels) {
				samples[i].Value = acc
				replaced = true
				break
			}
		}
		if !replaced {
			samples = append(samples, Sample{Name: countName, Labels: h.labels, Value: acc})
		}
	}
	return samples
}

func sameLabels(a, b []store.Label) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// SortSamples sorts samples by name, then by labels pairwise: label names
// as strings, values numerically where both are numbers (le, pid), else as
// strings.
func SortSamples(ss []Sample) {
	sort.SliceStable(ss, func(i, j int) bool { return lessSample(&ss[i], &ss[j]) })
}

func lessSample(a, b *Sample) bool {
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	n := min(len(a.Labels), len(b.Labels))
	for i := 0; i < n; i++ {
		x, y := a.Labels[i], b.Labels[i]
		if x.Name != y.Name {
			return x.Name < y.Name
		}
		if x.Value != y.Value {
			return lessValue(x.Value, y.Value)
		}
	}
	return len(a.Labels) < len(b.Labels)
}

func lessValue(x, y string) bool {
	fx, errx := strconv.ParseFloat(x, 64)
	fy, erry := strconv.ParseFloat(y, 64)
	if errx == nil && erry == nil && fx != fy && !math.IsNaN(fx) && !math.IsNaN(fy) {
		return fx < fy
	}
	return x < y
}
