package aggregate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
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

// readGen makes random reads: shards of every kind and gauge mode, random
// pids, subsets of series in random orders, histogram bounds that come
// and go, NaN values, a family written by shards of different kinds from
// read to read, help texts that differ between keys of one family, keys
// parsed anew now and then (another pointer and ID for a text met before).
type readGen struct {
	t        *testing.T
	rnd      *rand.Rand
	nextID   uint32
	texts    map[string]*store.Key
	groups   []readGroup
	conflict []readGroup
}

type readGroup struct {
	kind store.Kind
	mode string
	keys func() []*store.Key
}

func newReadGen(t *testing.T, seed uint64) *readGen {
	g := &readGen{t: t, rnd: rand.New(rand.NewPCG(seed, 1)), texts: map[string]*store.Key{}}
	rnd, mk := g.rnd, g.key
	routes := func() []store.Label {
		return []store.Label{{Name: "route", Value: "/r" + strconv.Itoa(rnd.IntN(6))}}
	}
	help := func(h string) string {
		if rnd.IntN(8) == 0 {
			return h + " (other help)"
		}
		return h
	}
	g.groups = []readGroup{
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
		g.groups = append(g.groups, readGroup{store.KindGauge, m, func() []*store.Key {
			return []*store.Key{mk("g_"+m, "g_"+m, "G.", routes())}
		}})
	}
	g.conflict = []readGroup{
		{store.KindCounter, "", func() []*store.Key { return []*store.Key{mk("x", "x_total", "X.", routes())} }},
		{store.KindGauge, "sum", func() []*store.Key { return []*store.Key{mk("x", "x_total", "X.", routes())} }},
		{store.KindHistogram, "", func() []*store.Key {
			return []*store.Key{mk("x", "x_bucket", "X.", []store.Label{{Name: "le", Value: "1.0"}})}
		}},
		{store.KindGauge, "all", func() []*store.Key { return []*store.Key{mk("x", "x_total", "X.", routes())} }},
	}
	return g
}

// key returns the key of a text, the same pointer as before except now
// and then (a reader that parsed it again).
func (g *readGen) key(family, name, help string, labels []store.Label) *store.Key {
	text := store.EncodeKey(family, name, labels, help)
	if k := g.texts[text]; k != nil && g.rnd.IntN(20) != 0 {
		return k
	}
	k, err := store.ParseKey(text)
	if err != nil {
		g.t.Fatal(err)
	}
	g.nextID++
	k.ID = g.nextID
	g.texts[text] = k
	return k
}

func (g *readGen) value() float64 {
	switch g.rnd.IntN(12) {
	case 0:
		return math.NaN()
	case 1:
		return -g.rnd.Float64()
	}
	return math.Round(g.rnd.Float64()*1e6) / 1e3
}

// read returns a read of n shards.
func (g *readGen) read(n int) []Shard {
	rnd := g.rnd
	var shards []Shard
	for range n {
		gr := g.groups[rnd.IntN(len(g.groups))]
		if rnd.IntN(6) == 0 {
			gr = g.conflict[rnd.IntN(len(g.conflict))]
		}
		id := store.ShardID{Kind: gr.kind, Mode: gr.mode, PID: strconv.Itoa(1 + rnd.IntN(5))}
		var es []store.Entry
		for range 1 + rnd.IntN(4) {
			for _, k := range gr.keys() {
				es = append(es, store.Entry{Key: k, KeyID: k.ID, Value: g.value(), Timestamp: float64(rnd.IntN(50))})
			}
		}
		rnd.Shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] })
		shards = append(shards, Shard{id, es})
	}
	return shards
}

func testResetMatchesNew(t *testing.T, seed uint64, keep int) {
	g := newReadGen(t, seed)
	rnd := g.rnd
	reused := New()
	reused.KeepProcesses(keep)
	for read := range 12 {
		n := 1 + rnd.IntN(25)
		if read == 6 {
			n = 1 // most keys gone: Reset forgets everything
		}
		shards := g.read(n)
		fresh := New()
		fresh.KeepProcesses(keep)
		if read > 0 {
			reused.Reset()
		}
		for _, sh := range shards {
			_ = fresh.AddShard(sh.ID, sh.Entries)
			_ = reused.AddShard(sh.ID, sh.Entries)
		}
		sameRead(t, read, reused.Families(), fresh.Families())
	}
}

// sameRead fails t unless got is want to the bit: families, help texts,
// samples and breakdowns.
func sameRead(t *testing.T, read int, got, want []Family) {
	t.Helper()
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

// TestRevalueMatchesNew is a property test of Revalue: from random reads
// (see readGen) aggregated, Reset between reads of another shape, over
// rounds of values written in place —
// random entries of random shards given new values (NaN, -0, the same
// bits again, timestamps for mostrecent), each changed shard a new slice
// — the revalued aggregator returns what a new one fed the same read
// returns, to the bit, handing over again the families it did not change
// (ReuseFamilies), with the processes' breakdowns (KeepProcesses) the
// same too. A read with another key at some place (parsed anew, another
// shard, an entry more) is refused, the aggregator unchanged, and
// aggregated anew. What Families returned in earlier rounds stays as it
// was (a family made again with new values is a new slice).
func TestRevalueMatchesNew(t *testing.T) {
	for seed := range uint64(40) {
		for _, keep := range []int{0, 2} {
			t.Run(fmt.Sprintf("seed%d-keep%d", seed, keep), func(t *testing.T) { testRevalueMatchesNew(t, seed, keep) })
		}
	}
}

func testRevalueMatchesNew(t *testing.T, seed uint64, keep int) {
	g := newReadGen(t, seed)
	rnd := g.rnd
	agg := New()
	agg.ReuseFamilies(true)
	agg.KeepProcesses(keep)
	aggregated := func(read []Shard) []Family {
		fresh := New()
		fresh.KeepProcesses(keep)
		for _, sh := range read {
			_ = fresh.AddShard(sh.ID, sh.Entries)
		}
		return fresh.Families()
	}
	// Every result of Families, with a copy of it made at once.
	var returned []struct{ got, copy []Family }
	families := func() []Family {
		got := agg.Families()
		cp := slices.Clone(got)
		for i := range cp {
			cp[i].Samples = slices.Clone(cp[i].Samples)
			for j := range cp[i].Samples {
				cp[i].Samples[j].Labels = slices.Clone(cp[i].Samples[j].Labels)
			}
		}
		returned = append(returned, struct{ got, copy []Family }{got, cp})
		return got
	}
	var last []Shard
	var lastWant []Family
	revalued, refused := 0, 0
	for round := range 60 {
		if last == nil || rnd.IntN(4) == 0 {
			// A read of another shape: Reset (families made anew for
			// another kind of shard; now and then the forget path).
			n := 1 + rnd.IntN(25)
			if rnd.IntN(8) == 0 {
				n = 1
			}
			cur := g.read(n)
			agg.Reset()
			for _, sh := range cur {
				_ = agg.AddShard(sh.ID, sh.Entries)
			}
			want := aggregated(cur)
			if rnd.IntN(4) != 0 { // Families not called every read
				sameRead(t, round, families(), want)
			}
			last, lastWant = cur, want
			continue
		}
		cur := slices.Clone(last)
		var changed []int
		for i := range cur {
			if rnd.IntN(3) != 0 {
				continue
			}
			es := slices.Clone(cur[i].Entries)
			for j := range es {
				switch rnd.IntN(6) {
				case 0:
					es[j].Value = g.value()
				case 1:
					es[j].Value = math.Copysign(0, -1)
				case 2:
					es[j].Timestamp = float64(rnd.IntN(50))
				}
			}
			cur[i].Entries = es
			changed = append(changed, i)
		}
		structural := rnd.IntN(5) == 0 && len(cur) > 0
		if structural {
			i := rnd.IntN(len(cur))
			es := slices.Clone(cur[i].Entries)
			switch rnd.IntN(3) {
			case 0: // a key parsed anew: another pointer
				k, err := store.ParseKey(es[0].Key.Text)
				if err != nil {
					t.Fatal(err)
				}
				g.nextID++
				k.ID = g.nextID
				es[0].Key, es[0].KeyID = k, k.ID
			case 1: // an entry more
				es = append(es, es[0])
			case 2: // another shard
				cur[i].ID.PID += "0"
			}
			cur[i].Entries = es
			if !slices.Contains(changed, i) {
				changed = append(changed, i)
			}
		}
		want := aggregated(cur)
		if agg.Revalue(last, cur, changed) {
			if structural {
				t.Fatalf("round %d: a read with another key or shard revalued", round)
			}
			revalued++
		} else {
			if !structural {
				t.Fatalf("round %d: values written in place only, Revalue refused", round)
			}
			refused++
			sameRead(t, round, families(), lastWant) // unchanged
			agg.Reset()
			for _, sh := range cur {
				_ = agg.AddShard(sh.ID, sh.Entries)
			}
		}
		if rnd.IntN(4) != 0 {
			sameRead(t, round, families(), want)
		}
		last, lastWant = cur, want
		// What Families returned before is never changed.
		for _, r := range returned {
			sameRead(t, round, r.got, r.copy)
		}
	}
	if revalued == 0 {
		t.Fatal("nothing revalued")
	}
}
