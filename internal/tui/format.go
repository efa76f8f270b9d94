package tui

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/promstore/promstore/internal/render"
)

// formatValue writes a sample value compactly: integers in full up to
// 1e12, other values with six significant digits, and NaN/±Inf as the
// exposition spells them.
func formatValue(v float64) string {
	if s, ok := render.SpecialValue(v); ok {
		return s
	}
	if v == 0 {
		return "0"
	}
	a := math.Abs(v)
	if v == math.Trunc(v) && a < 1e12 {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	if a < 1e-3 || a >= 1e12 {
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	digits := int(math.Floor(math.Log10(a))) + 1
	dec := min(max(6-digits, 0), 6)
	s := strconv.FormatFloat(v, 'f', dec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// formatRate writes a per-second rate; NaN means no rate.
func formatRate(r float64) string {
	if math.IsNaN(r) {
		return ""
	}
	return formatValue(r)
}

var sparkLevels = []rune("▁▂▃▄▅▆▇█")

// sparkline draws the last width values with unicode blocks scaled
// between their minimum and maximum, right-aligned; NaN and ±Inf are
// gaps.
func sparkline(vals []float64, width int) string {
	if width <= 0 {
		return ""
	}
	if len(vals) > width {
		vals = vals[len(vals)-width:]
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vals {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	var b strings.Builder
	b.WriteString(strings.Repeat(" ", width-len(vals)))
	for _, v := range vals {
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0):
			b.WriteByte(' ')
		case hi == lo:
			b.WriteRune(sparkLevels[0])
		default:
			i := int((v - lo) / (hi - lo) * float64(len(sparkLevels)-1))
			b.WriteRune(sparkLevels[min(max(i, 0), len(sparkLevels)-1)])
		}
	}
	return b.String()
}

// bar draws a horizontal bar of frac (0..1) of width cells.
func bar(frac float64, width int) string {
	if math.IsNaN(frac) || frac <= 0 || width <= 0 {
		return ""
	}
	n := int(math.Round(math.Min(frac, 1) * float64(width)))
	if n == 0 {
		return "▏"
	}
	return strings.Repeat("█", n)
}

// fit truncates s to width cells (with an ellipsis) and pads it with
// spaces to exactly width cells.
func fit(s string, width int) string {
	if width <= 0 {
		return ""
	}
	w := ansi.StringWidth(s)
	if w > width {
		s = ansi.Truncate(s, width, "…")
		w = ansi.StringWidth(s)
	}
	return s + strings.Repeat(" ", width-w)
}

// fitRight is fit with the text aligned right.
func fitRight(s string, width int) string {
	if width <= 0 {
		return ""
	}
	w := ansi.StringWidth(s)
	if w > width {
		s = ansi.Truncate(s, width, "…")
		w = ansi.StringWidth(s)
	}
	return strings.Repeat(" ", width-w) + s
}

// spread puts left and right on one line of width cells, truncating the
// left part when both do not fit.
func spread(left, right string, width int) string {
	rw := ansi.StringWidth(right)
	if rw >= width {
		return fit(right, width)
	}
	return fit(left, width-rw-1) + " " + right
}

// roundDuration shortens a read duration for the header.
func roundDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}
