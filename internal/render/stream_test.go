package render

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/store"
)

// streamStore returns an aggregator of shards of pids processes: a
// histogram family of more samples than several batches and output
// chunks, a counter with _created samples (moved under a header of their
// own in the text format), a gauge of mode all whose series are named
// <family>_gsum and _gcount (moved too), summaries, and many small gauge
// families (more families than workers look ahead); extra, when not nil,
// adds a sample of name and labels to every shard.
func streamStore(t *testing.T, pids int, extra func(pid int) (kind store.Kind, family, name string, labels []store.Label)) *aggregate.Aggregator {
	t.Helper()
	keys := map[string]*store.Key{}
	key := func(family, name string, labels []store.Label) *store.Key {
		text := store.EncodeKey(family, name, labels, "Help of "+family+".")
		k := keys[text]
		if k == nil {
			var err error
			if k, err = store.ParseKey(text); err != nil {
				t.Fatal(err)
			}
			keys[text] = k
		}
		return k
	}
	rng := rand.New(rand.NewPCG(1, 2))
	agg := aggregate.New()
	add := func(kind store.Kind, mode string, pid int, entries []store.Entry) {
		t.Helper()
		if err := agg.AddShard(store.ShardID{Kind: kind, Mode: mode, PID: fmt.Sprint(1000 + pid)}, entries); err != nil {
			t.Fatal(err)
		}
	}
	les := []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf"}
	for pid := range pids {
		var hist, counter, gauge, summary []store.Entry
		for r := range 800 {
			route := store.Label{Name: "route", Value: fmt.Sprintf("/api/v%d/items/%d/", r%3, r)}
			method := store.Label{Name: "method", Value: []string{"GET", "POST"}[r%2]}
			for _, le := range les {
				hist = append(hist, store.Entry{Key: key("latency", "latency_bucket", []store.Label{{Name: "le", Value: le}, method, route}), Value: float64(rng.IntN(5))})
			}
			hist = append(hist, store.Entry{Key: key("latency", "latency_sum", []store.Label{method, route}), Value: rng.Float64()})
			counter = append(counter,
				store.Entry{Key: key("requests", "requests_total", []store.Label{method, route}), Value: float64(rng.IntN(100))},
				store.Entry{Key: key("requests", "requests_created", []store.Label{method, route}), Value: 1.7e9 + float64(r)})
			if r%40 == pid%40 {
				gauge = append(gauge,
					store.Entry{Key: key("queue", "queue_gsum", []store.Label{route}), Value: float64(r)},
					store.Entry{Key: key("queue", "queue_gcount", []store.Label{route}), Value: 1})
			}
			if r%10 == 0 {
				summary = append(summary,
					store.Entry{Key: key("size", "size_count", []store.Label{route}), Value: 2},
					store.Entry{Key: key("size", "size_sum", []store.Label{route}), Value: rng.Float64() * 1e6})
			}
		}
		rng.Shuffle(len(counter), func(i, j int) { counter[i], counter[j] = counter[j], counter[i] })
		add(store.KindHistogram, "", pid, hist)
		add(store.KindCounter, "", pid, counter)
		add(store.KindGauge, "all", pid, gauge)
		add(store.KindSummary, "", pid, summary)
		var small []store.Entry
		for f := range 30 {
			name := fmt.Sprintf("pool_%02d_size", f)
			small = append(small, store.Entry{Key: key(name, name, nil), Value: float64(pid + f)})
		}
		if extra != nil {
			kind, family, name, labels := extra(pid)
			add(kind, "max", pid, []store.Entry{{Key: key(family, name, labels), Value: 1}})
		}
		add(store.KindGauge, "max", pid, small)
	}
	return agg
}

// TestStreamMatchesWrite: Format.Stream writes byte for byte what Write
// writes of all the families built at once, in every format, on several
// cores and on one.
func TestStreamMatchesWrite(t *testing.T) {
	agg := streamStore(t, 6, nil)
	formats := map[string]Format{
		"text":               {Exposition: Exposition{Escaping: model.UnderscoreEscaping, Client: pyclient.Latest}},
		"openmetrics":        {Exposition: Exposition{OpenMetrics: true, Escaping: model.UnderscoreEscaping, Client: pyclient.Latest}},
		"openmetrics no EOF": {Exposition: Exposition{OpenMetrics: true, NoEOF: true, Escaping: model.UnderscoreEscaping, Client: pyclient.Latest}},
		"json":               {JSON: true, Exposition: Exposition{Client: pyclient.Latest}},
		"json 0.16":          {JSON: true, Exposition: Exposition{Client: pyclient.Oldest}},
	}
	fams := agg.Families()
	if n := len(fams[0].Samples); n < 4*aggregate.StreamBatch {
		t.Fatalf("largest family has %d samples, want several batches", n)
	}
	for name, f := range formats {
		t.Run(name, func(t *testing.T) {
			var want bytes.Buffer
			if err := f.Write(&want, fams); err != nil {
				t.Fatal(err)
			}
			if want.Len() < 8*chunkBytes {
				t.Fatalf("output of %d bytes, want several chunks", want.Len())
			}
			sameStreamed(t, name, f, agg, want.Bytes(), runtime.GOMAXPROCS(0), 1, 3)
		})
	}
}

// sameStreamed fails t unless Stream writes want of agg in format f on
// each number of cores of procs.
func sameStreamed(t *testing.T, what string, f Format, agg *aggregate.Aggregator, want []byte, procs ...int) {
	t.Helper()
	for _, p := range procs {
		prev := runtime.GOMAXPROCS(p)
		var got bytes.Buffer
		err := f.Stream(&got, agg.Streamer())
		runtime.GOMAXPROCS(prev)
		if err != nil {
			t.Fatal(err)
		}
		if g := got.Bytes(); !bytes.Equal(g, want) {
			i := firstDiff(g, want)
			t.Fatalf("%s, GOMAXPROCS %d: streamed output (%d bytes) differs from the whole output (%d bytes) at byte %d: %q, want %q",
				what, p, len(g), len(want), i, g[max(0, i-80):min(len(g), i+80)], want[max(0, i-80):min(len(want), i+80)])
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// failAfter fails every write once n bytes are written.
type failAfter struct{ n int }

func (w *failAfter) Write(p []byte) (int, error) {
	if w.n < len(p) {
		return 0, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

// TestStreamWriteError: a failed write ends the stream with its error
// (the workers stop; no goroutine waits forever).
func TestStreamWriteError(t *testing.T) {
	agg := streamStore(t, 3, nil)
	f := Format{Exposition: Exposition{Escaping: model.UnderscoreEscaping, Client: pyclient.Latest}}
	var all bytes.Buffer
	if err := f.Stream(&all, agg.Streamer()); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 100 << 10, all.Len() / 2, all.Len() - 1} {
		before := runtime.NumGoroutine()
		err := f.Stream(&failAfter{n: n}, agg.Streamer())
		if err == nil || err.Error() != "disk full" {
			t.Errorf("after %d bytes: error %v, want disk full", n, err)
		}
		// The runtime may start goroutines of its own meanwhile: wait a
		// little for the count to come back.
		after := runtime.NumGoroutine()
		for deadline := time.Now().Add(2 * time.Second); after > before && time.Now().Before(deadline); after = runtime.NumGoroutine() {
			time.Sleep(10 * time.Millisecond)
		}
		if after > before {
			t.Errorf("after %d bytes: %d goroutines left running, %d before", n, after, before)
		}
	}
}

// TestRejectedHeaders: where every name is written as it is, the
// families' headers give what Rejected finds with all the samples (two
// families written under one name); a name that escaping changes leaves
// the question to Rejected.
func TestRejectedHeaders(t *testing.T) {
	e := Exposition{Escaping: model.UnderscoreEscaping, Client: pyclient.Latest}
	cases := []struct {
		name     string
		extra    func(pid int) (store.Kind, string, string, []store.Label)
		plain    bool
		problems int
	}{
		{"legacy names", nil, true, 0},
		{"two families under one header", func(int) (store.Kind, string, string, []store.Label) {
			// gauge "requests_total" and counter "requests" are both
			// written "# HELP requests_total".
			return store.KindGauge, "requests_total", "requests_total", nil
		}, true, 1},
		{"label name escaped", func(pid int) (store.Kind, string, string, []store.Label) {
			return store.KindGauge, "up", "up", []store.Label{{Name: "r-" + fmt.Sprint(pid%2), Value: "x"}}
		}, false, 0},
		{"family name escaped", func(int) (store.Kind, string, string, []store.Label) {
			return store.KindGauge, "app.up", "app.up", nil
		}, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			agg := streamStore(t, 2, c.extra)
			got, plain := e.RejectedHeaders(agg.Streamer())
			want := e.Rejected(agg.Families())
			if plain != c.plain {
				t.Fatalf("plain = %v, want %v", plain, c.plain)
			}
			if plain && !slices.Equal(got, want) {
				t.Errorf("problems %q, want Rejected's %q", got, want)
			}
			if plain && len(got) != c.problems {
				t.Errorf("%d problems %q, want %d", len(got), got, c.problems)
			}
		})
	}
}

// randomStore returns an aggregator of random shards of every kind and
// gauge mode: families whose names collide once escaped or suffixed,
// label values to escape, bounds that do not parse, NaN values, samples
// Python moves under headers of their own; with legacy false, names that
// escaping changes too; with big set, thousands of samples per shard and
// per-process gauges of thousands of pids (families of many batches).
func randomStore(t *testing.T, seed uint64, legacy, big bool) *aggregate.Aggregator {
	t.Helper()
	rnd := rand.New(rand.NewPCG(seed, 7))
	var nextID uint32
	texts := map[string]*store.Key{}
	mk := func(family, name, help string, labels []store.Label) *store.Key {
		text := store.EncodeKey(family, name, labels, help)
		if k := texts[text]; k != nil {
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
	famNames := []string{"a", "a_total", "b", "b_created", "c:d", "req", "req_total", "z9"}
	if !legacy {
		famNames = append(famNames, "x.y", "x_y", "é", "1abc")
	}
	lnames := []string{"method", "route", "code"}
	if !legacy {
		lnames = append(lnames, "r-", "r_", "é")
	}
	vals := []string{"GET", "a\"b", "a\\b", "x\ny", "", "é", "long value long value long value"}
	labels := func() []store.Label {
		var ls []store.Label
		for _, n := range lnames {
			if rnd.IntN(3) == 0 {
				ls = append(ls, store.Label{Name: n, Value: vals[rnd.IntN(len(vals))]})
			}
		}
		if big {
			ls = append(ls, store.Label{Name: "i", Value: strconv.Itoa(rnd.IntN(3000))})
		}
		return ls
	}
	suffixes := []string{"", "_total", "_created", "_gsum", "_gcount", "_sum", "_count", "_bucket", "_info"}
	les := []string{"0.1", "1.0", "+Inf", "NaN", "abc", "1e3"}
	kinds := []store.Kind{store.KindCounter, store.KindGauge, store.KindHistogram, store.KindSummary}
	agg := aggregate.New()
	nshards := 2 + rnd.IntN(30)
	if big {
		nshards = 25
	}
	for s := 0; s < nshards; s++ {
		kind := kinds[rnd.IntN(len(kinds))]
		mode := ""
		if kind == store.KindGauge {
			mode = store.GaugeModes[rnd.IntN(len(store.GaugeModes))]
		}
		var es []store.Entry
		n := 1 + rnd.IntN(40)
		if big {
			n = 1000 + rnd.IntN(1500)
		}
		for range n {
			fam := famNames[rnd.IntN(len(famNames))]
			name := fam + suffixes[rnd.IntN(len(suffixes))]
			ls := labels()
			if rnd.IntN(3) == 0 {
				ls = append(ls, store.Label{Name: "le", Value: les[rnd.IntN(len(les))]})
			}
			v := math.Round(rnd.Float64()*1e4) / 10
			if rnd.IntN(20) == 0 {
				v = math.NaN()
			}
			k := mk(fam, name, "Help \\ \n \" of "+fam, ls)
			es = append(es, store.Entry{Key: k, KeyID: k.ID, Value: v, Timestamp: float64(rnd.IntN(10))})
		}
		pid := strconv.Itoa(1 + rnd.IntN(40))
		if big && kind == store.KindGauge {
			pid = strconv.Itoa(rnd.IntN(5000))
		}
		_ = agg.AddShard(store.ShardID{Kind: kind, Mode: mode, PID: pid}, es)
	}
	return agg
}

// TestStreamMatchesWriteRandom: on random stores, Stream writes what Write
// writes of Families in every format and escaping, on one core and three;
// RejectedHeaders, when it answers, answers as Rejected; Families called
// twice gives the same families.
func TestStreamMatchesWriteRandom(t *testing.T) {
	formats := map[string]Format{}
	for _, esc := range []model.EscapingScheme{model.UnderscoreEscaping, model.NoEscaping, model.DotsEscaping, model.ValueEncodingEscaping} {
		for _, om := range []bool{false, true} {
			formats[fmt.Sprintf("escaping %d, openmetrics %v", esc, om)] = Format{Exposition: Exposition{OpenMetrics: om, Escaping: esc, Client: pyclient.Latest}}
		}
	}
	formats["openmetrics without EOF"] = Format{Exposition: Exposition{OpenMetrics: true, NoEOF: true, Escaping: model.UnderscoreEscaping, Client: pyclient.Latest}}
	formats["json"] = Format{JSON: true, Exposition: Exposition{Client: pyclient.Latest}}
	formats["json-old"] = Format{JSON: true, Exposition: Exposition{Client: pyclient.Oldest}}
	nseeds := uint64(30)
	for seed := range nseeds {
		big := seed%15 == 0
		legacy := seed%2 == 0
		agg := randomStore(t, seed, legacy, big)
		fams := agg.Families()
		if big {
			largest := 0
			for _, f := range fams {
				largest = max(largest, len(f.Samples))
			}
			if largest <= aggregate.StreamBatch {
				t.Fatalf("seed %d: largest family of %d samples, want more than a batch", seed, largest)
			}
		}
		for name, f := range formats {
			var want bytes.Buffer
			if err := f.Write(&want, fams); err != nil {
				t.Fatal(err)
			}
			sameStreamed(t, fmt.Sprintf("seed %d, %s", seed, name), f, agg, want.Bytes(), 1, 3)
			gotP, plain := f.RejectedHeaders(agg.Streamer())
			wantP := f.Rejected(fams)
			if plain && !slices.Equal(gotP, wantP) {
				t.Fatalf("seed %d %s: RejectedHeaders %q, Rejected %q", seed, name, gotP, wantP)
			}
			if legacy && !plain {
				t.Fatalf("seed %d: legacy names not plain", seed)
			}
		}
		again := agg.Families()
		var a, b bytes.Buffer
		if err := JSON(&a, fams); err != nil {
			t.Fatal(err)
		}
		if err := JSON(&b, again); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Fatalf("seed %d: Families differs on second call", seed)
		}
	}
}
