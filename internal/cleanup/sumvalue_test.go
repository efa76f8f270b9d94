package cleanup

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/testenv"
)

// foldIn adds vs in the order perm gives, from 0.0, as readers do.
func foldIn(vs []float64, perm []int) float64 {
	s := 0.0
	for _, i := range perm {
		s += vs[i]
	}
	return s
}

// TestSumValueNeverLowers: for random keys of fractional values, some
// merged into the archive, some kept, whose kept values grow while the
// run goes on (running workers write on, by up to twice), no reader's sum
// falls from before the run (the sources and kept values in any order) to
// during it (the kept values and the archive's view value, in any order)
// to after it (its value), nor from one read to the next during the run.
// The archive's own sum (as before) falls in many trials; a whole number
// sum is kept as it is.
func TestSumValueNeverLowers(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 7))
	fell := 0
	for n := range 3000 {
		var src, kept []float64
		whole := n%5 == 0
		for range 2 + rng.IntN(40) {
			v := rng.Float64() * math.Pow(10, float64(rng.IntN(6)))
			if whole {
				v = math.Round(v)
			}
			if rng.IntN(3) > 0 {
				src = append(src, v)
			} else {
				kept = append(kept, v)
			}
		}
		if len(src) == 0 {
			continue
		}
		var st sumState
		own := 0.0
		for i, v := range src {
			st.add(v)
			if i == 0 {
				own = v
			} else {
				own += v
			}
		}
		for _, v := range kept {
			st.add(v)
		}
		v, view := sumValue(&st, own)
		if whole && (v != own || view != own) {
			t.Fatalf("case %d: whole numbers: %v changed to %v (view %v)", n, own, v, view)
		}
		if view > v {
			t.Fatalf("case %d: view %v above the value %v", n, view, v)
		}
		grow := func(ks []float64) []float64 {
			out := make([]float64, len(ks))
			growth := []float64{0, 1e-15, 1e-9, 0.3}[rng.IntN(4)] // none, a last bit, a little, more
			for i, k := range ks {
				if !whole {
					k *= 1 + growth*rng.Float64()
				}
				out[i] = k
			}
			return out
		}
		for range 20 {
			all := append(append([]float64{}, src...), kept...)
			before := foldIn(all, rng.Perm(len(all)))
			k1 := grow(kept)
			k2 := grow(k1)
			k3 := grow(k2)
			if afterOwn := foldIn(append([]float64{own}, k1...), rng.Perm(len(k1)+1)); afterOwn < before {
				fell++
			}
			during := foldIn(append([]float64{view}, k1...), rng.Perm(len(k1)+1))
			during2 := foldIn(append([]float64{view}, k2...), rng.Perm(len(k2)+1))
			after := foldIn(append([]float64{v}, k3...), rng.Perm(len(k3)+1))
			if during < before || after < during || after < during2 {
				t.Fatalf("case %d: a sum fell: before %v, during %v, later during %v, after %v (archive %v, view %v, own %v)",
					n, before, during, during2, after, v, view, own)
			}
		}
	}
	if fell == 0 {
		t.Fatal("the archive's own sum never lowered a reader's sum: the test checks nothing")
	}
	t.Logf("the archive's own sum would have lowered a reader's sum in %d trials", fell)
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

// TestJournalView: a sample's view value survives the journal, and a
// journal without one (an earlier version's) has readers see the value.
func TestJournalView(t *testing.T) {
	j := &Journal{Version: 1, Archives: []JournalArchive{{Shard: JournalShard{Kind: "counter", PID: ArchivePID},
		Samples: []JournalSample{{Key: "k", Value: 2.5000000000000004, View: 2.5000000000000002, Viewed: true}, {Key: "z", Value: 7}}}}}
	b, err := encodeJournal(j)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeJournal("test", b)
	if err != nil {
		t.Fatal(err)
	}
	got := back.Archives[0].Samples
	if got[0].viewValue() != 2.5000000000000002 || got[0].Value != 2.5000000000000004 || got[1].Viewed || got[1].viewValue() != 7 {
		t.Errorf("decoded %+v from %s", got, b)
	}
	old, err := decodeJournal("test", []byte(`{"version":1,"archives":[{"shard":{"kind":"counter","pid":"archive"},"samples":[{"key":"k","value":"1.5","ts":"0"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if s := old.Archives[0].Samples[0]; s.Viewed || s.viewValue() != 1.5 {
		t.Errorf("an earlier journal's sample: %+v", s)
	}
}
