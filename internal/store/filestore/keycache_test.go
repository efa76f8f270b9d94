package filestore

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/promstore/promstore/internal/store"
)

// keyText returns the sample key text of series i.
func keyText(i int) []byte {
	return []byte(store.EncodeKey("req", "req_total", []store.Label{{Name: "route", Value: "/r/" + strconv.Itoa(i)}}, "Requests."))
}

// lookupAll looks texts up in batches of one lookup call each.
func lookupAll(t *testing.T, c *keyCache, texts [][]byte) []*store.Key {
	t.Helper()
	var b lookupBatch
	b.texts = texts
	if x, err := c.lookup(&b); err != nil {
		t.Fatalf("lookup: text %d: %v", x, err)
	}
	return append([]*store.Key(nil), b.keys...)
}

// TestKeyCache: a text gets one key from scan to scan (with an ID), also
// when it comes twice in one batch and after the table grew; a scan that
// met few of the table's keys leaves only those; a text that does not
// parse is named by its index, the keys before it set.
func TestKeyCache(t *testing.T) {
	var ids atomic.Uint32
	c := newKeyCache(nil, &ids)
	var texts [][]byte
	for i := range 5000 { // grows the table several times
		texts = append(texts, keyText(i))
	}
	texts = append(texts, keyText(7)) // twice in one batch
	first := lookupAll(t, c, texts)
	if first[5000] != first[7] {
		t.Errorf("text 7 twice in a batch: two keys")
	}
	for i, k := range first[:5000] {
		if k.Text != string(texts[i]) || k.ID == 0 {
			t.Fatalf("key %d: text %q ID %d", i, k.Text, k.ID)
		}
	}
	again := lookupAll(t, c, texts[:5000])
	for i := range again {
		if again[i] != first[i] {
			t.Fatalf("key %d: another key on the second lookup", i)
		}
	}
	// The next scan meets 10 of the keys: only they are kept after it.
	ks := c.keys(true, nil)
	c2 := newKeyCache(ks, &ids)
	kept := lookupAll(t, c2, texts[:10])
	for i := range kept {
		if kept[i] != first[i] {
			t.Fatalf("key %d: another key in the next scan", i)
		}
	}
	ks2 := c2.keys(true, nil)
	if ks2.n != 10 {
		t.Errorf("table after a scan that met 10 of 5000 keys holds %d", ks2.n)
	}
	if got := lookupAll(t, newKeyCache(ks2, &ids), texts[:1]); got[0] != first[0] {
		t.Errorf("kept key not found in the pruned table")
	}
	// An incomplete scan keeps the whole table.
	c3 := newKeyCache(ks, &ids)
	lookupAll(t, c3, texts[:1])
	if c3.keys(false, nil).n != ks.n {
		t.Errorf("incomplete scan pruned the table")
	}

	var b lookupBatch
	b.texts = [][]byte{keyText(1), keyText(900001), []byte("not a key"), keyText(900002)}
	x, err := newKeyCache(nil, &ids).lookup(&b)
	if x != 2 || err == nil || b.keys[1] == nil || b.keys[1].Text != string(keyText(900001)) {
		t.Errorf("lookup with a bad text = %d, %v (keys %v), want index 2 and the keys before it", x, err, b.keys)
	}
}

// TestKeySetSameHash: texts of one hash in one probe chain are told
// apart by their text.
func TestKeySetSameHash(t *testing.T) {
	ts := &keySet{slots: make([]keySlot, minSlots)}
	var keys []*store.Key
	for i := range 3 {
		k, err := store.ParseKey(string(keyText(i)))
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		k.ID = uint32(i + 1)
		ts.add(42, k, 0)
	}
	for i, k := range keys {
		if s := ts.find(42, keyText(i), 42); s == nil || s.key != k {
			t.Errorf("text %d of a shared hash: found %v", i, s)
		}
	}
	if s := ts.find(42, keyText(3), 42); s != nil {
		t.Errorf("absent text of a shared hash found: %v", s.key.Text)
	}
}

// TestOwnOrderKeys: shards whose processes write the same series (each a
// run of samples, as a histogram's sum and buckets) in their own orders,
// with series of their own among them, read again and again by one Store:
// every sample gets the key its bytes spell, whether its guess was right,
// its key was met before or is new, in batches cut anywhere.
func TestOwnOrderKeys(t *testing.T) {
	dir := t.TempDir()
	st := openDir(t, dir, LayoutTimestamp)
	ctx := context.Background()
	series := func(r int) []string { // one series: 6 samples in a run
		route := "/r/" + strconv.Itoa(r)
		var names []string
		for _, le := range []string{"0.1", "1.0", "+Inf"} {
			names = append(names, store.EncodeKey("lat", "lat_bucket", []store.Label{{Name: "le", Value: le}, {Name: "route", Value: route}}, "Latency."))
		}
		names = append(names, store.EncodeKey("lat", "lat_sum", []store.Label{{Name: "route", Value: route}}, "Latency."))
		names = append(names, store.EncodeKey("lat", "lat_count", []store.Label{{Name: "route", Value: route}}, "Latency."))
		return append(names, store.EncodeKey("req", "req_total", []store.Label{{Name: "route", Value: route}}, "Requests."))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string][]gotSample{}
	for round := range 4 {
		for pid := 1; pid <= 12; pid++ {
			id := store.ShardID{Kind: store.KindHistogram, PID: strconv.Itoa(100*round + pid)}
			routes := rng.Perm(40)[:10+rng.IntN(30)]
			if pid%3 == 0 {
				routes = append(routes, 1000*(round+1)+pid) // a series of its own
			}
			var samples []store.Sample
			for _, r := range routes {
				names := series(r)
				if rng.IntN(4) == 0 { // a run that starts later
					names = names[rng.IntN(len(names)):]
				}
				for _, n := range names {
					k, err := store.ParseKey(n)
					if err != nil {
						t.Fatal(err)
					}
					samples = append(samples, store.Sample{Shard: id, Key: k, Value: float64(rng.IntN(1000))})
				}
			}
			if err := st.WriteShard(ctx, id, samples); err != nil {
				t.Fatal(err)
			}
			var w []gotSample
			for _, s := range samples {
				w = append(w, gotSample{id.String(), s.Key.Text, s.Value, 0})
			}
			want[id.String()] = w
		}
		got, err := scanAll(t, st)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		byShard := map[string][]gotSample{}
		for _, g := range got {
			byShard[g.shard] = append(byShard[g.shard], g)
		}
		for shard, w := range want {
			if !slices.Equal(byShard[shard], w) {
				t.Fatalf("round %d, shard %s: read\n%v\nwant\n%v", round, shard, byShard[shard], w)
			}
		}
	}
}

// TestResolveSameHash: a batch's text whose hash's first slot holds
// another text of the same hash gets its own key (the whole probe), and
// a text not in the table gets none.
func TestResolveSameHash(t *testing.T) {
	c := newKeyCache(nil, nil)
	var keys []*store.Key
	for i := range 3 {
		k, err := store.ParseKey(string(keyText(i)))
		if err != nil {
			t.Fatal(err)
		}
		k.ID = uint32(i + 1)
		keys = append(keys, k)
	}
	h := store.HashBytes(keyText(2))
	// Keys 0 and 1 filed under text 2's hash, ahead of key 2.
	for _, k := range keys {
		c.tab.add(h, k, c.gen)
	}
	var b missBatch
	out := make([]entry, 4)
	for i, text := range [][]byte{keyText(2), keyText(1), keyText(3), keyText(2)} {
		b.add(text, i, 0)
	}
	c.resolve(&b, out)
	// Text 1 is under another hash than its own: not found, as a text
	// absent from the table (text 3).
	want := []*store.Key{keys[2], nil, nil, keys[2]}
	for i, e := range out {
		if e.Key != want[i] || (e.Key != nil && e.KeyID != e.Key.ID) {
			t.Errorf("entry %d: key %v (ID %d), want %v", i, e.Key, e.KeyID, want[i])
		}
	}
}
