package tui

import (
	"math"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"github.com/promstore/promstore/internal/store"
)

func TestFormatValue(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{0, "0"},
		{math.Copysign(0, -1), "0"},
		{68, "68"},
		{-512, "-512"},
		{1234567890123, "1.235e+12"},
		{123456789012, "123456789012"},
		{99999999999, "99999999999"},
		{329.75, "329.75"},
		{78.11890000000005, "78.1189"},
		{1530.9585, "1530.96"},
		{0.0123456, "0.012346"},
		{0.5, "0.5"},
		{1e-7, "1e-07"},
		{1.5e15, "1.5e+15"},
		{math.NaN(), "NaN"},
		{math.Inf(1), "+Inf"},
		{math.Inf(-1), "-Inf"},
	}
	for _, tt := range tests {
		if got := formatValue(tt.v); got != tt.want {
			t.Errorf("formatValue(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
	if formatRate(math.NaN()) != "" || formatRate(2.5) != "2.5" {
		t.Errorf("formatRate: NaN must be blank, 2.5 must be 2.5")
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
