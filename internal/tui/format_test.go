package tui

import (
	"math"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"github.com/promstore/promstore/internal/store"
)

// TestFormatValue: a value shows as dump prints it (Python's repr, the
// shortest decimal that reads back as the same float) when that fits in
// the column; a longer one is rounded to what fits, never to another
// integer. The walk of top found 5e-324 shown as 4.941e-324, heap bytes
// of 28942530991.69 shown as 28942530992 and 211.5942 as 211.594.
func TestFormatValue(t *testing.T) {
	tests := []struct {
		v     float64
		width int
		want  string
	}{
		{0, 12, "0"},
		{math.Copysign(0, -1), 12, "0"},
		{68, 12, "68"},
		{-512, 12, "-512"},
		{211.5942, 12, "211.5942"},
		{-689.371, 12, "-689.371"},
		{5e-324, 12, "5e-324"},
		{1e308, 12, "1e+308"},
		{-1.5e-07, 12, "-1.5e-07"},
		{1e-7, 12, "1e-07"},
		{0.0001, 12, "0.0001"},
		{0.0123456, 12, "0.0123456"},
		{1530.9585, 12, "1530.9585"},
		{0.5, 12, "0.5"},
		{329.75, 12, "329.75"},
		{123456789012, 12, "123456789012"},
		{99999999999, 12, "99999999999"},
		{1.5e15, 12, "1.5e+15"},
		// Longer than the column: rounded to what fits.
		{78.11890000000005, 12, "78.1189"},
		{0.30000000000000004, 12, "0.3"},
		{28942530991.690136, 12, "2.894253e+10"},
		{1234567890123, 12, "1.234568e+12"},
		{9.617358322119747e+16, 12, "9.617358e+16"},
		{-9.999999999999, 12, "-10"},
		{2.0 / 3, 10, "0.66666667"},
		{1234567.5, 8, "1.23e+06"},
		// Width 0: never rounded.
		{28942530991.690136, 0, "28942530991.690136"},
		{9.617358322119747e+16, 0, "9.617358322119747e+16"},
		{math.NaN(), 12, "NaN"},
		{math.Inf(1), 12, "+Inf"},
		{math.Inf(-1), 3, "-Inf"},
	}
	for _, tt := range tests {
		got := formatValueW(tt.v, tt.width)
		if got != tt.want {
			t.Errorf("formatValueW(%v, %d) = %q, want %q", tt.v, tt.width, got, tt.want)
		}
		if tt.width > 0 && len(got) > max(tt.width, 4) {
			t.Errorf("formatValueW(%v, %d) = %q: wider than the column", tt.v, tt.width, got)
		}
	}
	if formatRate(math.NaN()) != "" || formatRate(2.5) != "2.5" {
		t.Errorf("formatRate: NaN must be blank, 2.5 must be 2.5")
	}
}

// TestFormatEstimate: what top computes (rates, means, quantiles) keeps
// six significant digits: its further digits are the estimate's noise.
func TestFormatEstimate(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{0, "0"},
		{68, "68"},
		{53.654996, "53.655"},
		{3.2383333333333333, "3.23833"},
		{1530.9585, "1530.96"},
		{0.0123456, "0.012346"},
		{1234567890123, "1.235e+12"},
		{1e-7, "1e-07"},
		{math.Inf(-1), "-Inf"},
	}
	for _, tt := range tests {
		if got := formatEstimate(tt.v); got != tt.want {
			t.Errorf("formatEstimate(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestSparkline(t *testing.T) {
	tests := []struct {
		vals  []float64
		width int
		want  string
	}{
		{nil, 4, "    "},
		{[]float64{1, 2, 3, 4, 5, 6, 7, 8}, 8, "▁▂▃▄▅▆▇█"},
		{[]float64{1, 8}, 4, "  ▁█"},
		{[]float64{5, 5, 5}, 3, "▁▁▁"},
		{[]float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 3, "▁▄█"},
		{[]float64{1, math.NaN(), 3, math.Inf(1)}, 4, "▁ █ "},
		{[]float64{1, 2}, 0, ""},
	}
	for _, tt := range tests {
		if got := sparkline(tt.vals, tt.width); got != tt.want {
			t.Errorf("sparkline(%v, %d) = %q, want %q", tt.vals, tt.width, got, tt.want)
		}
	}
}

func TestFit(t *testing.T) {
	tests := []struct {
		s     string
		width int
		left  string
		right string
	}{
		{"abc", 5, "abc  ", "  abc"},
		{"abcdef", 4, "abc…", "abc…"},
		{"日本語", 5, "日本…", "日本…"},
		{"日本", 4, "日本", "日本"},
		{"🚀x", 4, "🚀x ", " 🚀x"},
		{"abc", 0, "", ""},
	}
	for _, tt := range tests {
		l, r := fit(tt.s, tt.width), fitRight(tt.s, tt.width)
		if l != tt.left || r != tt.right {
			t.Errorf("fit(%q, %d) = %q, %q; want %q, %q", tt.s, tt.width, l, r, tt.left, tt.right)
		}
		if tt.width > 0 && (ansi.StringWidth(l) != tt.width || ansi.StringWidth(r) != tt.width) {
			t.Errorf("fit(%q, %d): widths %d, %d", tt.s, tt.width, ansi.StringWidth(l), ansi.StringWidth(r))
		}
	}
}

// TestPIDSummaryArchive: the archive pseudo-pid is not counted as a pid.
func TestPIDSummaryArchive(t *testing.T) {
	for _, tc := range []struct {
		pids []PID
		want string
	}{
		{[]PID{{ID: "archive", Alive: store.AliveUnknown}, {ID: "12", Alive: store.AliveNo}}, "pids 1 (0 live, 1 dead) + archive"},
		{[]PID{{ID: "archive", Alive: store.AliveUnknown}}, "pids 0 + archive"},
		{[]PID{{ID: "12", Alive: store.AliveYes}, {ID: "w", Alive: store.AliveUnknown}}, "pids 2 (1 live, 0 dead, 1 unknown)"},
	} {
		if got := pidSummary(tc.pids); got != tc.want {
			t.Errorf("pidSummary(%v) = %q, want %q", tc.pids, got, tc.want)
		}
	}
}
