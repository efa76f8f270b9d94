package render

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
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
			for _, procs := range []int{runtime.GOMAXPROCS(0), 1, 3} {
				prev := runtime.GOMAXPROCS(procs)
				var got bytes.Buffer
				err := f.Stream(&got, agg.Streamer())
				runtime.GOMAXPROCS(prev)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Bytes(), want.Bytes()) {
					t.Fatalf("GOMAXPROCS %d: streamed output (%d bytes) differs from the whole output (%d bytes) at byte %d", procs, got.Len(), want.Len(), firstDiff(got.Bytes(), want.Bytes()))
				}
			}
		})
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
			got, plain := e.RejectedHeaders(agg)
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
