package tui

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/store"
)

// TestCacheSlots: whatever the series of one read to the next (the same,
// some gone, new ones among them, a series twice), each series shows its
// own identity and labels, a series shown before keeps its slot, and the
// slots of an unchanged store do not grow.
func TestCacheSlots(t *testing.T) {
	sample := func(i int) aggregate.Sample {
		return aggregate.Sample{Name: fmt.Sprintf("m%d_total", i%7), Labels: []store.Label{{Name: "route", Value: fmt.Sprintf("/r/%d", i)}}}
	}
	reads := [][]int{
		{1, 2, 3, 4, 5, 6, 7, 8},
		{1, 2, 3, 4, 5, 6, 7, 8},     // unchanged
		{1, 3, 4, 6, 8},              // some gone
		{0, 1, 2, 3, 9, 4, 6, 8, 10}, // new ones before, among and after
		{10, 9, 8, 4, 3, 1},          // another order
		{1, 1, 2, 2, 3},              // a series twice
		{},                           // none
		{1, 2, 3, 4, 5, 6, 7, 8},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 40 {
		var ids []int
		for i := range 12 {
			if r.IntN(3) > 0 {
				ids = append(ids, i)
			}
		}
		if r.IntN(2) == 0 {
			r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		}
		reads = append(reads, ids)
	}
	c := newCache()
	held := map[string]*store.Label{} // each series' slot, by its id: its labels' first element
	for n, ids := range reads {
		var fam aggregate.Family
		fam.Name = "m"
		for _, i := range ids {
			fam.Samples = append(fam.Samples, sample(i))
		}
		slots := c.nslots
		snap := c.snapshot([]aggregate.Family{fam})
		if len(snap.Series) != len(ids) {
			t.Fatalf("read %d: %d series, want %d", n, len(snap.Series), len(ids))
		}
		for j, i := range ids {
			want := sample(i)
			sr := snap.Series[j]
			if sr.Name != want.Name || !slices.Equal(sr.Labels, want.Labels) || sr.Key != aggregate.SeriesID(want.Name, want.Labels) || sr.LabelText != labelText(want.Labels) {
				t.Fatalf("read %d, series %d: %s%v key %q text %q, want %s%v", n, j, sr.Name, sr.Labels, sr.Key, sr.LabelText, want.Name, want.Labels)
			}
			if p, ok := held[sr.Key]; ok && p != &sr.Labels[0] {
				t.Errorf("read %d: series %s%v got another slot", n, sr.Name, sr.Labels)
			}
			held[sr.Key] = &sr.Labels[0]
		}
		if n == 1 && c.nslots != slots {
			t.Errorf("an unchanged read made slots: %d -> %d", slots, c.nslots)
		}
	}
}
