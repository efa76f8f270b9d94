package filestore

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/promstore/promstore/internal/store"
)

// randPool is the key texts of one kind, in their "program order".
func randPool(rng *rand.Rand, kind string, n int) []string {
	var out []string
	for i := range n {
		v := "/" + kind + "/" + strconv.Itoa(i) + strings.Repeat("x", rng.IntN(120))
		out = append(out, store.EncodeKey("m_"+kind, "m_"+kind+"_total", []store.Label{{Name: "route", Value: v}}, "Help."))
	}
	return out
}

// TestStreamRandomWindows: stream through small windows and key buffers,
// against parse, with a key cache that holds some of the keys, guesses
// right, wrong and partly right.
func TestStreamRandomWindows(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pool := randPool(rng, "counter", 3000)
	for try := range 60 {
		keys := newKeyCache(nil, new(atomic.Uint32))
		// The cache holds a random part of the pool.
		var known []string
		for _, i := range rng.Perm(len(pool))[:rng.IntN(len(pool))] {
			known = append(known, pool[i])
		}
		if len(known) > 0 {
			kp := parser{keys: keys}
			kb := shardBytes(t, 16, known...)
			if _, _, perr := kp.parse(kb, int64(len(kb)), nil); perr != nil {
				t.Fatal(perr)
			}
		}
		var texts []string
		for _, i := range rng.Perm(len(pool))[:1+rng.IntN(len(pool))] {
			texts = append(texts, pool[i])
		}
		layout := []int{8, 16}[rng.IntN(2)]
		data := shardBytes(t, layout, texts...)
		var guess []guess
		if rng.IntN(2) == 0 {
			g := append([]string(nil), texts...)
			for range rng.IntN(len(g) + 1) {
				i, j := rng.IntN(len(g)), rng.IntN(len(g))
				g[i], g[j] = g[j], g[i]
			}
			guess = guessesOf(t, keys, shardBytes(t, 16, g...))
		}
		window := []int{16, 100, 333, 4096, 70000}[rng.IntN(5)]
		flushAt := []int{64, 700, 5000, 1 << 20}[rng.IntN(4)]
		f := writeTemp(t, data)
		sp := parser{keys: keys, guess: guess, hint: layout, window: window, flushAt: flushAt}
		prefix := []entry{{Value: 1}, {Value: 2}} // entries of the unit's shards before
		got, gl, ok := sp.stream(f, int64(len(data)), prefix)
		if !ok || gl != layout {
			t.Fatalf("try %d: stream ok %v layout %d", try, ok, gl)
		}
		got = got[2:]
		wp := parser{keys: keys, guess: guess, hint: layout}
		want, _, perr := wp.parse(data, int64(len(data)), nil)
		if perr != nil {
			t.Fatal(perr)
		}
		if len(got) != len(texts) || len(want) != len(texts) {
			t.Fatalf("try %d: %d and %d entries, want %d", try, len(got), len(want), len(texts))
		}
		for i := range texts {
			if got[i].Key == nil || got[i].Key.Text != texts[i] || got[i].Key != want[i].Key || got[i].KeyID != got[i].Key.ID || got[i].Value != float64(i+1) {
				t.Fatalf("try %d (window %d flush %d): entry %d: %+v, want %q (%+v)", try, window, flushAt, i, got[i], texts[i], want[i])
			}
		}
		if sp.hits != wp.hits {
			t.Fatalf("try %d: hits %d and %d", try, sp.hits, wp.hits)
		}
	}
}

// TestResolveAbsentSameHash: a text whose hash's first slot holds
// another text (of the same hash), and that is itself absent, is left
// to lookupPending; one present later in the probe is found.
func TestResolveAbsentSameHash(t *testing.T) {
	c := newKeyCache(nil, nil)
	mk := func(i int) *store.Key {
		k, err := store.ParseKey(string(keyText(i)))
		if err != nil {
			t.Fatal(err)
		}
		k.ID = uint32(i + 1)
		return k
	}
	h3 := store.HashBytes(keyText(3))
	h4 := store.HashBytes(keyText(4))
	c.tab.add(h3, mk(0), c.gen) // key 0 under text 3's hash
	c.tab.add(h4, mk(1), c.gen) // key 1 under text 4's hash
	k4 := mk(4)
	c.tab.add(h4, k4, c.gen) // then key 4 itself
	var b missBatch
	out := make([]entry, 2)
	b.add(keyText(3), 0, 0)
	b.add(keyText(4), 1, 0)
	c.resolve(&b, out)
	if out[0].Key != nil || out[1].Key != k4 || out[1].KeyID != 5 {
		t.Fatalf("got %+v %+v", out[0], out[1])
	}
}
