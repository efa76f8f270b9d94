package cleanup

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/testenv"
)

// sumsAfter returns the readers' sums of a key after a run whose archive
// holds v, for each place the archive may take among the kept values.
func sumsAfter(seq []seqEntry, v float64) []float64 {
	var kept []float64
	for _, e := range seq {
		if !e.src {
			kept = append(kept, e.v)
		}
	}
	var out []float64
	for p := 0; p <= len(kept); p++ {
		s := 0.0
		for _, w := range kept[:p] {
			s += w
		}
		s += v
		for _, w := range kept[p:] {
			s += w
		}
		out = append(out, s)
	}
	return out
}

// TestSumValueNeverLowers: for random keys of fractional values, dead
// (merged into the archive) and kept in a random order, the archive's
// value makes no reader's sum fall below the sum before the run, at any
// place a directory may put the archive; at the place the store's order
// gives, it keeps the sum exactly where some value can, and it is the
// least value that does not lower it. Taking the archive's own sum (as
// before) lowers some of these sums by their last bit.
func TestSumValueNeverLowers(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 7))
	id := func(pid string) store.ShardID { return store.ShardID{Kind: store.KindCounter, PID: pid} }
	archive := id(ArchivePID)
	fell, exactKnown := 0, 0
	for n := range 2000 {
		var seq []seqEntry
		var a accumulator
		for i := range 2 + rng.IntN(12) {
			v := rng.Float64() * math.Pow(10, float64(rng.IntN(6)))
			if n%5 == 0 {
				v = math.Round(v) // whole numbers: every order is exact
			}
			src := rng.IntN(3) > 0
			// Pids in scan order; "a…" sort before the archive.
			e := seqEntry{id: id(fmt.Sprintf("%c%03d", "az"[rng.IntN(2)], i)), v: v, src: src}
			seq = append(seq, e)
			if src {
				a.add(e.id, v, 0)
			}
		}
		if !a.set {
			continue
		}
		// Scan delivers the shards in the store's order.
		slices.SortStableFunc(seq, func(x, y seqEntry) int {
			switch {
			case x.id.PID < y.id.PID:
				return -1
			case x.id.PID > y.id.PID:
				return 1
			}
			return 0
		})
		a = accumulator{}
		for _, e := range seq {
			if e.src {
				a.add(e.id, e.v, 0)
			}
		}
		a.seq = seq
		before := 0.0
		for _, e := range seq {
			before += e.v
		}
		for _, s := range sumsAfter(seq, a.value) {
			if s < before {
				fell++
				break
			}
		}

		tk := &Target{}
		var st sumState
		for _, e := range seq {
			if e.src {
				st.source(e.v)
			} else {
				st.kept(e.v, tk.less(e.id, archive))
			}
		}
		v := sumValue(&st, a.value, &Target{AnyPlace: true})
		for p, s := range sumsAfter(seq, v) {
			if s < before {
				t.Fatalf("case %d: archive %v at place %d: sum %v falls below %v (%+v)", n, v, p, s, before, seq)
			}
		}
		// One step lower falls somewhere, or v is the archive's own sum.
		if lower := math.Nextafter(v, math.Inf(-1)); v != a.value {
			if low := slicesMin(sumsAfter(seq, lower)); low >= before {
				t.Errorf("case %d: %v is not the least value (%v does not lower the sum either)", n, v, lower)
			}
		}

		// The store's order: the archive after the kept "a…" pids.
		v = sumValue(&st, a.value, tk)
		pos := 0
		for _, e := range seq {
			if !e.src && tk.less(e.id, archive) {
				pos++
			}
		}
		got := sumsAfter(seq, v)[pos]
		if got < before {
			t.Fatalf("case %d: known place %d: sum %v falls below %v", n, pos, got, before)
		}
		if got == before {
			exactKnown++
		}
	}
	if fell == 0 {
		t.Fatal("no case where the archive's own sum lowers a reader's sum: the test checks nothing")
	}
	t.Logf("the archive's own sum lowered a sum in %d cases; at the known place %d kept it exactly", fell, exactKnown)
}

func slicesMin(vs []float64) float64 {
	m := math.Inf(1)
	for _, v := range vs {
		m = math.Min(m, v)
	}
	return m
}

func TestExactness(t *testing.T) {
	e := func(vs ...float64) []seqEntry {
		var s []seqEntry
		for _, v := range vs {
			s = append(s, seqEntry{v: v})
		}
		return s
	}
	cases := []struct {
		name string
		seq  []seqEntry
		want bool
	}{
		{"whole numbers", e(1, 2, 3e6, 0), true},
		{"halves and quarters", e(0.5, 0.25, 1.75), true},
		{"tenths", e(0.1, 0.2), false},
		{"whole numbers past 2^53", e(1<<53, 1), false},
		{"zeros", e(0, 0), true},
		{"NaN", e(1, math.NaN()), false},
		{"negative whole numbers", e(-4, 7), true},
	}
	for _, tc := range cases {
		var x exactness
		for _, e := range tc.seq {
			x.add(e.v)
		}
		if got := x.whole(); got != tc.want {
			t.Errorf("%s: whole = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestCleanupNoCounterFalls: a directory of dead and running workers'
// shards holding fractional counters and histogram sums (what
// prometheus_client's observe() makes); after cleanup --dead-pids, no
// counter-like sample of the dump is lower than before by even one bit
// (to Prometheus a counter reset). Before the archive value was chosen
// (the archive's own sum), several of these stores lost a bit.
func TestCleanupNoCounterFalls(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 11))
	live := []string{testenv.LivePID(t), testenv.LivePID(t)}
	for round := range 6 {
		dir := t.TempDir()
		st, err := filestore.Open(ctx, dir, filestore.Options{Layout: 16})
		if err != nil {
			t.Fatal(err)
		}
		pids := append([]string{}, live...)
		for range 8 {
			pids = append(pids, testenv.DeadPID(t))
		}
		for _, pid := range pids {
			var cs, hs []store.Sample
			for r := range 6 {
				route := fmt.Sprintf("/r/%d", r)
				cs = append(cs, store.Sample{Key: key(t, "work", "work_total", "Work done.", "route", route), Value: rng.Float64() * 100})
				hs = append(hs, store.Sample{Key: key(t, "lat", "lat_sum", "Latency.", "route", route), Value: rng.Float64() * 10})
				hs = append(hs, store.Sample{Key: key(t, "lat", "lat_bucket", "Latency.", "le", "+Inf", "route", route), Value: float64(rng.IntN(50))})
			}
			if err := st.WriteShard(ctx, store.ShardID{Kind: store.KindCounter, PID: pid}, cs); err != nil {
				t.Fatal(err)
			}
			if err := st.WriteShard(ctx, store.ShardID{Kind: store.KindHistogram, PID: pid}, hs); err != nil {
				t.Fatal(err)
			}
		}
		testenv.AgeFiles(t, dir)
		values := func() map[string]float64 {
			e, err := testenv.ParseExposition(dump(t, dir))
			if err != nil {
				t.Fatal(err)
			}
			m := map[string]float64{}
			for _, f := range e.Families {
				for _, s := range f.Samples {
					m[s.Key()] = s.Value
				}
			}
			return m
		}
		before := values()
		runCleanup(t, dir, Options{DeadPIDs: true})
		after := values()
		for k, b := range before {
			if a, ok := after[k]; !ok || a < b {
				t.Errorf("round %d: %s went from %v to %v", round, k, b, a)
			}
		}
		// A second generation folds the first archive with new dead pids.
		for _, pid := range []string{testenv.DeadPID(t), testenv.DeadPID(t)} {
			cs := []store.Sample{{Key: key(t, "work", "work_total", "Work done.", "route", "/r/0"), Value: rng.Float64() * 100}}
			if err := st.WriteShard(ctx, store.ShardID{Kind: store.KindCounter, PID: pid}, cs); err != nil {
				t.Fatal(err)
			}
		}
		testenv.AgeFiles(t, dir)
		before = values()
		runCleanup(t, dir, Options{DeadPIDs: true})
		after = values()
		for k, b := range before {
			if a, ok := after[k]; !ok || a < b {
				t.Errorf("round %d, second run: %s went from %v to %v", round, k, b, a)
			}
		}
	}
}
