package compare

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

const base = `# HELP requests_total Requests.
# TYPE requests_total counter
requests_total{route="/"} 5.0
requests_total{route="/x"} 2.0
# HELP latency Latency.
# TYPE latency histogram
latency_bucket{le="1.0"} 1.0
latency_bucket{le="+Inf"} 3.0
latency_count 3.0
latency_sum 4.5
# HELP temp Temp.
# TYPE temp gauge
temp{pid="1"} NaN
temp{pid="2"} 1e+06
`

func parseText(t *testing.T, name, text string) *Exposition {
	t.Helper()
	e, err := Parse(name, []byte(text), DetectFormat([]byte(text)))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name string
		b    string
		opts Options
		// want lists lines the text report must hold; nil means equal.
		want []string
	}{
		{name: "same", b: base},
		{name: "label order and value spelling do not matter", b: strings.NewReplacer(`temp{pid="2"} 1e+06`, `temp{pid="2"} 1000000`, `5.0`, `5`).Replace(base)},
		{name: "value changed", b: strings.Replace(base, `route="/"} 5.0`, `route="/"} 6.0`, 1),
			want: []string{"requests (counter)", `~ requests_total{route="/"} 5 -> 6`}},
		{name: "within relative tolerance", b: strings.Replace(base, `route="/"} 5.0`, `route="/"} 5.000000001`, 1), opts: Options{Tolerance: 1e-9}},
		{name: "outside relative tolerance", b: strings.Replace(base, `route="/"} 5.0`, `route="/"} 5.0001`, 1), opts: Options{Tolerance: 1e-9},
			want: []string{`~ requests_total{route="/"} 5 -> 5.0001`}},
		{name: "within absolute tolerance", b: strings.Replace(base, `latency_sum 4.5`, `latency_sum 4.55`, 1), opts: Options{AbsTolerance: 0.1}},
		{name: "NaN against a number", b: strings.Replace(base, `temp{pid="1"} NaN`, `temp{pid="1"} 0`, 1), opts: Options{Tolerance: 1},
			want: []string{`~ temp{pid="1"} NaN -> 0`}},
		{name: "series only in A and only in B", b: strings.Replace(base, `route="/x"`, `route="/y"`, 1),
			want: []string{`- requests_total{route="/x"}`, `+ requests_total{route="/y"}`}},
		{name: "label string exact", b: strings.Replace(base, `le="1.0"`, `le="1"`, 1),
			want: []string{`- latency_bucket{le="1.0"}`, `+ latency_bucket{le="1"}`}},
		{name: "help differs", b: strings.Replace(base, "# HELP temp Temp.", "# HELP temp Temperature.", 1),
			want: []string{"temp (gauge)", `help A: "Temp."`, `help B: "Temperature."`}},
		{name: "type differs", b: strings.Replace(base, "# TYPE temp gauge", "# TYPE temp untyped", 1),
			want: []string{"temp (type gauge in A, untyped in B)"}},
		{name: "family only in A", b: base[:strings.Index(base, "# HELP temp")],
			want: []string{"temp (gauge, only in A)", `- temp{pid="1"}`}},
		{name: "counters: a lowered counter", b: strings.Replace(base, `route="/"} 5.0`, `route="/"} 4.0`, 1), opts: Options{Counters: true},
			want: []string{`~ requests_total{route="/"} 5 -> 4`, "1 series in 1 families went backwards or became NaN"}},
		{name: "counters: a counter that became NaN", b: strings.Replace(base, `route="/"} 5.0`, `route="/"} NaN`, 1), opts: Options{Counters: true},
			want: []string{`~ requests_total{route="/"} 5 -> NaN`, "1 series in 1 families went backwards or became NaN"}},
		{name: "counters: a lowered bucket", b: strings.Replace(base, `le="+Inf"} 3.0`, `le="+Inf"} 2.0`, 1), opts: Options{Counters: true},
			want: []string{`~ latency_bucket{le="+Inf"} 3 -> 2`}},
		{name: "counters: a raised counter, a lowered gauge and a gone series are no reset", opts: Options{Counters: true},
			b: strings.NewReplacer(`route="/"} 5.0`, `route="/"} 9.0`, `1e+06`, `1`, `requests_total{route="/x"} 2.0`+"\n", "").Replace(base)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := parseText(t, "a", base), parseText(t, "b", tt.b)
			r := Diff(a, b, tt.opts)
			var out bytes.Buffer
			if err := r.WriteText(&out, 0); err != nil {
				t.Fatal(err)
			}
			if r.Equal() != (tt.want == nil) {
				t.Fatalf("Equal() = %v, want %v; report:\n%s", r.Equal(), tt.want == nil, out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("report lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestOpenMetricsEqualsText(t *testing.T) {
	om := `# HELP requests Requests.
# TYPE requests counter
requests_total{route="/"} 5.0
requests_total{route="/x"} 2.0
# HELP latency Latency.
# TYPE latency histogram
latency_bucket{le="1.0"} 1.0
latency_bucket{le="+Inf"} 3.0
latency_count 3.0
latency_sum 4.5
# HELP temp Temp.
# TYPE temp gauge
temp{pid="1"} NaN
temp{pid="2"} 1e+06
# EOF
`
	if DetectFormat([]byte(om)) != FormatOpenMetrics || DetectFormat([]byte(base)) != FormatText {
		t.Fatal("format not detected")
	}
	r := Diff(parseText(t, "text", base), parseText(t, "om", om), Options{})
	if !r.Equal() {
		var out bytes.Buffer
		_ = r.WriteText(&out, 0)
		t.Fatalf("OpenMetrics and text of the same families differ:\n%s", out.String())
	}
}

func TestBoundsSpelledTwoWaysCompareAsNumbers(t *testing.T) {
	// A second histogram spelling the bound 1 as "1" where the first says
	// "1.0".
	text := strings.Replace(base, "# HELP temp", `# HELP other Other.
# TYPE other histogram
other_bucket{le="1"} 1.0
other_bucket{le="+Inf"} 1.0
other_count 1.0
other_sum 1.0
# HELP temp`, 1)
	e := parseText(t, "x", text)
	if e.ExactBounds {
		t.Fatal("ExactBounds with le spelled 1.0 and 1")
	}
	r := Diff(parseText(t, "a", base), e, Options{})
	if len(r.Diffs) != 1 || r.Diffs[0].Name != "other" {
		t.Fatalf("diffs = %+v, want only family other", r.Diffs)
	}
}

func TestReportJSON(t *testing.T) {
	b := strings.Replace(base, `temp{pid="2"} 1e+06`, `temp{pid="2"} +Inf`, 1)
	r := Diff(parseText(t, "a", base), parseText(t, "b", b), Options{})
	var out bytes.Buffer
	if err := r.WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Equal    bool `json:"equal"`
		Families []struct {
			Family  string `json:"family"`
			Changed []struct{ Series, A, B string }
		} `json:"families"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if got.Equal || len(got.Families) != 1 || got.Families[0].Changed[0].B != "+Inf" || got.Families[0].Changed[0].A != "1e+06" {
		t.Fatalf("json report = %s", out.String())
	}
}

func TestEqual(t *testing.T) {
	tests := []struct {
		a, b float64
		o    Options
		want bool
	}{
		{1, 1, Options{}, true},
		{math.NaN(), math.NaN(), Options{}, true},
		{math.Inf(1), math.Inf(1), Options{Tolerance: 1}, true},
		{math.Inf(1), math.MaxFloat64, Options{Tolerance: 1}, false},
		{0, math.Copysign(0, -1), Options{}, true},
		{100, 101, Options{Tolerance: 0.01}, true},
		{100, 102, Options{Tolerance: 0.01}, false},
		{100, 102, Options{AbsTolerance: 2}, true},
	}
	for _, tt := range tests {
		if got := tt.o.Equal(tt.a, tt.b); got != tt.want {
			t.Errorf("%+v.Equal(%v, %v) = %v, want %v", tt.o, tt.a, tt.b, got, tt.want)
		}
	}
}

// TestOpenMetricsAsPythonWritesIt: what prometheus_client's OpenMetrics
// writer gives (0.16 here) reads as its text writer's output of the same
// samples: a histogram and a summary that observed negative values (a
// negative _sum) or NaN, a counter incremented by NaN (expfmt's parser
// refused all three), _created samples (gauge families of their own in
// the text), info and stateset families, escapes in help and labels, le
// spelled as written, a quoted UTF-8 name, a timestamp and an exemplar.
func TestOpenMetricsAsPythonWritesIt(t *testing.T) {
	om := `# HELP neg N \"q\" \\ x\ny
# TYPE neg histogram
neg_bucket{le="0.005"} 1.0
neg_bucket{le="1e+010"} 1.0
neg_bucket{le="+Inf"} 1.0
neg_count 1.0
neg_sum -3.0
neg_created 1.7e+09
# HELP negs NS
# TYPE negs summary
negs_count{q="a\\\"b\n"} 2.0
negs_sum{q="a\\\"b\n"} -2.0
negs_count{q="nan"} 1.0
negs_sum{q="nan"} NaN
# HELP c C
# TYPE c counter
c_total NaN
c_created 1.7e+09
# HELP build Build
# TYPE build info
build_info{version="1.0"} 1.0
# HELP state State
# TYPE state stateset
state{state="a"} 0.0
state{state="b"} 1.0
# HELP "my.gauge" G
# TYPE "my.gauge" gauge
{"my.gauge","la.bel"="x"} 5.0 1700000000.5
# TYPE ex counter
ex_total 3.0 # {trace_id="abc"} 1.0 1700000000.0
# EOF
`
	text := `# HELP neg N "q" \\ x\ny
# TYPE neg histogram
neg_bucket{le="0.005"} 1.0
neg_bucket{le="1e+010"} 1.0
neg_bucket{le="+Inf"} 1.0
neg_count 1.0
neg_sum -3.0
# HELP neg_created N "q" \\ x\ny
# TYPE neg_created gauge
neg_created 1.7e+09
# HELP negs NS
# TYPE negs summary
negs_count{q="a\\\"b\n"} 2.0
negs_sum{q="a\\\"b\n"} -2.0
negs_count{q="nan"} 1.0
negs_sum{q="nan"} NaN
# HELP c_total C
# TYPE c_total counter
c_total NaN
# HELP c_created C
# TYPE c_created gauge
c_created 1.7e+09
# HELP build_info Build
# TYPE build_info gauge
build_info{version="1.0"} 1.0
# HELP state State
# TYPE state gauge
state{state="a"} 0.0
state{state="b"} 1.0
# HELP "my.gauge" G
# TYPE "my.gauge" gauge
{"my.gauge","la.bel"="x"} 5.0
# TYPE ex_total counter
ex_total 3.0
`
	a, err := Parse("om", []byte(om), DetectFormat([]byte(om)))
	if err != nil {
		t.Fatal(err)
	}
	r := Diff(a, parseText(t, "text", text), Options{})
	if !r.Equal() || len(a.Families) != 9 {
		var out bytes.Buffer
		_ = r.WriteText(&out, 0)
		t.Fatalf("%d families; OpenMetrics and text of the same samples differ:\n%s", len(a.Families), out.String())
	}
	for _, f := range a.Families {
		if f.Name == "negs" && (f.Series[0].Labels[0].Value != "a\\\"b\n" || f.Help != "NS") {
			t.Errorf("family negs = %+v", f)
		}
		if f.Name == "neg" && f.Help != "N \"q\" \\ x\ny" {
			t.Errorf("help of neg = %q", f.Help)
		}
	}
	for _, bad := range []struct{ om, want string }{
		{"a{l=\"x} 1\n# EOF\n", `line 1: unterminated quoted string`},
		{"a{l=\"x\"} \n# EOF\n", `line 1: sample a has no value`},
		{"a{l=\"x\"} one\n# EOF\n", `line 1: sample a: value "one" is not a number`},
		{"# TYPE a gauge\n# TYPE b sometype\n# EOF\n", `line 2: unknown type "sometype" for b`},
		{"a{l} 1\n# EOF\n", `line 1: label l has no quoted value`},
		{"# HELP a A\na 1\n# EOF\nb 1\n", `line 4: text after # EOF`},
	} {
		_, err := Parse("x.om", []byte(bad.om), FormatOpenMetrics)
		if err == nil || !strings.Contains(err.Error(), bad.want) || !strings.HasPrefix(err.Error(), "x.om: parse openmetrics exposition: ") {
			t.Errorf("%q: err %v, want one containing %q", bad.om, err, bad.want)
		}
	}
}

// TestCountersSortedAsPlain: --counters lists a family's series in the
// order the plain diff does (by their text), not in A's order.
func TestCountersSortedAsPlain(t *testing.T) {
	a := "# TYPE r_total counter\nr_total{route=\"/x\"} 2.0\nr_total{route=\"/\"} 5.0\n"
	b := "# TYPE r_total counter\nr_total{route=\"/x\"} 1.0\nr_total{route=\"/\"} 4.0\n"
	for _, o := range []Options{{}, {Counters: true}} {
		r := Diff(parseText(t, "a", a), parseText(t, "b", b), o)
		var out bytes.Buffer
		if err := r.WriteText(&out, 0); err != nil {
			t.Fatal(err)
		}
		s := out.String()
		if i, j := strings.Index(s, `route="/"}`), strings.Index(s, `route="/x"}`); i < 0 || j < 0 || i > j {
			t.Errorf("counters %v: series not sorted:\n%s", o.Counters, s)
		}
	}
}

// TestSeriesSortedByBound: a histogram's buckets in a diff's lists go by
// their bound as a number, not as text (+Inf, 0.1, 1e+20, 1e-05, 2.5).
func TestSeriesSortedByBound(t *testing.T) {
	ks := []string{`h_bucket{le="+Inf",r="a"}`, `h_bucket{le="0.1",r="a"}`, `h_bucket{le="1e+20",r="a"}`, `h_bucket{le="1e-05",r="a"}`,
		`h_bucket{le="2.5",r="a"}`, `h_bucket{le="0.1",r="b"}`, `h_count{r="a"}`, `s{quantile="0.9"}`, `s{quantile="0.5"}`}
	// Any order of the input sorts the same (the order is a total one).
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		rng.Shuffle(len(ks), func(i, j int) { ks[i], ks[j] = ks[j], ks[i] })
		sortSeries(ks)
	}
	want := []string{`h_bucket{le="1e-05",r="a"}`, `h_bucket{le="0.1",r="a"}`, `h_bucket{le="2.5",r="a"}`, `h_bucket{le="1e+20",r="a"}`,
		`h_bucket{le="+Inf",r="a"}`, `h_bucket{le="0.1",r="b"}`, `h_count{r="a"}`, `s{quantile="0.5"}`, `s{quantile="0.9"}`}
	if strings.Join(ks, " ") != strings.Join(want, " ") {
		t.Errorf("sorted:\n%s\nwant:\n%s", strings.Join(ks, "\n"), strings.Join(want, "\n"))
	}
}
