package render

import (
	"math"
	"testing"

	"github.com/promstore/promstore/internal/store"
)

func TestSampleText(t *testing.T) {
	hard := ls("path", "a\\b\"c\nd\te\rf\x1bg\u0085h\ufffdi café 日本")
	for _, tc := range []struct {
		name   string
		labels []store.Label
		esc    Escape
		want   string
	}{
		{"m_total", nil, EscapeColumns, `m_total`},
		{"m_total", ls("a", "1", "b", ""), EscapeExposition, `m_total{a="1",b=""}`},
		{"my.metric", nil, EscapeColumns, `{"my.metric"}`},
		{"my.metric", ls("la.bel", "v"), EscapeColumns, `{"my.metric","la.bel"="v"}`},
		{"m", hard, EscapeExposition, "m{path=\"a\\\\b\\\"c\\nd\te\rf\x1bg\u0085h\ufffdi café 日本\"}"},
		{"m", hard, EscapeColumns, "m{path=\"a\\\\b\\\"c\\nd\\te\\rf\x1bg\u0085h\ufffdi café 日本\"}"},
		{"m", hard, EscapeTerminal, `m{path="a\\b\"c\nd\te\rf\x1bg\u0085h\ufffdi café 日本"}`},
		{"m", ls("k", "\xff"), EscapeTerminal, `m{k="\ufffd"}`},
	} {
		if got := SampleText(tc.name, tc.labels, tc.esc); got != tc.want {
			t.Errorf("SampleText(%q, %v, %d) = %q, want %q", tc.name, tc.labels, tc.esc, got, tc.want)
		}
	}
	if got := LabelsText(nil, EscapeTerminal); got != "" {
		t.Errorf("LabelsText of no labels = %q", got)
	}
	if got := LabelsText(ls("a", "x\ty"), EscapeTerminal); got != `{a="x\ty"}` {
		t.Errorf("LabelsText = %q", got)
	}
}

func TestSpecialValue(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
		ok   bool
	}{
		{math.NaN(), "NaN", true}, {math.Inf(1), "+Inf", true}, {math.Inf(-1), "-Inf", true},
		{0, "", false}, {1e308, "", false},
	} {
		if got, ok := SpecialValue(tc.v); got != tc.want || ok != tc.ok {
			t.Errorf("SpecialValue(%v) = %q, %v", tc.v, got, ok)
		}
	}
}
