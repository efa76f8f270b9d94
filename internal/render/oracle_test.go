package render

// The test oracle: ToProto converts families to client_model structures
// independently of Exposition, and the round-trip tests compare what
// expfmt decodes from our text and OpenMetrics bytes with it. serve no
// longer serves protobuf, so none of this is in the binary.

import (
	"bufio"
	"fmt"
	"io"
	"math"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/store"
)

// OpenMetricsFormat is the format OpenMetrics writes: OpenMetrics 1.0.0
// with non-legacy metric and label names escaped with underscores, which
// is what Python's OpenMetrics exposition does by default.
var OpenMetricsFormat = expfmt.FmtOpenMetrics_1_0_0.WithEscapingScheme(model.UnderscoreEscaping)

// OpenMetrics writes fams as OpenMetrics 1.0.0 text byte for byte as the
// newest prometheus_client's openmetrics.generate_latest does (see
// Exposition), ending with "# EOF". Names outside the legacy character set
// are escaped with underscores.
func OpenMetrics(w io.Writer, fams []aggregate.Family) error {
	return Exposition{OpenMetrics: true, Escaping: model.UnderscoreEscaping, Client: pyclient.Latest}.Write(w, fams)
}

// Encode writes fams in format, as negotiated with expfmt: the Prometheus
// text and OpenMetrics formats go through Exposition (Python's bytes,
// newest release) with the format's escaping scheme; the protobuf formats
// go through the expfmt encoder on ToProto, which applies the format's
// escaping scheme.
func Encode(w io.Writer, format expfmt.Format, fams []aggregate.Family) error {
	switch format.FormatType() {
	case expfmt.TypeTextPlain:
		return Exposition{Escaping: format.ToEscapingScheme(), Client: pyclient.Latest}.Write(w, fams)
	case expfmt.TypeOpenMetrics:
		return Exposition{OpenMetrics: true, Escaping: format.ToEscapingScheme(), Client: pyclient.Latest}.Write(w, fams)
	case expfmt.TypeProtoDelim, expfmt.TypeProtoText, expfmt.TypeProtoCompact:
	default:
		return fmt.Errorf("encode: unsupported format %q", format)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := expfmt.NewEncoder(bw, format)
	for _, mf := range ToProto(fams) {
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("encode family %s: %w", mf.GetName(), err)
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		if err := c.Close(); err != nil {
			return fmt.Errorf("encode: finish: %w", err)
		}
	}
	return bw.Flush()
}

// ToProto converts fams to client_model metric families, in order:
// counters (named <family>_total), gauges, histograms (cumulative buckets
// from the _bucket samples' le, _count and _sum) and summaries (_sum and
// _count, no quantiles). A family whose samples do not fit its type's
// shape (a sample name the type does not have, a bucket bound that is not
// a number, a count that is not a whole non-negative number, a histogram
// without _sum) is not dropped or guessed at: it becomes one untyped
// family per sample name holding its samples unchanged.
func ToProto(fams []aggregate.Family) []*dto.MetricFamily {
	out := make([]*dto.MetricFamily, 0, len(fams))
	for i := range fams {
		f := &fams[i]
		var mf *dto.MetricFamily
		switch f.Type {
		case store.KindCounter:
			mf = simpleProto(f, f.Name+"_total", dto.MetricType_COUNTER)
		case store.KindGauge:
			mf = simpleProto(f, f.Name, dto.MetricType_GAUGE)
		case store.KindHistogram:
			mf = histogramProto(f)
		case store.KindSummary:
			mf = summaryProto(f)
		}
		if mf == nil {
			out = append(out, untypedProto(f)...)
			continue
		}
		out = append(out, mf)
	}
	return out
}

func labelPairs(ls []store.Label, skip string) []*dto.LabelPair {
	lp := make([]*dto.LabelPair, 0, len(ls))
	for _, l := range ls {
		if l.Name == skip {
			continue
		}
		lp = append(lp, &dto.LabelPair{Name: proto.String(l.Name), Value: proto.String(l.Value)})
	}
	return lp
}

func simpleProto(f *aggregate.Family, name string, t dto.MetricType) *dto.MetricFamily {
	mf := &dto.MetricFamily{Name: proto.String(name), Help: proto.String(f.Help), Type: t.Enum()}
	for i := range f.Samples {
		s := &f.Samples[i]
		if s.Name != name {
			return nil
		}
		m := &dto.Metric{Label: labelPairs(s.Labels, "")}
		if t == dto.MetricType_COUNTER {
			m.Counter = &dto.Counter{Value: proto.Float64(s.Value)}
		} else {
			m.Gauge = &dto.Gauge{Value: proto.Float64(s.Value)}
		}
		mf.Metric = append(mf.Metric, m)
	}
	return mf
}

// group collects the samples of one label set (without le) of a
// histogram or summary.
type group struct {
	metric  *dto.Metric
	sum     *float64
	count   *float64
	buckets []*dto.Bucket
}

func groups(f *aggregate.Family, bucketed bool) ([]*group, bool) {
	var order []*group
	byID := map[string]*group{}
	for i := range f.Samples {
		s := &f.Samples[i]
		skip := ""
		var suffix string
		switch s.Name {
		case f.Name + "_sum":
			suffix = "_sum"
		case f.Name + "_count":
			suffix = "_count"
		case f.Name + "_bucket":
			if !bucketed {
				return nil, false
			}
			suffix, skip = "_bucket", "le"
		default:
			return nil, false
		}
		id := labelKey(s.Labels, skip)
		g := byID[id]
		if g == nil {
			g = &group{metric: &dto.Metric{Label: labelPairs(s.Labels, skip)}}
			byID[id] = g
			order = append(order, g)
		}
		v := s.Value
		switch suffix {
		case "_sum":
			if g.sum != nil {
				return nil, false
			}
			g.sum = &v
		case "_count":
			if g.count != nil || !wholeCount(v) {
				return nil, false
			}
			g.count = &v
		case "_bucket":
			le, ok := leOf(s.Labels)
			if !ok || !wholeCount(v) {
				return nil, false
			}
			g.buckets = append(g.buckets, &dto.Bucket{UpperBound: proto.Float64(le), CumulativeCount: proto.Uint64(uint64(v))})
		}
	}
	return order, true
}

func leOf(ls []store.Label) (float64, bool) {
	for _, l := range ls {
		if l.Name == "le" {
			le, err := store.ParsePyFloat(l.Value)
			return le, err == nil && !math.IsNaN(le)
		}
	}
	return 0, false
}

func wholeCount(v float64) bool {
	return v >= 0 && v < 1<<63 && v == math.Trunc(v)
}

func labelKey(ls []store.Label, skip string) string {
	n := 0
	for _, l := range ls {
		n += len(l.Name) + len(l.Value) + 2
	}
	b := make([]byte, 0, n)
	for _, l := range ls {
		if l.Name == skip {
			continue
		}
		b = append(b, l.Name...)
		b = append(b, 0xff)
		b = append(b, l.Value...)
		b = append(b, 0xfe)
	}
	return string(b)
}

func histogramProto(f *aggregate.Family) *dto.MetricFamily {
	gs, ok := groups(f, true)
	if !ok {
		return nil
	}
	mf := &dto.MetricFamily{Name: proto.String(f.Name), Help: proto.String(f.Help), Type: dto.MetricType_HISTOGRAM.Enum()}
	for _, g := range gs {
		if g.sum == nil || len(g.buckets) == 0 {
			return nil
		}
		// The aggregator emits buckets in ascending le order already;
		// cumulative counts must not decrease.
		for i := 1; i < len(g.buckets); i++ {
			if g.buckets[i].GetUpperBound() <= g.buckets[i-1].GetUpperBound() ||
				g.buckets[i].GetCumulativeCount() < g.buckets[i-1].GetCumulativeCount() {
				return nil
			}
		}
		last := g.buckets[len(g.buckets)-1]
		count := float64(last.GetCumulativeCount())
		if g.count != nil {
			count = *g.count
		}
		if math.IsInf(last.GetUpperBound(), 1) && uint64(count) != last.GetCumulativeCount() {
			return nil
		}
		g.metric.Histogram = &dto.Histogram{
			SampleCount: proto.Uint64(uint64(count)),
			SampleSum:   proto.Float64(*g.sum),
			Bucket:      g.buckets,
		}
		mf.Metric = append(mf.Metric, g.metric)
	}
	return mf
}

func summaryProto(f *aggregate.Family) *dto.MetricFamily {
	gs, ok := groups(f, false)
	if !ok {
		return nil
	}
	mf := &dto.MetricFamily{Name: proto.String(f.Name), Help: proto.String(f.Help), Type: dto.MetricType_SUMMARY.Enum()}
	for _, g := range gs {
		if g.sum == nil || g.count == nil {
			return nil
		}
		g.metric.Summary = &dto.Summary{SampleCount: proto.Uint64(uint64(*g.count)), SampleSum: proto.Float64(*g.sum)}
		mf.Metric = append(mf.Metric, g.metric)
	}
	return mf
}

// untypedProto keeps every sample of a family that does not fit its type,
// one untyped family per sample name (samples are sorted by name).
func untypedProto(f *aggregate.Family) []*dto.MetricFamily {
	var out []*dto.MetricFamily
	var cur *dto.MetricFamily
	for i := range f.Samples {
		s := &f.Samples[i]
		if cur == nil || cur.GetName() != s.Name {
			cur = &dto.MetricFamily{Name: proto.String(s.Name), Help: proto.String(f.Help), Type: dto.MetricType_UNTYPED.Enum()}
			out = append(out, cur)
		}
		cur.Metric = append(cur.Metric, &dto.Metric{Label: labelPairs(s.Labels, ""), Untyped: &dto.Untyped{Value: proto.Float64(s.Value)}})
	}
	return out
}
