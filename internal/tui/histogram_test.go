package tui

import (
	"math"
	"testing"
)

func TestQuantile(t *testing.T) {
	inf := math.Inf(1)
	b := func(pairs ...float64) []Bucket {
		var out []Bucket
		for i := 0; i+1 < len(pairs); i += 2 {
			out = append(out, Bucket{LE: pairs[i], Count: pairs[i+1]})
		}
		return out
	}
	std := b(0.1, 10, 0.5, 30, 1, 40, inf, 40)
	tests := []struct {
		name    string
		q       float64
		buckets []Bucket
		want    float64
	}{
		{"first bucket from 0", 0.25, std, 0.1},
		{"interpolated", 0.5, std, 0.3},
		{"interpolated high", 0.9, std, 0.8},
		{"max", 1, std, 1},
		{"zero", 0, std, 0},
		{"in +Inf bucket", 0.9, b(1, 5, inf, 10), 1},
		{"no +Inf bucket", 0.5, b(1, 5, 2, 10), math.NaN()},
		{"no observations", 0.5, b(1, 0, inf, 0), math.NaN()},
		{"one bucket", 0.5, b(inf, 3), math.NaN()},
		{"q below 0", -0.1, std, math.Inf(-1)},
		{"q above 1", 1.1, std, inf},
		{"q NaN", math.NaN(), std, math.NaN()},
		{"negative first bound", 0.2, b(-1, 5, inf, 10), -1},
		{"counts going down are raised", 0.5, b(1, 5, 2, 4, inf, 10), 1},
	}
	for _, tt := range tests {
		got := Quantile(tt.q, tt.buckets)
		if !near(got, tt.want) && !(math.Abs(got-tt.want) < 1e-12) {
			t.Errorf("%s: Quantile(%v) = %v, want %v", tt.name, tt.q, got, tt.want)
		}
	}
}

func TestHistogramOf(t *testing.T) {
	snap := snapshotOf(t, NewStoreSource(openStore(t, sampleStore), SourceOptions{}))
	var fromCount, fromBucket *Histogram
	for i := range snap.Series {
		sr := &snap.Series[i]
		if sr.Family != "app_latency_seconds" || sr.LabelText == "" {
			continue
		}
		switch {
		case sr.Name == "app_latency_seconds_count" && sr.LabelText == `{route="/api/v1/items/0",tag="plain"}`:
			fromCount, _ = histogramOf(snap, sr)
		case sr.Name == "app_latency_seconds_bucket" && sr.LabelText == `{le="0.5",route="/api/v1/items/0",tag="plain"}`:
			fromBucket, _ = histogramOf(snap, sr)
		}
	}
	if fromCount == nil || fromBucket == nil {
		t.Fatal("histogram of app_latency_seconds{route=/api/v1/items/0} not found")
	}
	if fromCount.LabelText != fromBucket.LabelText || len(fromCount.Buckets) != len(fromBucket.Buckets) {
		t.Fatalf("histogram from _count %+v differs from histogram from _bucket %+v", fromCount, fromBucket)
	}
	h := fromCount
	if len(h.Buckets) != 15 || h.Count != 6 || !h.HasSum || !near(h.Sum, 19.43) {
		t.Errorf("buckets %d count %v sum %v (%v), want 15, 6, 19.43", len(h.Buckets), h.Count, h.Sum, h.HasSum)
	}
	for i := 1; i < len(h.Buckets); i++ {
		if h.Buckets[i].LE <= h.Buckets[i-1].LE || h.Buckets[i].Count < h.Buckets[i-1].Count {
			t.Errorf("bucket %d (%+v) after %+v", i, h.Buckets[i], h.Buckets[i-1])
		}
	}
	if last := h.Buckets[len(h.Buckets)-1]; last.LEText != "+Inf" || last.Count != h.Count {
		t.Errorf("last bucket %+v, want +Inf holding the count", last)
	}
	for i := range snap.Series {
		if sr := &snap.Series[i]; sr.Family == "app_requests" {
			if _, ok := histogramOf(snap, sr); ok {
				t.Errorf("%s is a counter, not a histogram", sr.Name)
			}
			break
		}
	}
}
