package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/model"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/testenv"
)

// golden compares got with testdata/name (see testenv.Golden).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testenv.Golden(t, name, got)
}

func ls(kv ...string) []store.Label {
	var out []store.Label
	for i := 0; i < len(kv); i += 2 {
		out = append(out, store.Label{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

// sampleFamilies covers every type, the escaping rules, special values,
// Python's le formatting, an empty family and non-legacy names.
func sampleFamilies() []aggregate.Family {
	return []aggregate.Family{
		{Name: "empty_gauge", Type: store.KindGauge, Help: "", Mode: "all"},
		{Name: "latency_seconds", Type: store.KindHistogram, Help: "Latency.", Samples: []aggregate.Sample{
			{Name: "latency_seconds_bucket", Labels: ls("le", "1e-05", "route", "/"), Value: 0},
			{Name: "latency_seconds_bucket", Labels: ls("le", "0.005", "route", "/"), Value: 1},
			{Name: "latency_seconds_bucket", Labels: ls("le", "1.0", "route", "/"), Value: 3},
			{Name: "latency_seconds_bucket", Labels: ls("le", "1e+06", "route", "/"), Value: 4},
			{Name: "latency_seconds_bucket", Labels: ls("le", "+Inf", "route", "/"), Value: 5},
			{Name: "latency_seconds_count", Labels: ls("route", "/"), Value: 5},
			{Name: "latency_seconds_sum", Labels: ls("route", "/"), Value: 1000123.25},
		}},
		{Name: "my.dotted", Type: store.KindGauge, Help: "Dotted name.", Mode: "max", Samples: []aggregate.Sample{
			{Name: "my.dotted", Labels: ls("la.bel", "v", "ok", "x"), Value: 1},
		}},
		{Name: "requests", Type: store.KindCounter, Help: "Requests with \"quotes\", back\\slash,\nnewline and \ttab.", Samples: []aggregate.Sample{
			{Name: "requests_total", Labels: nil, Value: 12},
			{Name: "requests_total", Labels: ls("path", "q\"b\\n\nt\tc\rl\u2028é🚀"), Value: 1.5},
		}},
		{Name: "rpc_seconds", Type: store.KindSummary, Help: "RPC.", Samples: []aggregate.Sample{
			{Name: "rpc_seconds_count", Labels: ls("svc", "a"), Value: 3},
			{Name: "rpc_seconds_sum", Labels: ls("svc", "a"), Value: 0.75},
		}},
		{Name: "temperature", Type: store.KindGauge, Help: "Temp.", Mode: "all", Samples: []aggregate.Sample{
			{Name: "temperature", Labels: ls("pid", "4100"), Value: math.NaN()},
			{Name: "temperature", Labels: ls("pid", "4101"), Value: math.Inf(1)},
			{Name: "temperature", Labels: ls("pid", "4102"), Value: math.Inf(-1)},
			{Name: "temperature", Labels: ls("pid", "4103"), Value: math.Copysign(0, -1)},
			{Name: "temperature", Labels: ls("pid", "4104"), Value: 1e308},
			{Name: "temperature", Labels: ls("pid", "4105"), Value: 5e-324},
			{Name: "temperature", Labels: ls("pid", "4106"), Value: 12345678.9},
		}},
	}
}

func TestTextGolden(t *testing.T) {
	var b bytes.Buffer
	if err := Text(&b, sampleFamilies()); err != nil {
		t.Fatal(err)
	}
	golden(t, "families.prom", b.Bytes())
	// Our own parser of Python's format reads it back exactly.
	testenv.CompareExposition(t, b.Bytes(), b.Bytes())
}

func TestJSONGolden(t *testing.T) {
	var b bytes.Buffer
	if err := JSON(&b, sampleFamilies()); err != nil {
		t.Fatal(err)
	}
	golden(t, "families.json", b.Bytes())
	var doc struct {
		Families []struct {
			Name, Type, Help, Mode string
			Samples                []struct {
				Name   string
				Labels map[string]string
				Value  string
			}
		}
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("JSON output does not parse: %v", err)
	}
	fams := sampleFamilies()
	if len(doc.Families) != len(fams) {
		t.Fatalf("got %d families", len(doc.Families))
	}
	for i, f := range fams {
		d := doc.Families[i]
		wantMode := ""
		if f.Type == store.KindGauge {
			wantMode = f.Mode
		}
		if d.Name != f.Name || d.Type != string(f.Type) || d.Help != f.Help || d.Mode != wantMode || len(d.Samples) != len(f.Samples) {
			t.Errorf("family %d = %+v", i, d)
			continue
		}
		for j, s := range f.Samples {
			ds := d.Samples[j]
			if ds.Name != s.Name || ds.Value != store.FloatToGoString(s.Value) || len(ds.Labels) != len(s.Labels) {
				t.Errorf("sample %s %d = %+v", f.Name, j, ds)
			}
			for _, l := range s.Labels {
				if ds.Labels[l.Name] != l.Value {
					t.Errorf("sample %s label %s = %q, want %q", s.Name, l.Name, ds.Labels[l.Name], l.Value)
				}
			}
		}
	}
}

func TestEmpty(t *testing.T) {
	for _, c := range []struct {
		name  string
		write func(*bytes.Buffer) error
		want  string
	}{
		{"text", func(b *bytes.Buffer) error { return Text(b, nil) }, ""},
		{"openmetrics", func(b *bytes.Buffer) error { return OpenMetrics(b, nil) }, "# EOF\n"},
		{"json", func(b *bytes.Buffer) error { return JSON(b, nil) }, "{\"families\":[]}\n"},
		{"text empty family", func(b *bytes.Buffer) error {
			return Text(b, []aggregate.Family{{Name: "c", Type: store.KindCounter, Help: "h"}})
		}, "# HELP c_total h\n# TYPE c_total counter\n"},
		{"openmetrics empty family", func(b *bytes.Buffer) error {
			return OpenMetrics(b, []aggregate.Family{{Name: "c", Type: store.KindCounter, Help: "h"}})
		}, "# HELP c h\n# TYPE c counter\n# EOF\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := c.write(&b); err != nil {
				t.Fatal(err)
			}
			if b.String() != c.want {
				t.Errorf("got %q, want %q", b.String(), c.want)
			}
		})
	}
}

func TestTextLines(t *testing.T) {
	for _, c := range []struct {
		name string
		fam  aggregate.Family
		want string
	}{
		{"counter total naming", aggregate.Family{Name: "req", Type: store.KindCounter, Help: "H", Samples: []aggregate.Sample{{Name: "req_total", Value: 5}}},
			"# HELP req_total H\n# TYPE req_total counter\nreq_total 5.0\n"},
		{"help escapes backslash and newline only", aggregate.Family{Name: "g", Type: store.KindGauge, Help: "a\\b\nc\"d\te\rf"},
			"# HELP g a\\\\b\\nc\"d\te\rf\n# TYPE g gauge\n"},
		{"label value escapes", aggregate.Family{Name: "g", Type: store.KindGauge, Samples: []aggregate.Sample{{Name: "g", Labels: ls("a", "\\\"\n\t\r\u2028", "b", ""), Value: -1}}},
			"# HELP g \n# TYPE g gauge\ng{a=\"\\\\\\\"\\n\t\r\u2028\",b=\"\"} -1.0\n"},
		{"labels in given order", aggregate.Family{Name: "g", Type: store.KindGauge, Samples: []aggregate.Sample{{Name: "g", Labels: ls("z", "1", "a", "2"), Value: 0}}},
			"# HELP g \n# TYPE g gauge\ng{z=\"1\",a=\"2\"} 0.0\n"},
		{"non-legacy names use underscores", aggregate.Family{Name: "1é.x:y", Type: store.KindCounter, Samples: []aggregate.Sample{{Name: "1é.x:y_total", Labels: ls("a:b.🚀", "v"), Value: 1}}},
			"# HELP ___x:y_total \n# TYPE ___x:y_total counter\n___x:y_total{a_b__=\"v\"} 1.0\n"},
		{"created moves to a gauge family", aggregate.Family{Name: "c", Type: store.KindCounter, Help: "h", Samples: []aggregate.Sample{
			{Name: "c_created", Value: 1.7e9}, {Name: "c_total", Value: 2}}},
			"# HELP c_total h\n# TYPE c_total counter\nc_total 2.0\n# HELP c_created h\n# TYPE c_created gauge\nc_created 1.7e+09\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Text(&b, []aggregate.Family{c.fam}); err != nil {
				t.Fatal(err)
			}
			if b.String() != c.want {
				t.Errorf("got\n%q\nwant\n%q", b.String(), c.want)
			}
		})
	}
}

// TestValueFormatting checks that the text writer's integer shortcut
// agrees with store.FloatToGoString, including the le values Python
// writes.
func TestValueFormatting(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want string
	}{
		{0, "0.0"}, {math.Copysign(0, -1), "-0.0"}, {1, "1.0"}, {-1, "-1.0"}, {2.5, "2.5"}, {10, "10.0"},
		{0.005, "0.005"}, {1e-05, "1e-05"}, {999999, "999999.0"}, {1e6, "1e+06"}, {1.5e7, "1.5e+07"},
		{12345678.9, "1.23456789e+07"}, {-1e15, "-1000000000000000.0"}, {-1e16, "-1e+16"},
		{1e21, "1e+21"}, {math.NaN(), "NaN"}, {math.Inf(1), "+Inf"}, {math.Inf(-1), "-Inf"},
		{-123456789, "-123456789.0"}, {5e-324, "5e-324"}, {1e308, "1e+308"},
	} {
		if got := string(appendValue(nil, c.v, pyclient.Latest)); got != c.want {
			t.Errorf("appendValue(%v) = %q, want %q", c.v, got, c.want)
		}
		if got := store.FloatToGoString(c.v); got != c.want {
			t.Errorf("FloatToGoString(%v) = %q, want %q", c.v, got, c.want)
		}
	}
	for v := -2e6; v <= 2e6; v += 997 {
		if got, want := string(appendValue(nil, v, pyclient.Latest)), store.FloatToGoString(v); got != want {
			t.Fatalf("appendValue(%v) = %q, FloatToGoString %q", v, got, want)
		}
	}
	// Fractions around the edges of the positional fast path and random
	// bit patterns over every magnitude.
	edges := []float64{1e-4, math.Nextafter(1e-4, 0), math.Nextafter(1e-4, 1), 0.1, 1.0 / 3, 2.0 / 3, 999999.9999999999,
		math.Nextafter(1e6, 0), 123456.789, 0.30000000000000004, 9.999999999999999e-05}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		edges = append(edges, math.Float64frombits(rng.Uint64()), rng.Float64()*math.Pow(10, float64(rng.IntN(14)-6)))
	}
	for _, v := range edges {
		for _, x := range []float64{v, -v} {
			if got, want := string(appendValue(nil, x, pyclient.Latest)), store.FloatToGoString(x); got != want {
				t.Fatalf("appendValue(%v) = %q, FloatToGoString %q", x, got, want)
			}
		}
	}
}

func TestJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "q\"b\\", "\n\r\t\x00\x1f\x7f", "<&>", "é🚀", "\u2028\u2029", "bad\xffutf8\xc3", "日本"} {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		// encoding/json escapes <, > and & by default; we keep them.
		w := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(want))
		if got := string(appendJSONString(nil, s)); got != w {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, w)
		}
	}
}

// familiesFromExposition rebuilds aggregate families from a parsed Python
// exposition, keeping Python's family and sample order.
func familiesFromExposition(t *testing.T, e *testenv.Exposition) []aggregate.Family {
	t.Helper()
	var fams []aggregate.Family
	for _, f := range e.Families {
		fam := aggregate.Family{Name: f.Name, Type: store.Kind(f.Type), Help: f.Help}
		if fam.Type == store.KindCounter {
			name, ok := strings.CutSuffix(f.Name, "_total")
			if !ok {
				t.Fatalf("counter %s without _total", f.Name)
			}
			fam.Name = name
		}
		for _, s := range f.Samples {
			var labels []store.Label
			for _, l := range s.Labels {
				labels = append(labels, store.Label{Name: l.Name, Value: l.Value})
			}
			fam.Samples = append(fam.Samples, aggregate.Sample{Name: s.Name, Labels: labels, Value: s.Value})
		}
		fams = append(fams, fam)
	}
	return fams
}

// TestTextMatchesPythonFixtures renders the families Python exposed in the
// shared fixtures and checks the output is Python's, byte for byte: with
// the same family and sample order the bytes are identical, so the line
// sets are too.
func TestTextMatchesPythonFixtures(t *testing.T) {
	dir := testenv.FixturesDir(t)
	for _, name := range []string{"python-0.26-files", "python-0.25-files", "python-0.16-files", "gpe-0.2.4-redis"} {
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(dir, name, "expected.prom"))
			if err != nil {
				t.Fatal(err)
			}
			e, err := testenv.ParseExposition(want)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := Text(&got, familiesFromExposition(t, e)); err != nil {
				t.Fatal(err)
			}
			if got.String() == string(want) {
				return
			}
			gl, wl := lineSet(got.String()), lineSet(string(want))
			for l := range wl {
				if !gl[l] {
					t.Errorf("missing line %q", l)
				}
			}
			for l := range gl {
				if !wl[l] {
					t.Errorf("extra line %q", l)
				}
			}
			t.Errorf("output differs from %s/expected.prom", name)
		})
	}
}

func lineSet(s string) map[string]bool {
	m := map[string]bool{}
	for _, l := range strings.SplitAfter(s, "\n") {
		m[l] = true
	}
	return m
}

// TestTextUnitsInOrder: rendered on several cores in units, the text is
// byte for byte what one writer gives, for families larger than a unit,
// with moved _created samples and an empty family among them.
func TestTextUnitsInOrder(t *testing.T) {
	big := aggregate.Family{Name: "req", Type: store.KindCounter, Help: "Requests."}
	for i := range 3*unitSamples + 17 {
		route := store.Label{Name: "route", Value: fmt.Sprintf("/r/%d", i)}
		big.Samples = append(big.Samples, aggregate.Sample{Name: "req_total", Labels: []store.Label{route}, Value: float64(i)})
		if i%3 == 0 {
			big.Samples = append(big.Samples, aggregate.Sample{Name: "req_created", Labels: []store.Label{route}, Value: 1.7e9 + float64(i)})
		}
	}
	fams := []aggregate.Family{
		{Name: "empty", Type: store.KindGauge, Help: "Nothing yet.", Mode: "all"},
		big,
		{Name: "up", Type: store.KindGauge, Help: "Up.", Mode: "max", Samples: []aggregate.Sample{{Name: "up", Value: 1}}},
	}
	units := textUnits(fams, false)
	if len(units) < 6 {
		t.Fatalf("%d units, want the big family cut into several", len(units))
	}
	tw := textWriter{Exposition: Exposition{Escaping: model.UnderscoreEscaping, Client: pyclient.Latest}}
	for _, u := range units {
		tw.unit(u)
	}
	want := bytes.NewBuffer(tw.b)
	var got bytes.Buffer
	if err := writeUnits(&got, units, tw.Exposition); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("parallel text differs from sequential text (%d vs %d bytes)", got.Len(), want.Len())
	}
	lines := strings.Split(want.String(), "\n")
	if lines[0] != "# HELP empty Nothing yet." || lines[2] != "# HELP req_total Requests." {
		t.Errorf("headers out of place: %q", lines[:4])
	}
	if !strings.Contains(want.String(), "# TYPE req_created gauge\nreq_created{route=\"/r/0\"} 1.7e+09\n") {
		t.Error("moved _created samples missing")
	}
	if n := strings.Count(want.String(), "\n"); n != 2+2+len(big.Samples)+2+3 {
		t.Errorf("%d lines", n)
	}
}
