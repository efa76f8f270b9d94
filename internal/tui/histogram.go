package tui

import (
	"math"
	"sort"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/store"
)

// Bucket is one cumulative histogram bucket.
type Bucket struct {
	// LE is the upper bound; LEText is its label text.
	LE     float64
	LEText string
	// Count is the cumulative count of observations <= LE.
	Count float64
}

// Histogram is one histogram series (a label set without le) of a
// snapshot.
type Histogram struct {
	Family    string
	Labels    []store.Label
	LabelText string
	// Buckets are in ascending le order.
	Buckets []Bucket
	Count   float64
	Sum     float64
	HasSum  bool
}

// histogramOf gathers the histogram that series sr belongs to from snap.
func histogramOf(snap *Snapshot, sr *Series) (*Histogram, bool) {
	if sr.Type != store.KindHistogram {
		return nil, false
	}
	labels := sr.Labels
	if sr.Name == sr.Family+"_bucket" {
		_, without, ok := aggregate.SplitLE(sr.Labels)
		if !ok {
			return nil, false
		}
		labels = without
	}
	want := aggregate.HistogramID(sr.Family, labels)
	h := &Histogram{Family: sr.Family, Labels: labels, LabelText: labelText(labels), Count: math.NaN(), Sum: math.NaN()}
	// Series are sorted by family, so the family is one run.
	lo := sort.Search(len(snap.Series), func(i int) bool { return snap.Series[i].Family >= sr.Family })
	for i := lo; i < len(snap.Series) && snap.Series[i].Family == sr.Family; i++ {
		s := &snap.Series[i]
		switch s.Name {
		case s.Family + "_bucket":
			le, without, ok := aggregate.SplitLE(s.Labels)
			if ok && aggregate.HistogramID(s.Family, without) == want {
				var text string
				for _, l := range s.Labels {
					if l.Name == "le" {
						text = l.Value
					}
				}
				h.Buckets = append(h.Buckets, Bucket{LE: le, LEText: text, Count: s.Value})
			}
		case s.Family + "_count":
			if aggregate.HistogramID(s.Family, s.Labels) == want {
				h.Count = s.Value
			}
		case s.Family + "_sum":
			if aggregate.HistogramID(s.Family, s.Labels) == want {
				h.Sum, h.HasSum = s.Value, true
			}
		}
	}
	sort.SliceStable(h.Buckets, func(i, j int) bool { return h.Buckets[i].LE < h.Buckets[j].LE })
	return h, len(h.Buckets) > 0
}

// Quantile estimates the q-quantile (0 <= q <= 1) of cumulative buckets
// sorted by le the way Prometheus's histogram_quantile does: linear
// interpolation within the bucket the rank falls in, assuming a lower
// bound of 0 for the first bucket, and the highest finite bound when the
// rank falls in the +Inf bucket. It is NaN without a +Inf bucket, with
// fewer than two buckets, or with no observations.
func Quantile(q float64, buckets []Bucket) float64 {
	switch {
	case math.IsNaN(q):
		return math.NaN()
	case q < 0:
		return math.Inf(-1)
	case q > 1:
		return math.Inf(1)
	}
	n := len(buckets)
	if n < 2 || !math.IsInf(buckets[n-1].LE, 1) {
		return math.NaN()
	}
	// Counts that went down (float noise, a shard read mid-update) are
	// raised as Prometheus's ensureMonotonic does.
	counts := make([]float64, n)
	prev := math.Inf(-1)
	for i, b := range buckets {
		prev = math.Max(prev, b.Count)
		counts[i] = prev
	}
	total := counts[n-1]
	if total == 0 || math.IsNaN(total) {
		return math.NaN()
	}
	rank := q * total
	b := sort.Search(n-1, func(i int) bool { return counts[i] >= rank })
	if b == n-1 {
		return buckets[n-2].LE
	}
	if b == 0 && buckets[0].LE <= 0 {
		return buckets[0].LE
	}
	start, end, count := 0.0, buckets[b].LE, counts[b]
	if b > 0 {
		start = buckets[b-1].LE
		count -= counts[b-1]
		rank -= counts[b-1]
	}
	return start + (end-start)*(rank/count)
}
