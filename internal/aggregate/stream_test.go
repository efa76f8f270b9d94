package aggregate

import (
	"fmt"
	"slices"
	"testing"

	"github.com/promstore/promstore/internal/store"
)

// TestStreamerBatches: a Streamer gives each family's samples, labels and
// all, as Families does, in batches of at least StreamBatch samples but
// the last, one scratch serving family after family.
func TestStreamerBatches(t *testing.T) {
	a := New()
	var hist []store.Entry
	for r := range 1000 {
		for _, le := range []string{"0.1", "0.5", "1.0", "5.0", "+Inf"} {
			hist = append(hist, store.Entry{Key: key(t, "lat", "lat_bucket", []store.Label{{Name: "le", Value: le}, {Name: "route", Value: fmt.Sprint(r)}}), Value: 1})
		}
	}
	if err := a.AddShard(store.ShardID{Kind: store.KindHistogram, PID: "1"}, hist); err != nil {
		t.Fatal(err)
	}
	// A gauge of mode all whose one series has more processes than a
	// batch holds: its samples are not cut.
	up := key(t, "up", "up", nil)
	for pid := range StreamBatch + 100 {
		if err := a.AddShard(store.ShardID{Kind: store.KindGauge, Mode: "all", PID: fmt.Sprint(pid)}, []store.Entry{{Key: up, Value: float64(pid)}}); err != nil {
			t.Fatal(err)
		}
	}
	c := key(t, "c", "c_total", nil)
	if err := a.AddShard(store.ShardID{Kind: store.KindCounter, PID: "1"}, []store.Entry{{Key: c, Value: 3}}); err != nil {
		t.Fatal(err)
	}
	want := a.Families()
	st := a.Streamer()
	if st.Len() != len(want) {
		t.Fatalf("%d families, want %d", st.Len(), len(want))
	}
	var sc StreamScratch
	for _, i := range []int{2, 0, 1, 0} { // in any order, the scratch used again
		got := st.Header(i)
		var sizes []int
		st.Samples(i, &sc, func(batch []Sample) {
			sizes = append(sizes, len(batch))
			for _, s := range batch {
				s.Labels = slices.Clone(s.Labels)
				got.Samples = append(got.Samples, s)
			}
		})
		sameFamilies(t, []Family{got}, want[i:i+1])
		for j, n := range sizes[:len(sizes)-1] {
			if n < StreamBatch {
				t.Errorf("family %s: batch %d of %d holds %d samples", got.Name, j, len(sizes), n)
			}
		}
		if n := len(want[i].Samples); n > 2*StreamBatch && len(sizes) < 2 {
			t.Errorf("family %s: %d samples in one batch", got.Name, n)
		}
	}
	if got := st.Headers(); len(got) != len(want) || got[1].Name != want[1].Name || got[1].Mode != want[1].Mode || got[1].Samples != nil {
		t.Errorf("headers %+v", got)
	}
}
