// Package compare puts the aggregated output of a store and a saved
// exposition (text or OpenMetrics) into one form and compares two of them
// semantically: families, types, help, series by name and exact label
// strings, and values within a tolerance. It is what `promstore diff`
// prints, and how a cleanup or a migration is shown to have changed nothing.
package compare

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/render"
	"github.com/promstore/promstore/internal/store"
)

// Series is one sample line of an exposition.
type Series struct {
	// Name is the sample name ("requests_total", "latency_bucket").
	Name string
	// Labels as the source holds them.
	Labels []store.Label
	Value  float64
}

// Family is one metric family of an Exposition.
type Family struct {
	// Name is the family name without a counter's "_total".
	Name string
	// Type is counter, gauge, histogram, summary or untyped.
	Type string
	// Help is the unescaped help text.
	Help   string
	Series []Series
}

// Exposition is the aggregated output of one source.
type Exposition struct {
	// Source names where it came from, for humans.
	Source string
	// Families in any order.
	Families []Family
	// ExactBounds is true when the le and quantile labels have the spelling
	// the source gave them; when false, a comparison with this source
	// compares them as numbers.
	ExactBounds bool
}

// FromFamilies turns the aggregator's families into an Exposition.
func FromFamilies(source string, fams []aggregate.Family) *Exposition {
	e := &Exposition{Source: source, ExactBounds: true, Families: make([]Family, len(fams))}
	for i := range fams {
		f := &fams[i]
		out := Family{Name: f.Name, Type: string(f.Type), Help: f.Help, Series: make([]Series, len(f.Samples))}
		for j, s := range f.Samples {
			out.Series[j] = Series{Name: s.Name, Labels: s.Labels, Value: s.Value}
		}
		e.Families[i] = out
	}
	return e
}

// Format says how a saved exposition is written.
type Format string

// The formats Parse reads.
const (
	FormatText        Format = "text"
	FormatOpenMetrics Format = "openmetrics"
)

// DetectFormat guesses the format of a saved exposition: OpenMetrics when
// its last non-empty line is "# EOF", text otherwise.
func DetectFormat(data []byte) Format {
	s := strings.TrimRight(string(data), "\n\r\t ")
	if s == "# EOF" || strings.HasSuffix(s, "\n# EOF") {
		return FormatOpenMetrics
	}
	return FormatText
}

// Parse reads a saved exposition: OpenMetrics with parseOpenMetrics,
// text with expfmt's parser. Names may be any
// UTF-8 (as quoted names in allow-utf-8 output). expfmt turns le and
// quantile labels into numbers; Parse gives them back the spelling the
// text used (le="1.0" stays "1.0", le="1e+010" stays "1e+010", which
// Prometheus stores as other series than "1" and "1e+10"), so that they
// compare exactly. Only when one text spells one bound in two ways does
// the Exposition lose ExactBounds.
func Parse(source string, data []byte, format Format) (*Exposition, error) {
	var f expfmt.Format
	switch format {
	case FormatText:
		f = expfmt.NewFormat(expfmt.TypeTextPlain)
	case FormatOpenMetrics:
		return parseOpenMetrics(source, data)
	default:
		return nil, fmt.Errorf("%s: unknown exposition format %q", source, format)
	}
	dec := expfmt.NewDecoder(bytes.NewReader(data), f.WithEscapingScheme(model.NoEscaping))
	sp := boundSpellings(data)
	e := &Exposition{Source: source, ExactBounds: sp.exact}
	for {
		var mf dto.MetricFamily
		err := dec.Decode(&mf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: parse %s exposition: %w", source, format, err)
		}
		e.Families = append(e.Families, sp.fromProto(&mf))
	}
	return e, nil
}

// boundRE finds le and quantile labels of a text exposition. Inside a
// label value a quote is escaped, so `le="` cannot match there; bounds
// are numbers and hold no escapes.
var boundRE = regexp.MustCompile(`[{,]\s*(le|quantile)="([^"\\]*)"`)

type spellings struct {
	le, quantile map[float64]string
	exact        bool
}

func boundSpellings(data []byte) *spellings {
	sp := &spellings{le: map[float64]string{}, quantile: map[float64]string{}, exact: true}
	for _, m := range boundRE.FindAllSubmatch(data, -1) {
		v, err := strconv.ParseFloat(string(m[2]), 64)
		if err != nil {
			continue
		}
		set := sp.le
		if string(m[1]) == "quantile" {
			set = sp.quantile
		}
		if old, ok := set[v]; ok && old != string(m[2]) {
			sp.exact = false
		}
		set[v] = string(m[2])
	}
	return sp
}

// spell gives a bound the text's spelling, or the canonical one.
func (sp *spellings) spell(set map[float64]string, v float64) string {
	if s, ok := set[v]; ok && sp.exact {
		return s
	}
	return formatBound(v)
}

func labelsOf(m *dto.Metric, extra ...store.Label) []store.Label {
	ls := make([]store.Label, 0, len(m.Label)+len(extra))
	for _, p := range m.Label {
		ls = append(ls, store.Label{Name: p.GetName(), Value: p.GetValue()})
	}
	return append(ls, extra...)
}

func (sp *spellings) fromProto(mf *dto.MetricFamily) Family {
	name := mf.GetName()
	f := Family{Name: name, Help: mf.GetHelp()}
	add := func(n string, ls []store.Label, v float64) {
		f.Series = append(f.Series, Series{Name: n, Labels: ls, Value: v})
	}
	switch mf.GetType() {
	case dto.MetricType_COUNTER:
		f.Type = "counter"
		f.Name = strings.TrimSuffix(name, "_total")
		for _, m := range mf.Metric {
			add(name, labelsOf(m), m.GetCounter().GetValue())
		}
	case dto.MetricType_GAUGE:
		f.Type = "gauge"
		for _, m := range mf.Metric {
			add(name, labelsOf(m), m.GetGauge().GetValue())
		}
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		f.Type = "histogram"
		for _, m := range mf.Metric {
			h := m.GetHistogram()
			for _, b := range h.Bucket {
				v := float64(b.GetCumulativeCount())
				if b.CumulativeCountFloat != nil {
					v = b.GetCumulativeCountFloat()
				}
				add(name+"_bucket", labelsOf(m, store.Label{Name: "le", Value: sp.spell(sp.le, b.GetUpperBound())}), v)
			}
			count := float64(h.GetSampleCount())
			if h.SampleCountFloat != nil {
				count = h.GetSampleCountFloat()
			}
			add(name+"_count", labelsOf(m), count)
			add(name+"_sum", labelsOf(m), h.GetSampleSum())
		}
	case dto.MetricType_SUMMARY:
		f.Type = "summary"
		for _, m := range mf.Metric {
			s := m.GetSummary()
			for _, q := range s.Quantile {
				add(name, labelsOf(m, store.Label{Name: "quantile", Value: sp.spell(sp.quantile, q.GetQuantile())}), q.GetValue())
			}
			add(name+"_count", labelsOf(m), float64(s.GetSampleCount()))
			add(name+"_sum", labelsOf(m), s.GetSampleSum())
		}
	default:
		f.Type = "untyped"
		for _, m := range mf.Metric {
			add(name, labelsOf(m), m.GetUntyped().GetValue())
		}
	}
	return f
}

// formatBound spells a bucket bound or quantile as a number, the same for
// every spelling of it ("1", "1.0", "1e0").
func formatBound(v float64) string {
	if s, ok := render.SpecialValue(v); ok {
		return s
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// Options set how values are compared.
type Options struct {
	// Tolerance is the relative difference two values may have and still
	// be equal: |a-b| <= Tolerance * max(|a|, |b|).
	Tolerance float64
	// AbsTolerance is the absolute difference two values may have.
	AbsTolerance float64
	// Counters reports only counter, histogram and summary series whose
	// value is lower in B than in A (what Prometheus takes for a reset),
	// instead of every difference.
	Counters bool
}

// Equal reports whether a and b are equal under o: exactly equal, both
// NaN, or within a tolerance.
func (o Options) Equal(a, b float64) bool {
	if a == b || (math.IsNaN(a) && math.IsNaN(b)) {
		return true
	}
	if math.IsNaN(a) || math.IsNaN(b) || math.IsInf(a, 0) || math.IsInf(b, 0) {
		return false
	}
	d := math.Abs(a - b)
	return d <= o.AbsTolerance || d <= o.Tolerance*math.Max(math.Abs(a), math.Abs(b))
}

// Change is one series found in both sources with different values.
type Change struct {
	Series string  `json:"series"`
	A      float64 `json:"-"`
	B      float64 `json:"-"`
}

// MarshalJSON spells the values as the text exposition does, so that NaN
// and infinities fit.
func (c Change) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Series string `json:"series"`
		A      string `json:"a"`
		B      string `json:"b"`
	}{c.Series, FormatValue(c.A), FormatValue(c.B)})
}

// FamilyDiff is what differs in one family.
type FamilyDiff struct {
	Name string `json:"family"`
	// TypeA and TypeB are the family's types; empty where the source lacks
	// the family.
	TypeA string `json:"type_a,omitempty"`
	TypeB string `json:"type_b,omitempty"`
	// HelpA and HelpB are set only when the help texts differ.
	HelpA       string `json:"help_a,omitempty"`
	HelpB       string `json:"help_b,omitempty"`
	HelpDiffers bool   `json:"help_differs,omitempty"`
	// OnlyA and OnlyB list series only one source has (in --counters mode,
	// nothing: a series that is gone is not a reset).
	OnlyA []string `json:"only_a,omitempty"`
	OnlyB []string `json:"only_b,omitempty"`
	// Changed lists series whose values differ (in --counters mode, those
	// that went backwards or became NaN).
	Changed []Change `json:"changed,omitempty"`
}

// Report is the outcome of Diff.
type Report struct {
	A string `json:"a"`
	B string `json:"b"`
	// FamiliesA, FamiliesB, SeriesA and SeriesB count what each source holds.
	FamiliesA int `json:"families_a"`
	FamiliesB int `json:"families_b"`
	SeriesA   int `json:"series_a"`
	SeriesB   int `json:"series_b"`
	// Counters is true when the report is of --counters mode.
	Counters bool `json:"counters_mode"`
	// Same is true when nothing differs.
	Same bool `json:"equal"`
	// Diffs lists the families that differ, sorted by name.
	Diffs []FamilyDiff `json:"families"`
}

// Equal reports whether nothing differs.
func (r *Report) Equal() bool { return len(r.Diffs) == 0 }

// WriteJSON writes the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	r.Same = r.Equal()
	if r.Diffs == nil {
		r.Diffs = []FamilyDiff{}
	}
	enc := json.NewEncoder(w)
	return enc.Encode(r)
}

type indexed struct {
	fam    *Family
	series map[string]float64
	order  []string
}

func index(e *Exposition, exact bool) map[string]*indexed {
	out := make(map[string]*indexed, len(e.Families))
	for i := range e.Families {
		f := &e.Families[i]
		ix := out[f.Name]
		if ix == nil {
			ix = &indexed{fam: f, series: make(map[string]float64, len(f.Series))}
			out[f.Name] = ix
		}
		bound := ""
		if !exact {
			switch f.Type {
			case "histogram":
				bound = "le"
			case "summary":
				bound = "quantile"
			}
		}
		for _, s := range f.Series {
			k := SeriesKey(s.Name, s.Labels, bound)
			if _, dup := ix.series[k]; !dup {
				ix.order = append(ix.order, k)
			}
			ix.series[k] = s.Value
		}
	}
	return out
}

// SeriesKey spells a series readably and canonically: its text form
// (render.SampleText) with the labels sorted by name. The label named
// bound, if any, is spelled as a number (see formatBound).
func SeriesKey(name string, labels []store.Label, bound string) string {
	ls := append([]store.Label(nil), labels...)
	sort.SliceStable(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
	for i, l := range ls {
		if bound != "" && l.Name == bound {
			if f, err := strconv.ParseFloat(l.Value, 64); err == nil {
				ls[i].Value = formatBound(f)
			}
		}
	}
	return render.SampleText(name, ls, render.EscapeColumns)
}

func isCumulative(typ string) bool {
	return typ == "counter" || typ == "histogram" || typ == "summary"
}

// Diff compares a and b. Label strings compare exactly, except the le and
// quantile labels when either source is a saved exposition (expfmt keeps
// those as numbers).
func Diff(a, b *Exposition, o Options) *Report {
	exact := a.ExactBounds && b.ExactBounds
	ia, ib := index(a, exact), index(b, exact)
	r := &Report{A: a.Source, B: b.Source, FamiliesA: len(ia), FamiliesB: len(ib), Counters: o.Counters}
	for _, ix := range ia {
		r.SeriesA += len(ix.series)
	}
	for _, ix := range ib {
		r.SeriesB += len(ix.series)
	}
	names := make([]string, 0, len(ia)+len(ib))
	for n := range ia {
		names = append(names, n)
	}
	for n := range ib {
		if ia[n] == nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fa, fb := ia[n], ib[n]
		d := FamilyDiff{Name: n}
		if fa != nil {
			d.TypeA = fa.fam.Type
		}
		if fb != nil {
			d.TypeB = fb.fam.Type
		}
		if o.Counters {
			if fa == nil || fb == nil || !isCumulative(d.TypeA) || !isCumulative(d.TypeB) {
				continue
			}
			for _, k := range fa.order {
				va := fa.series[k]
				vb, ok := fb.series[k]
				// A counter that became NaN is broken too: rate() is
				// NaN from then on.
				if ok && (vb < va && !o.Equal(va, vb) || math.IsNaN(vb) && !math.IsNaN(va)) {
					d.Changed = append(d.Changed, Change{Series: k, A: va, B: vb})
				}
			}
			if len(d.Changed) > 0 {
				sortChanges(d.Changed)
				r.Diffs = append(r.Diffs, d)
			}
			continue
		}
		switch {
		case fa == nil:
			d.OnlyB = fb.order
		case fb == nil:
			d.OnlyA = fa.order
		default:
			if fa.fam.Help != fb.fam.Help {
				d.HelpA, d.HelpB, d.HelpDiffers = fa.fam.Help, fb.fam.Help, true
			}
			for _, k := range fa.order {
				vb, ok := fb.series[k]
				switch {
				case !ok:
					d.OnlyA = append(d.OnlyA, k)
				case !o.Equal(fa.series[k], vb):
					d.Changed = append(d.Changed, Change{Series: k, A: fa.series[k], B: vb})
				}
			}
			for _, k := range fb.order {
				if _, ok := fa.series[k]; !ok {
					d.OnlyB = append(d.OnlyB, k)
				}
			}
		}
		if d.TypeA != d.TypeB || d.HelpDiffers || len(d.OnlyA)+len(d.OnlyB)+len(d.Changed) > 0 {
			sortSeries(d.OnlyA)
			sortSeries(d.OnlyB)
			sortChanges(d.Changed)
			r.Diffs = append(r.Diffs, d)
		}
	}
	return r
}

// sortChanges orders a family's changed series as sortSeries does, in
// every mode alike.
func sortChanges(cs []Change) { sortBySeries(cs, func(c Change) string { return c.Series }) }

// sortSeries orders series keys (SeriesKey) by their text, except that
// the buckets of one series go by their bound as a number (le="0.5"
// before le="10.0" before le="+Inf"), as an exposition lists them; so do
// a summary's quantiles.
func sortSeries(ks []string) { sortBySeries(ks, func(k string) string { return k }) }

// sortBySeries sorts xs by the series key of each (see sortSeries),
// each key taken apart once rather than at every comparison.
func sortBySeries[T any](xs []T, key func(T) string) {
	ks := make([]seriesOrder, len(xs))
	for i, x := range xs {
		ks[i] = orderOf(key(x))
	}
	sort.Sort(bySeries[T]{xs, ks})
}

// seriesOrder is a series key taken apart for sorting: the key without
// its bound (the key when it has none), and the bound as a number.
type seriesOrder struct {
	key, rest string
	bounded   bool // it has an le or quantile label
	num       bool // ... whose value parses
	bound     float64
}

func orderOf(key string) seriesOrder {
	o := seriesOrder{key: key, rest: key}
	if rest, b, ok := cutBound(key); ok {
		o.rest, o.bounded = rest, true
		f, err := strconv.ParseFloat(b, 64)
		o.bound, o.num = f, err == nil
	}
	return o
}

// less orders by the key without its bound, then by the bound as a
// number (NaN last), then by the key.
func (a seriesOrder) less(b seriesOrder) bool {
	switch {
	case a.rest != b.rest:
		return a.rest < b.rest
	case !a.bounded || !b.bounded || !a.num || !b.num:
		return a.key < b.key
	case a.bound != a.bound || b.bound != b.bound: // NaN last
		return a.bound == a.bound && b.bound != b.bound
	case a.bound != b.bound:
		return a.bound < b.bound
	}
	return a.key < b.key
}

type bySeries[T any] struct {
	xs []T
	ks []seriesOrder
}

func (s bySeries[T]) Len() int           { return len(s.xs) }
func (s bySeries[T]) Less(i, j int) bool { return s.ks[i].less(s.ks[j]) }
func (s bySeries[T]) Swap(i, j int) {
	s.xs[i], s.xs[j] = s.xs[j], s.xs[i]
	s.ks[i], s.ks[j] = s.ks[j], s.ks[i]
}

// cutBound returns key without its le or quantile label and that label's
// value; false when it has neither.
func cutBound(key string) (rest, bound string, ok bool) {
	for _, name := range []string{"le", "quantile"} {
		for _, open := range []string{"{", ","} {
			i := strings.Index(key, open+name+`="`)
			if i < 0 {
				continue
			}
			start := i + len(open) + len(name) + 2
			end := strings.IndexByte(key[start:], '"') // bounds hold no quote
			if end < 0 {
				return "", "", false
			}
			return key[:i+len(open)] + key[start+end+1:], key[start : start+end], true
		}
	}
	return "", "", false
}

// FormatValue spells a value as the text exposition does.
func FormatValue(v float64) string {
	if s, ok := render.SpecialValue(v); ok {
		return s
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// WriteText writes the report for humans, grouped by family: "-" lines are
// only in A, "+" lines only in B, "~" lines changed. max > 0 bounds the
// lines listed per family. It ends with a one-line summary.
func (r *Report) WriteText(w io.Writer, max int) error {
	var b strings.Builder
	list := func(sign string, items []string) {
		for i, s := range items {
			if max > 0 && i == max {
				fmt.Fprintf(&b, "  %s ... %d more\n", sign, len(items)-max)
				break
			}
			fmt.Fprintf(&b, "  %s %s\n", sign, s)
		}
	}
	series := 0
	for _, d := range r.Diffs {
		typ := d.TypeA
		switch {
		case d.TypeA == "":
			typ = d.TypeB + ", only in B"
		case d.TypeB == "":
			typ += ", only in A"
		case d.TypeA != d.TypeB:
			typ = "type " + d.TypeA + " in A, " + d.TypeB + " in B"
		}
		fmt.Fprintf(&b, "%s (%s)\n", d.Name, typ)
		if d.HelpDiffers {
			fmt.Fprintf(&b, "  help A: %q\n  help B: %q\n", d.HelpA, d.HelpB)
		}
		list("-", d.OnlyA)
		list("+", d.OnlyB)
		for i, c := range d.Changed {
			if max > 0 && i == max {
				fmt.Fprintf(&b, "  ~ ... %d more\n", len(d.Changed)-max)
				break
			}
			fmt.Fprintf(&b, "  ~ %s %s -> %s\n", c.Series, FormatValue(c.A), FormatValue(c.B))
		}
		series += len(d.OnlyA) + len(d.OnlyB) + len(d.Changed)
	}
	switch {
	case r.Counters && r.Equal():
		fmt.Fprintf(&b, "no counter, histogram or summary series went backwards or became NaN from A (%s) to B (%s)\n", r.A, r.B)
	case r.Counters:
		fmt.Fprintf(&b, "%d series in %d families went backwards or became NaN from A (%s) to B (%s)\n", series, len(r.Diffs), r.A, r.B)
	case r.Equal():
		fmt.Fprintf(&b, "equal: %d families, %d series in A (%s) and B (%s)\n", r.FamiliesA, r.SeriesA, r.A, r.B)
	default:
		fmt.Fprintf(&b, "different: %d of %d/%d families, %d series differ between A (%s) and B (%s)\n",
			len(r.Diffs), r.FamiliesA, r.FamiliesB, series, r.A, r.B)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
