package testenv

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const baseExpo = "# HELP req_total Requests with \"quotes\", back\\\\slash, new\\nline\n" +
	"# TYPE req_total counter\n" +
	"req_total{path=\"/a\",tag=\"tab\there\"} 5.0\n" +
	"req_total{path=\"/b\",tag=\"cr\rret\u2028ls\"} 1e+308\n" +
	"# HELP temp Temperature.\n" +
	"# TYPE temp gauge\n" +
	"temp{pid=\"4100\"} NaN\n" +
	"temp{pid=\"4101\"} +Inf\n" +
	"temp{esc=\"q\\\"b\\\\n\\n\"} -0.0\n" +
	"# HELP lat Latency.\n" +
	"# TYPE lat histogram\n" +
	"lat_bucket{le=\"1.0\"} 3.0\n" +
	"lat_bucket{le=\"+Inf\"} 4.0\n" +
	"lat_count 4.0\n" +
	"lat_sum 12.5\n"

func mustParse(t *testing.T, s string) *Exposition {
	t.Helper()
	e, err := ParseExposition([]byte(s))
	if err != nil {
		t.Fatalf("ParseExposition: %v", err)
	}
	return e
}

func TestParseExposition(t *testing.T) {
	e := mustParse(t, baseExpo)
	if len(e.Families) != 3 {
		t.Fatalf("got %d families, want 3", len(e.Families))
	}
	req := e.Families[0]
	if req.Name != "req_total" || req.Type != "counter" || req.Help != "Requests with \"quotes\", back\\slash, new\nline" {
		t.Errorf("family 0 = %q %q %q", req.Name, req.Type, req.Help)
	}
	if got := req.Samples[0].Labels[1].Value; got != "tab\there" {
		t.Errorf("raw tab value = %q", got)
	}
	if got := req.Samples[1].Labels[1].Value; got != "cr\rret\u2028ls" {
		t.Errorf("raw CR value = %q", got)
	}
	temp := e.Families[1].Samples
	if !math.IsNaN(temp[0].Value) || !math.IsInf(temp[1].Value, 1) {
		t.Errorf("special values = %v %v", temp[0].Value, temp[1].Value)
	}
	if got := temp[2].Labels[0].Value; got != "q\"b\\n\n" {
		t.Errorf("escaped value = %q", got)
	}
	if got := temp[2].Key(); got != `temp{esc="q\"b\\n\n"}` {
		t.Errorf("Key = %s", got)
	}
	if n := len(e.Families[2].Samples); n != 4 {
		t.Errorf("histogram samples = %d", n)
	}
}

func TestParseExpositionQuotedNames(t *testing.T) {
	e := mustParse(t, "# HELP \"my.metric\" H\n# TYPE \"my.metric\" gauge\n{\"my.metric\",\"la.bel\"=\"v\"} 1\n{\"my.metric\"} 2 1700000000000\n# EOF\nignored garbage {\n")
	f := e.Families[0]
	if f.Name != "my.metric" || len(f.Samples) != 2 || f.Samples[0].Labels[0].Name != "la.bel" || f.Samples[1].Timestamp != "1700000000000" {
		t.Errorf("parsed %+v", f)
	}
}

func TestParseExpositionErrors(t *testing.T) {
	for _, in := range []string{
		"x{a=\"b} 1\n",
		"x{a=\"\\t\"} 1\n",
		"x{a=b} 1\n",
		"x 1 2 3\n",
		"x notanumber\n",
		"x{a=\"1\",a=\"2\"} 1\n",
		"# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\n# TYPE x gauge\n",
		"# HELP x a\n# HELP x b\n",
		"x{a=\"1\"}1\n",
	} {
		if _, err := ParseExposition([]byte(in)); err == nil {
			t.Errorf("ParseExposition(%q) succeeded, want an error", in)
		} else if !strings.Contains(err.Error(), "line ") {
			t.Errorf("error %q does not name the line", err)
		}
	}
}

func TestValuesEqual(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, c := range []struct {
		a, b float64
		eq   bool
	}{
		{5, 5.0, true}, {nan, nan, true}, {inf, inf, true}, {-inf, -inf, true},
		{inf, -inf, false}, {nan, 0, false}, {inf, math.MaxFloat64, false},
		{1, 1 + 1e-12, true}, {1, 1 + 1e-6, false}, {0, 1e-300, false}, {0, math.Copysign(0, -1), true},
		{1e308, 1e308 * (1 + 1e-10), true},
	} {
		if got := ValuesEqual(c.a, c.b); got != c.eq {
			t.Errorf("ValuesEqual(%v, %v) = %v, want %v", c.a, c.b, got, c.eq)
		}
	}
}

func TestDiffExpositions(t *testing.T) {
	// Reordered, 5 -> 5.0 style changes and tiny float noise are equal.
	same := "# HELP temp Temperature.\n# TYPE temp gauge\n" +
		"temp{esc=\"q\\\"b\\\\n\\n\"} 0\n" +
		"temp{pid=\"4101\"} +Inf\n" +
		"temp{pid=\"4100\"} NaN\n" +
		"# HELP lat Latency.\n# TYPE lat histogram\n" +
		"lat_sum 12.500000000001\nlat_count 4\nlat_bucket{le=\"+Inf\"} 4\nlat_bucket{le=\"1.0\"} 3\n" +
		"# HELP req_total Requests with \"quotes\", back\\\\slash, new\\nline\n# TYPE req_total counter\n" +
		"req_total{tag=\"cr\rret\u2028ls\",path=\"/b\"} 1e308\n" +
		"req_total{path=\"/a\",tag=\"tab\there\"} 5\n"
	if d := DiffExpositions(mustParse(t, same), mustParse(t, baseExpo)); !d.Empty() {
		t.Errorf("equal expositions differ:\n%s", d)
	}

	for _, c := range []struct {
		name, old, new string
		want           func(*ExpositionDiff) []string
	}{
		{"changed value", "lat_sum 12.5", "lat_sum 12.6", func(d *ExpositionDiff) []string { return d.ChangedSamples }},
		{"NaN vs number", "temp{pid=\"4100\"} NaN", "temp{pid=\"4100\"} 0", func(d *ExpositionDiff) []string { return d.ChangedSamples }},
		{"missing sample", "lat_count 4.0\n", "", func(d *ExpositionDiff) []string { return d.MissingSamples }},
		{"label string", "le=\"1.0\"", "le=\"1\"", func(d *ExpositionDiff) []string { return d.MissingSamples }},
		{"label raw tab", "tab\there", "tab here", func(d *ExpositionDiff) []string { return d.ExtraSamples }},
		{"help", "# HELP temp Temperature.", "# HELP temp Temperature", func(d *ExpositionDiff) []string { return d.ChangedFamilies }},
		{"type", "# TYPE temp gauge", "# TYPE temp untyped", func(d *ExpositionDiff) []string { return d.ChangedFamilies }},
		{"family name", "req_total", "req", func(d *ExpositionDiff) []string { return d.MissingFamilies }},
		{"duplicate", "lat_count 4.0\n", "lat_count 4.0\nlat_count 4.0\n", func(d *ExpositionDiff) []string { return d.Duplicates }},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := strings.ReplaceAll(baseExpo, c.old, c.new)
			if got == baseExpo {
				t.Fatalf("test case did not change the input")
			}
			d := DiffExpositions(mustParse(t, got), mustParse(t, baseExpo))
			if len(c.want(d)) == 0 {
				t.Errorf("difference not detected; diff:\n%s", d)
			}
		})
	}
}

// recorder is a testing.TB that records Errorf instead of failing.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestCompareExposition(t *testing.T) {
	r := &recorder{TB: t}
	CompareExposition(r, []byte(baseExpo), []byte(baseExpo))
	if len(r.errors) != 0 {
		t.Errorf("equal input reported: %v", r.errors)
	}
	var many strings.Builder
	for i := range 30 {
		fmt.Fprintf(&many, "x{i=\"%d\"} 1\n", i)
	}
	CompareExposition(r, []byte("# TYPE x gauge\n"), []byte("# TYPE x gauge\n"+many.String()))
	if len(r.errors) != 1 || !strings.Contains(r.errors[0], "missing samples (30)") || !strings.Contains(r.errors[0], "and 10 more") {
		t.Errorf("report = %q", r.errors)
	}
}

// TestCompareFixtures checks the parser on what Python really wrote: each
// fixture's expected.prom parses and equals itself, and the Redis store's
// reference collector output differs from the file-store semantics.
func TestCompareFixtures(t *testing.T) {
	dir := FixturesDir(t)
	for _, name := range []string{"python-0.25-files", "python-0.16-files", "gpe-0.2.4-redis"} {
		data, err := os.ReadFile(filepath.Join(dir, name, "expected.prom"))
		if err != nil {
			t.Fatal(err)
		}
		e, err := ParseExposition(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(e.Families) < 10 {
			t.Errorf("%s: only %d families", name, len(e.Families))
		}
		CompareExposition(t, data, data)
	}
	ref, err := os.ReadFile(filepath.Join(dir, "gpe-0.2.4-redis", "reference-collector.prom"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(dir, "gpe-0.2.4-redis", "expected.prom"))
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{TB: t}
	CompareExposition(r, ref, want)
	if len(r.errors) == 0 || !strings.Contains(r.errors[0], "extra families (7):\n  oracle_gauge_") {
		t.Errorf("reference collector's divergence not reported: %q", r.errors)
	}
}

func TestPython(t *testing.T) {
	py := Python(t)
	if py != Python(t) {
		t.Error("Python answer not cached")
	}
	out := RunPython(t, context.Background(), "import sys, prometheus_client, os; print(sys.argv[1], os.environ['PROMSTORE_X'])", []string{"PROMSTORE_X=y"}, "arg")
	if string(out) != "arg y\n" {
		t.Errorf("RunPython output %q", out)
	}
}
