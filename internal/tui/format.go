package tui

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/promstore/promstore/internal/render"
)

// formatValue writes a sample value for a column of valueW cells (see
// formatValueW).
func formatValue(v float64) string { return formatValueW(v, valueW) }

// formatValueW writes a sample value as dump does, as the shortest decimal
// that reads back as the same float (fixed notation from 1e-4 to 1e16,
// exponent notation outside, as Python's repr; integers without ".0"), when
// that fits in width cells. A longer one is rounded to as many digits as
// fit, keeping a decimal of a value that is not an integer (else it is
// written with an exponent), so that it never shows as another integer
// (28942530991.69 is 2.894253e+10, not 28942530992). NaN and ±Inf are
// spelled as the exposition spells them; a width of 0 or less never
// rounds.
func formatValueW(v float64, width int) string {
	if s, ok := render.SpecialValue(v); ok {
		return s
	}
	if v == 0 {
		return "0"
	}
	a := math.Abs(v)
	fixed := a >= 1e-4 && a < 1e16
	var s string
	if fixed {
		s = strconv.FormatFloat(v, 'f', -1, 64)
	} else {
		s = strconv.FormatFloat(v, 'e', -1, 64)
	}
	if width <= 0 || len(s) <= width {
		return s
	}
	if dot := strings.IndexByte(s, '.'); fixed && dot >= 0 && dot+2 <= width {
		// As many decimals as fit (rounding up may add a digit: 9.99 to 10.0).
		for dec := width - dot - 1; dec >= 1; dec-- {
			if r := strconv.FormatFloat(v, 'f', dec, 64); len(r) <= width {
				return trimFraction(r)
			}
		}
	}
	for prec := 15; prec >= 0; prec-- {
		r := strconv.FormatFloat(v, 'e', prec, 64)
		mant, exp, _ := strings.Cut(r, "e")
		if r = trimFraction(mant) + "e" + exp; len(r) <= width {
			return r
		}
	}
	return s
}

// trimFraction drops the trailing zeros of a decimal fraction, and its
// dot when nothing is left after it.
func trimFraction(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	return strings.TrimRight(strings.TrimRight(s, "0"), ".")
}

// formatRate writes a per-second rate for the rate column; NaN means no
// rate.
func formatRate(r float64) string {
	if math.IsNaN(r) {
		return ""
	}
	return formatEstimate(r)
}

// formatEstimate writes a number top computed rather than read (a rate, a
// mean, a quantile's interpolation) compactly: integers in full up to
// 1e12, other values with six significant digits (four with an
// exponent). Its further digits are noise of the estimate, and they would
// change at every read.
func formatEstimate(v float64) string {
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
	return trimFraction(strconv.FormatFloat(v, 'f', min(max(6-digits, 0), 6), 64))
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
