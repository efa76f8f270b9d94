package aggregate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/promstore/promstore/internal/store"
)

// TestResetMatchesNew is a property test of Reset: over random sequences
// of reads — shards of every kind and gauge mode, random pids, subsets of
// series in random orders, histogram bounds that come and go, NaN values,
// a family written by counter shards in some reads and gauge or histogram
// shards in others, help texts that differ between keys of one family,
// keys parsed anew (another pointer and ID for a text met before) — an
// aggregator Reset between reads returns what a new one returns, to the
// bit, with and without KeepProcesses.
func TestResetMatchesNew(t *testing.T) {
	for seed := range uint64(20) {
		for _, keep := range []int{0, 2} {
			t.Run(fmt.Sprintf("seed%d-keep%d", seed, keep), func(t *testing.T) {
				testResetMatchesNew(t, seed, keep)
			})
		}
	}
}

func testResetMatchesNew(t *testing.T, seed uint64, keep int) {
	rnd := rand.New(rand.NewPCG(seed, 1))
	var nextID uint32
	texts := map[string]*store.Key{}
	// mk returns the key of a text, the same pointer as before except
	// now and then (a reader that parsed it again).
	mk := func(family, name, help string, labels []store.Label) *store.Key {
		text := store.EncodeKey(family, name, labels, help)
		if k := texts[text]; k != nil && rnd.IntN(20) != 0 {
			return k
		}
		k, err := store.ParseKey(text)
		if err != nil {
			t.Fatal(err)
		}
		nextID++
		k.ID = nextID
		texts[text] = k
		return k
	}
	type group struct {
		kind store.Kind
		mode string
		keys func() []*store.Key
	}
	routes := func() []store.Label {
		return []store.Label{{Name: "route", Value: "/r" + strconv.Itoa(rnd.IntN(6))}}
	}
	help := func(h string) string {
		if rnd.IntN(8) == 0 {
			return h + " (other help)"
		}
		return h
	}
	groups := []group{
		{store.KindCounter, "", func() []*store.Key {
			return []*store.Key{mk("c", "c_total", help("C."), routes()), mk("c", "c_created", "C.", routes())}
		}},
		{store.KindSummary, "", func() []*store.Key {
			return []*store.Key{mk("s", "s_count", "S.", routes()), mk("s", "s_sum", "S.", routes())}
		}},
		{store.KindHistogram, "", func() []*store.Key {
			r := routes()
			var ks []*store.Key
			for _, le := range []string{"0.1", "0.5", "1.0", "5.0", "+Inf", "NaN"} {
				if rnd.IntN(3) > 0 {
					ks = append(ks, mk("h", "h_bucket", "H.", append([]store.Label{{Name: "le", Value: le}}, r...)))
				}
			}
			return append(ks, mk("h", "h_sum", "H.", r), mk("h", "h_count", "H.", r))
		}},
	}
	for _, m := range store.GaugeModes {
		groups = append(groups, group{store.KindGauge, m, func() []*store.Key {
			return []*store.Key{mk("g_"+m, "g_"+m, "G.", routes())}
		}})
	}
	// A family written by shards of different kinds, from read to read.
	conflict := []group{
		{store.KindCounter, "", func() []*store.Key { return []*store.Key{mk("x", "x_total", "X.", routes())} }},
		{store.KindGauge, "sum", func() []*store.Key { return []*store.Key{mk("x", "x_total", "X.", routes())} }},
		{store.KindHistogram, "", func() []*store.Key {
			return []*store.Key{mk("x", "x_bucket", "X.", []store.Label{{Name: "le", Value: "1.0"}})}
		}},
		{store.KindGauge, "all", func() []*store.Key { return []*store.Key{mk("x", "x_total", "X.", routes())} }},
	}
	value := func() float64 {
		switch rnd.IntN(12) {
		case 0:
			return math.NaN()
		case 1:
			return -rnd.Float64()
		}
		return math.Round(rnd.Float64()*1e6) / 1e3
	}
	reused := New()
	reused.KeepProcesses(keep)
	for read := range 12 {
		type shard struct {
			id      store.ShardID
			entries []store.Entry
		}
		var shards []shard
		n := 1 + rnd.IntN(25)
		if read == 6 {
			n = 1 // most keys gone: Reset forgets everything
		}
		for range n {
			g := groups[rnd.IntN(len(groups))]
			if rnd.IntN(6) == 0 {
				g = conflict[rnd.IntN(len(conflict))]
			}
			id := store.ShardID{Kind: g.kind, Mode: g.mode, PID: strconv.Itoa(1 + rnd.IntN(5))}
			var es []store.Entry
			for range 1 + rnd.IntN(4) {
				for _, k := range g.keys() {
					es = append(es, store.Entry{Key: k, KeyID: k.ID, Value: value(), Timestamp: float64(rnd.IntN(50))})
				}
			}
			rnd.Shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] })
			shards = append(shards, shard{id, es})
		}
		fresh := New()
		fresh.KeepProcesses(keep)
		if read > 0 {
			reused.Reset()
		}
		for _, sh := range shards {
			_ = fresh.AddShard(sh.id, sh.entries)
			_ = reused.AddShard(sh.id, sh.entries)
		}
		want, got := fresh.Families(), reused.Families()
		if len(got) != len(want) {
			var gn, wn []string
			for _, f := range got {
				gn = append(gn, f.Name)
			}
			for _, f := range want {
				wn = append(wn, f.Name)
			}
			t.Fatalf("read %d: families %v, want %v", read, gn, wn)
		}
		sameFamilies(t, got, want)
		for i := range want {
			if got[i].Help != want[i].Help {
				t.Fatalf("read %d: family %s help %q, want %q", read, want[i].Name, got[i].Help, want[i].Help)
			}
			for j := range want[i].Samples {
				if g, w := fmt.Sprint(got[i].Samples[j].Procs), fmt.Sprint(want[i].Samples[j].Procs); g != w {
					t.Fatalf("read %d: %s sample %d: breakdown %s, want %s", read, want[i].Name, j, g, w)
				}
			}
		}
	}
}
