package render

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/testenv"
)

func decodeAll(t *testing.T, data []byte, format expfmt.Format) []*dto.MetricFamily {
	t.Helper()
	dec := expfmt.NewDecoder(bytes.NewReader(data), format)
	var out []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		err := dec.Decode(mf)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("decode %s: %v\n%s", format, err, clipBytes(data))
		}
		out = append(out, mf)
	}
}

func clipBytes(b []byte) []byte {
	if len(b) > 3000 {
		return b[:3000]
	}
	return b
}

// oneGroup keeps, of each family, the samples that share the first
// sample's labels apart from le: one series, or one histogram.
func oneGroup(fams []aggregate.Family) []aggregate.Family {
	out := make([]aggregate.Family, len(fams))
	for i, f := range fams {
		out[i] = f
		out[i].Samples = nil
		if len(f.Samples) == 0 {
			continue
		}
		first := labelKey(f.Samples[0].Labels, "le")
		for _, s := range f.Samples {
			if labelKey(s.Labels, "le") == first {
				out[i].Samples = append(out[i].Samples, s)
			}
		}
	}
	return out
}

// flatten lists every sample of fams as "name{labels} value" lines plus a
// "# family type help" line per family, sorted, for comparison.
func flatten(t *testing.T, fams []*dto.MetricFamily) []string {
	t.Helper()
	var out []string
	for _, mf := range fams {
		if len(mf.Metric) > 0 { // decoders drop families without samples
			out = append(out, "# "+mf.GetName()+" "+mf.GetType().String()+" "+mf.GetHelp())
		}
	}
	vec, err := expfmt.ExtractSamples(&expfmt.DecodeOptions{}, fams...)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range vec {
		v := float64(s.Value)
		if v == 0 {
			v = 0 // OpenMetrics writes -0.0 as 0.0
		}
		out = append(out, s.Metric.String()+" "+store.FloatToGoString(v))
	}
	sort.Strings(out)
	return out
}

func compareFlat(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") == strings.Join(want, "\n") {
		return
	}
	g, w := map[string]bool{}, map[string]bool{}
	for _, s := range got {
		g[s] = true
	}
	for _, s := range want {
		w[s] = true
	}
	n := 0
	for _, s := range want {
		if !g[s] && n < 20 {
			t.Errorf("missing %q", s)
			n++
		}
	}
	for _, s := range got {
		if !w[s] && n < 40 {
			t.Errorf("extra %q", s)
			n++
		}
	}
	if n == 0 {
		t.Errorf("same lines, different multiplicity: got %d want %d", len(got), len(want))
	}
}

// fixtureFamilies are the families Python exposed for the 0.25 file
// store (every type, mode and escaping case of the fixture plan).
func fixtureFamilies(t *testing.T) []aggregate.Family {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.FixturesDir(t), "python-0.25-files", "expected.prom"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := testenv.ParseExposition(data)
	if err != nil {
		t.Fatal(err)
	}
	fams := familiesFromExposition(t, e)
	for i := range fams {
		aggregate.SortSamples(fams[i].Samples)
	}
	return fams
}

// TestEncodeRoundTrip encodes in OpenMetrics and delimited protobuf,
// decodes with expfmt and compares with ToProto; it also checks that
// expfmt's own text parser reads our text output (raw tabs and CRs in
// label values included) as the same samples.
func TestEncodeRoundTrip(t *testing.T) {
	fixture := fixtureFamilies(t)
	sets := map[string][]aggregate.Family{
		"sample":                        sampleFamilies(),
		"python-0.25 fixture":           fixture,
		"python-0.25 fixture one group": oneGroup(fixture),
	}
	for name, fams := range sets {
		t.Run(name, func(t *testing.T) {
			formats := []expfmt.Format{
				expfmt.NewFormat(expfmt.TypeProtoDelim).WithEscapingScheme(model.UnderscoreEscaping),
				expfmt.NewFormat(expfmt.TypeTextPlain),
			}
			// expfmt's OpenMetrics parser takes ~20s on the whole fixture;
			// a trimmed copy keeps every family, type and value shape (and
			// still takes seconds, so -short leaves it out).
			if name == "sample" || name != "python-0.25 fixture" && !testing.Short() {
				formats = append(formats, OpenMetricsFormat)
			}
			for _, format := range formats {
				var b bytes.Buffer
				if err := Encode(&b, format, fams); err != nil {
					t.Fatalf("Encode %s: %v", format, err)
				}
				if format.FormatType() == expfmt.TypeOpenMetrics && !bytes.HasSuffix(b.Bytes(), []byte("\n# EOF\n")) {
					t.Errorf("OpenMetrics output does not end with # EOF")
				}
				got := decodeAll(t, b.Bytes(), format)
				// Escaping renames my.dotted; compare with the escaped names.
				wantEsc := make([]*dto.MetricFamily, 0)
				for _, mf := range ToProto(fams) {
					wantEsc = append(wantEsc, model.EscapeMetricFamily(mf, model.UnderscoreEscaping))
				}
				compareFlat(t, flatten(t, got), flatten(t, wantEsc))
			}
		})
	}
}

func TestOpenMetricsGolden(t *testing.T) {
	var b bytes.Buffer
	if err := OpenMetrics(&b, sampleFamilies()); err != nil {
		t.Fatal(err)
	}
	golden(t, "families.om", b.Bytes())
}

// TestUTF8Names checks the choice for names outside the legacy set:
// underscores by default (as Python), quoted names when the negotiated
// format allows UTF-8, and that expfmt reads the quoted form back.
func TestUTF8Names(t *testing.T) {
	fams := []aggregate.Family{{Name: "my.metric", Type: store.KindCounter, Help: "h", Samples: []aggregate.Sample{
		{Name: "my.metric_total", Labels: ls("la.bel", "v\"x"), Value: 2},
	}}}
	for _, c := range []struct {
		name   string
		format expfmt.Format
		want   string
	}{
		{"text default", expfmt.FmtText, "# HELP my_metric_total h\n# TYPE my_metric_total counter\nmy_metric_total{la_bel=\"v\\\"x\"} 2.0\n"},
		{"text allow-utf-8", expfmt.FmtText.WithEscapingScheme(model.NoEscaping),
			"# HELP \"my.metric_total\" h\n# TYPE \"my.metric_total\" counter\n{\"my.metric_total\",\"la.bel\"=\"v\\\"x\"} 2.0\n"},
		{"text dots", expfmt.FmtText.WithEscapingScheme(model.DotsEscaping),
			"# HELP my_dot_metric__total h\n# TYPE my_dot_metric__total counter\nmy_dot_metric__total{la_dot_bel=\"v\\\"x\"} 2.0\n"},
		{"text values", expfmt.FmtText.WithEscapingScheme(model.ValueEncodingEscaping),
			"# HELP U__my_2e_metric__total h\n# TYPE U__my_2e_metric__total counter\nU__my_2e_metric__total{U__la_2e_bel=\"v\\\"x\"} 2.0\n"},
		{"openmetrics default", OpenMetricsFormat, "# HELP my_metric h\n# TYPE my_metric counter\nmy_metric_total{la_bel=\"v\\\"x\"} 2.0\n# EOF\n"},
		{"openmetrics allow-utf-8", expfmt.FmtOpenMetrics_1_0_0.WithEscapingScheme(model.NoEscaping),
			"# HELP \"my.metric\" h\n# TYPE \"my.metric\" counter\n{\"my.metric_total\",\"la.bel\"=\"v\\\"x\"} 2.0\n# EOF\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Encode(&b, c.format, fams); err != nil {
				t.Fatal(err)
			}
			if b.String() != c.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), c.want)
			}
			if c.format.ToEscapingScheme() == model.NoEscaping {
				got := decodeAll(t, b.Bytes(), c.format)
				if len(got) != 1 || got[0].GetName() != "my.metric_total" || got[0].Metric[0].Label[0].GetName() != "la.bel" {
					t.Errorf("decoded %v", got)
				}
			}
		})
	}
}

func TestEncodeUnknownFormat(t *testing.T) {
	if err := Encode(io.Discard, expfmt.FmtUnknown, nil); err == nil {
		t.Error("Encode accepted an unknown format")
	}
}

func TestToProtoShapes(t *testing.T) {
	fams := ToProto(sampleFamilies())
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range fams {
		byName[mf.GetName()] = mf
	}
	req := byName["requests_total"]
	if req == nil || req.GetType() != dto.MetricType_COUNTER || req.Metric[0].GetCounter().GetValue() != 12 {
		t.Errorf("counter = %v", req)
	}
	h := byName["latency_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 5 || h.GetSampleSum() != 1000123.25 || len(h.Bucket) != 5 {
		t.Fatalf("histogram = %v", h)
	}
	for i, want := range []struct {
		le float64
		n  uint64
	}{{1e-05, 0}, {0.005, 1}, {1, 3}, {1e6, 4}, {math.Inf(1), 5}} {
		if b := h.Bucket[i]; b.GetUpperBound() != want.le || b.GetCumulativeCount() != want.n {
			t.Errorf("bucket %d = %v, want %v", i, b, want)
		}
	}
	if lp := byName["latency_seconds"].GetMetric()[0].GetLabel(); len(lp) != 1 || lp[0].GetName() != "route" {
		t.Errorf("histogram labels = %v (le must not be a label)", lp)
	}
	s := byName["rpc_seconds"].GetMetric()[0].GetSummary()
	if s.GetSampleCount() != 3 || s.GetSampleSum() != 0.75 || len(s.Quantile) != 0 {
		t.Errorf("summary = %v", s)
	}
	if g := byName["temperature"]; g.GetType() != dto.MetricType_GAUGE || len(g.Metric) != 7 {
		t.Errorf("gauge = %v", g)
	}
}

// TestToProtoMisfits checks that a family whose samples do not fit its
// type is kept as untyped families, sample for sample.
func TestToProtoMisfits(t *testing.T) {
	for _, c := range []struct {
		name string
		fam  aggregate.Family
		want []string // untyped family names
	}{
		{"counter sample without _total", aggregate.Family{Name: "c", Type: store.KindCounter, Samples: []aggregate.Sample{{Name: "c", Value: 1}, {Name: "c_total", Value: 2}}}, []string{"c", "c_total"}},
		{"fractional bucket", aggregate.Family{Name: "h", Type: store.KindHistogram, Samples: []aggregate.Sample{
			{Name: "h_bucket", Labels: ls("le", "+Inf"), Value: 1.5}, {Name: "h_count", Value: 1.5}, {Name: "h_sum", Value: 1}}}, []string{"h_bucket", "h_count", "h_sum"}},
		{"bad le", aggregate.Family{Name: "h", Type: store.KindHistogram, Samples: []aggregate.Sample{
			{Name: "h_bucket", Labels: ls("le", "x"), Value: 1}, {Name: "h_count", Value: 1}, {Name: "h_sum", Value: 1}}}, []string{"h_bucket", "h_count", "h_sum"}},
		{"histogram without sum", aggregate.Family{Name: "h", Type: store.KindHistogram, Samples: []aggregate.Sample{
			{Name: "h_bucket", Labels: ls("le", "+Inf"), Value: 1}, {Name: "h_count", Value: 1}}}, []string{"h_bucket", "h_count"}},
		{"summary with quantile", aggregate.Family{Name: "s", Type: store.KindSummary, Samples: []aggregate.Sample{
			{Name: "s", Labels: ls("quantile", "0.5"), Value: 1}, {Name: "s_count", Value: 1}, {Name: "s_sum", Value: 1}}}, []string{"s", "s_count", "s_sum"}},
		{"negative count", aggregate.Family{Name: "s", Type: store.KindSummary, Samples: []aggregate.Sample{
			{Name: "s_count", Value: -1}, {Name: "s_sum", Value: 1}}}, []string{"s_count", "s_sum"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := ToProto([]aggregate.Family{c.fam})
			var names []string
			n := 0
			for _, mf := range got {
				if mf.GetType() != dto.MetricType_UNTYPED {
					t.Errorf("family %s has type %s", mf.GetName(), mf.GetType())
				}
				names = append(names, mf.GetName())
				n += len(mf.Metric)
			}
			if strings.Join(names, ",") != strings.Join(c.want, ",") || n != len(c.fam.Samples) {
				t.Errorf("got families %v with %d samples, want %v with %d", names, n, c.want, len(c.fam.Samples))
			}
			if err := OpenMetrics(io.Discard, []aggregate.Family{c.fam}); err != nil {
				t.Errorf("OpenMetrics: %v", err)
			}
		})
	}
}
