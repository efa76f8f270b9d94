package cleanup

import (
	"math"

	"github.com/promstore/promstore/internal/store"
)

// sumValue chooses the archive value of a key merged by addition (a
// counter, a histogram's or summary's sample, a sum gauge). Readers add a
// key's values one shard after another in their merge order, and floating
// point addition depends on that order: the archive's sum of its sources
// plus the kept shards' values, added in another order than before, can
// differ from the readers' last sum in its last bits, either way. A
// counter that falls by one bit is a counter reset to Prometheus: rate()
// and increase() count its whole value again. So the archive's value is
// the least one for which the readers' sum after the run is not below
// their sum before it: the same sum wherever some value gives it, else
// the next one up (a rise in the last bits). Where the archive's place
// among the kept shards is known (the store's order, t.Less), that place
// is taken; in a directory, whose order is the file system's (t.AnyPlace),
// every place is, so that no order can make the sum fall.
func sumValue(a *accumulator, archive store.ShardID, t *Target) float64 {
	var kept []float64
	var keptIDs []store.ShardID
	before := 0.0 // Python adds to 0.0
	for _, e := range a.seq {
		before += e.v
		if !e.src {
			kept = append(kept, e.v)
			keptIDs = append(keptIDs, e.id)
		}
	}
	if len(a.seq) == 0 || exactSums(a.seq) || math.IsNaN(before) || math.IsInf(before, 0) {
		// Every order adds to the same sum (whole numbers, the
		// commonest case), or no value can change it.
		return a.value
	}
	var places []int
	if !t.AnyPlace {
		pos := len(kept)
		for i, id := range keptIDs {
			if t.less(archive, id) {
				pos = i
				break
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
	for i, v := range kept {
		heads[i+1] = heads[i] + v
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
	// doubling steps from the archive's own sum, then halved.
	o := toOrdered(a.value)
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
				return a.value // cannot happen short of +Inf, which is ok
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

// exactSums reports whether every sum of the entries' values, in any
// order and grouping, is exact: all are whole multiples of one power of
// two, and the sum of their magnitudes has room in a float64's 53 bits
// at that scale (whole-number counts and counters, for one).
func exactSums(seq []seqEntry) bool {
	low := math.MaxInt
	mag := 0.0
	for _, e := range seq {
		v := e.v
		if v == 0 {
			continue
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
		frac, exp := math.Frexp(v) // v = frac * 2^exp, 0.5 <= |frac| < 1
		m := uint64(math.Abs(frac) * (1 << 53))
		tz := 0
		for m&1 == 0 {
			m >>= 1
			tz++
		}
		low = min(low, exp-53+tz) // the value's lowest bit
		mag += math.Abs(v)
	}
	if low == math.MaxInt {
		return true // all zero
	}
	// mag is itself a rounded sum: a bit of room is left for its error.
	return mag < math.Ldexp(1, 52+low)
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
