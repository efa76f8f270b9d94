package cleanup

import (
	"math"
)

// sumState is what sumValue needs of a key merged by addition, gathered
// as the plan's scan meets its values (the archive's sources and the
// kept shards' of the same kind and mode): how many there are, their
// magnitudes and whether every sum of them is exact.
type sumState struct {
	n     int
	exact exactness
}

// add records a value of the key: merged into the archive or kept.
func (s *sumState) add(v float64) {
	s.n++
	s.exact.add(v)
}

// sumValue chooses the archive value of a key merged by addition (a
// counter, a histogram's or summary's sample, a sum gauge) whose sources
// add up to v. Readers add a key's values one shard after another, and
// floating-point addition depends on the order: the archive added to the
// kept shards' values, in another order than its sources were, can give a
// sum lower in its last bits than the readers' sum before the run, and a
// counter that falls by one bit is a counter reset to Prometheus (rate()
// and increase() count its whole value again). Running workers keep
// writing while a run goes on, so no one order of one set of values can
// be relied on: the value is raised by the error bound of adding them, so
// that no reader's sum after the run, in any order, is below any reader's
// sum before it while the kept values have less than doubled (a running
// worker's totals during one run). Any order: a sum of N values differs
// from the exact sum by at most about N·2⁻⁵³ times the sum of their
// magnitudes M, before the run and after it, so N+2 units of 2⁻⁵¹·M
// cover both with the kept magnitudes doubled; the rise is of that order
// (the 14th digit of a histogram's _sum over 50 processes). Whole numbers
// (counts, most counters) add up exactly in any order and are kept as
// they are.
//
// While the run is in progress, readers see the archive's samples from its
// journal, at the end of their read (where the archive file will come is
// the file system's choice), and after it the file where it is: the same
// values in another order, which can differ by the same bound. So the
// archive is raised twice over, and readers during the run see it raised
// once (view): before <= during <= after, whichever places they take.
func sumValue(s *sumState, v float64) (value, view float64) {
	if s.exact.whole() || s.exact.special || math.IsNaN(v) || math.IsInf(v, 0) {
		return v, v
	}
	margin := float64(s.n+2) * 0x1p-51 * s.exact.mag
	view = math.Nextafter(v+margin, math.Inf(1))
	return math.Nextafter(view+margin, math.Inf(1)), view
}

// exactness tells, value by value, whether every sum of the values met, in
// any order and grouping, is exact: all are whole multiples of one power
// of two, and the sum of their magnitudes has room in a float64's 53 bits
// at that scale (whole-number counts and counters, for one).
type exactness struct {
	low     int     // the lowest bit of any value, as a power of two
	set     bool    // low is set
	mag     float64 // the sum of the magnitudes
	special bool    // a NaN or an infinity was met
}

func (x *exactness) add(v float64) {
	if v == 0 {
		return
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		x.special = true
		return
	}
	frac, exp := math.Frexp(v) // v = frac * 2^exp, 0.5 <= |frac| < 1
	m := uint64(math.Abs(frac) * (1 << 53))
	tz := 0
	for m&1 == 0 {
		m >>= 1
		tz++
	}
	if low := exp - 53 + tz; !x.set || low < x.low {
		x.low, x.set = low, true
	}
	x.mag += math.Abs(v)
}

// whole reports whether every sum of the values met is exact.
func (x *exactness) whole() bool {
	if x.special {
		return false
	}
	if !x.set {
		return true // all zero
	}
	// mag is itself a rounded sum: a bit of room is left for its error.
	return x.mag < math.Ldexp(1, 52+x.low)
}
