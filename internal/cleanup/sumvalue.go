package cleanup

import (
	"math"
)

// sumState is what sumValue needs of a key merged by addition, gathered
// as the plan's scan meets its values: not every value, since a cleanup
// of a few dead pids among many running ones meets the whole store.
type sumState struct {
	before float64 // the readers' sum before the run (Python adds to 0.0)
	// keptV holds the kept shards' values in scan order, keptFirst
	// whether each comes before the archive in the store's order.
	keptV     []float64
	keptFirst []bool
	exact     exactness
}

// source records a value merged into the archive.
func (s *sumState) source(v float64) {
	s.before += v
	s.exact.add(v)
}

// kept records a value of a kept shard, and whether that shard comes
// before the archive in the store's order.
func (s *sumState) kept(v float64, first bool) {
	s.before += v
	s.exact.add(v)
	s.keptV = append(s.keptV, v)
	s.keptFirst = append(s.keptFirst, first)
}

// sumValue chooses the archive value of a key merged by addition (a
// counter, a histogram's or summary's sample, a sum gauge), whose sources
// add up to v. Readers add a key's values one shard after another in
// their merge order, and floating point addition depends on that order:
// the archive's sum of its sources plus the kept shards' values, added in
// another order than before, can differ from the readers' last sum in its
// last bits, either way. A counter that falls by one bit is a counter
// reset to Prometheus: rate() and increase() count its whole value again.
// So the archive's value is the least one for which the readers' sum
// after the run is not below their sum before it: the same sum wherever
// some value gives it, else the next one up (a rise in the last bits).
// Where the archive's place among the kept shards is known (the store's
// order, t.Less), that place is taken; in a directory, whose order is the
// file system's (t.AnyPlace), every place is, so that no order can make
// the sum fall.
func sumValue(s *sumState, v float64, t *Target) float64 {
	before, kept := s.before, s.keptV
	if s.exact.whole() || math.IsNaN(before) || math.IsInf(before, 0) {
		// Every order adds to the same sum (whole numbers, the
		// commonest case), or no value can change it.
		return v
	}
	var places []int
	if !t.AnyPlace {
		pos := 0
		for _, first := range s.keptFirst {
			if first {
				pos++
			}
		}
		places = []int{pos}
	} else {
		for pos := 0; pos <= len(kept); pos++ {
			places = append(places, pos)
		}
	}
	// heads[p] is the sum of the kept values before place p.
	heads := make([]float64, len(kept)+1)
	for i, w := range kept {
		heads[i+1] = heads[i] + w
	}
	lowest := func(v float64) float64 {
		low := math.Inf(1)
		for _, p := range places {
			s := heads[p] + v
			for _, w := range kept[p:] {
				s += w
			}
			low = math.Min(low, s)
		}
		return low
	}
	ok := func(o uint64) bool { return lowest(fromOrdered(o)) >= before }
	// The least value (in the order of float64s, as ordered integers) for
	// which every place gives at least the sum before: a bracket found by
	// doubling steps from the sources' own sum, then halved.
	o := toOrdered(v)
	var good, bad uint64
	if ok(o) {
		good = o
		for step := uint64(1); ; step *= 2 {
			if step > o || step == 1<<63 {
				return fromOrdered(good) // no lower value is worse: keep it
			}
			if c := o - step; !ok(c) {
				bad = c
				break
			} else {
				good = c
			}
		}
	} else {
		bad = o
		for step := uint64(1); ; step *= 2 {
			if step > math.MaxUint64-o || step == 1<<63 {
				return v // cannot happen short of +Inf, which is ok
			}
			if c := o + step; ok(c) {
				good = c
				break
			} else {
				bad = c
			}
		}
	}
	for good-bad > 1 {
		mid := bad + (good-bad)/2
		if ok(mid) {
			good = mid
		} else {
			bad = mid
		}
	}
	return fromOrdered(good)
}

// exactness tells, value by value, whether every sum of the values met, in
// any order and grouping, is exact: all are whole multiples of one power
// of two, and the sum of their magnitudes has room in a float64's 53 bits
// at that scale (whole-number counts and counters, for one).
type exactness struct {
	low     int     // the lowest bit of any value, as a power of two; 0: none yet
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

// toOrdered maps a float64 to an integer of the same order: -Inf ... -0,
// +0 ... +Inf ascending (NaNs beyond them).
func toOrdered(f float64) uint64 {
	b := math.Float64bits(f)
	if b>>63 == 1 {
		return ^b
	}
	return b | 1<<63
}

// fromOrdered is toOrdered's inverse.
func fromOrdered(o uint64) float64 {
	if o>>63 == 1 {
		return math.Float64frombits(o &^ (1 << 63))
	}
	return math.Float64frombits(^o)
}
