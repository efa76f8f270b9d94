package compare

import (
	"bytes"
	"encoding/json"
	"math"
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
