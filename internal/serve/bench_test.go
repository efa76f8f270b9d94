package serve

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/testenv"
)

// benchStore writes procs counter and gauge shards of series samples each
// with the file store's writer.
func benchStore(b *testing.B, procs, series int) *filestore.Store {
	b.Helper()
	ctx := context.Background()
	st, err := filestore.Open(ctx, b.TempDir(), filestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	keys := make([][2]*store.Key, series)
	for i := range keys {
		route := []store.Label{{Name: "route", Value: fmt.Sprintf("/api/v1/items/%d", i)}}
		c, _ := store.ParseKey(store.EncodeKey("requests", "requests_total", route, "Requests."))
		g, _ := store.ParseKey(store.EncodeKey("inflight", "inflight", route, "In flight."))
		keys[i] = [2]*store.Key{c, g}
	}
	for p := range procs {
		for _, id := range []store.ShardID{
			{Kind: store.KindCounter, PID: fmt.Sprint(4100 + p)},
			{Kind: store.KindGauge, Mode: "all", PID: fmt.Sprint(4100 + p)},
		} {
			samples := make([]store.Sample, series)
			for i := range samples {
				k := keys[i][0]
				if id.Kind == store.KindGauge {
					k = keys[i][1]
				}
				samples[i] = store.Sample{Shard: id, Key: k, Value: float64(i + p)}
			}
			if err := st.WriteShard(ctx, id, samples); err != nil {
				b.Fatal(err)
			}
		}
	}
	return st
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkScrape measures whole scrapes of the telemetry handler (read,
// aggregate, encode) on a store of 8 processes x 2000 series (18,000
// output samples); in parallel, scrapes share reads.
func BenchmarkScrape(b *testing.B) {
	st := benchStore(b, 8, 2000)
	s, err := New(Options{Store: st})
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	for _, tc := range []struct {
		name, accept, encoding string
	}{
		{"text", "", ""},
		{"text-gzip", "", "gzip"},
		{"openmetrics", "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", ""},
	} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Accept", tc.accept)
		req.Header.Set("Accept-Encoding", tc.encoding)
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				h.ServeHTTP(&discardWriter{h: http.Header{}}, req)
			}
		})
		b.Run(tc.name+"-parallel", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					h.ServeHTTP(&discardWriter{h: http.Header{}}, req)
				}
			})
		})
	}
}

// BenchmarkScrapeKept compares, in turns in one run, whole scrapes (read,
// aggregate, encode) of a store whose shards are 90% dead by a server that
// keeps its reads (KeepReads, as promstore serve does) and by one that
// reads everything every time. The store is scripts/prodstore.py's churn
// store (2,500 workers x about 10 shards, written by the real
// prometheus_client); the pids of every tenth worker are taken for
// running. The two servers take turns by blocks of scrapes, and only one
// exists at a time (the other closed and its memory collected before,
// untimed): a serve process holds one server, and its collections mark
// and count only its own memory. Each block starts with two scrapes that
// are not timed (the first maps and reads every shard, the second makes
// what later reads revalue from), as a server that has run a while; it
// ends with a scrape by a new server reading everything, not timed, whose
// body must be the block's last. It reports the CPU time of each kind of
// scrape and kept/full, their ratio:
//
//   - unchanged: nothing writes between scrapes (a kept server's read
//     finds every shard unchanged and serves its last snapshot);
//   - live-written: between scrapes, the running tenth's shards each get
//     a value written in place, as their processes serving requests do
//     (the store is the churn store's files linked into a temporary
//     directory, the running tenth's copied); the writing is not timed.
func BenchmarkScrapeKept(b *testing.B) {
	src := testenv.ProdStore(b, "churn")
	running := func(pid string) bool {
		n, err := strconv.Atoi(pid)
		return err == nil && n%10 == 0
	}
	tenth := func(pid string) store.Liveness {
		if _, err := strconv.Atoi(pid); err != nil {
			return store.AliveUnknown
		}
		if running(pid) {
			return store.AliveYes
		}
		return store.AliveNo
	}
	// server returns a server reading dir, keeping its reads or not, and
	// what closes its store.
	server := func(b *testing.B, dir string, keep bool) (http.Handler, func()) {
		st, err := filestore.Open(context.Background(), dir, filestore.Options{Alive: tenth})
		if err != nil {
			b.Fatal(err)
		}
		st.KeepReads(keep)
		s, err := New(Options{Store: st})
		if err != nil {
			st.Close()
			b.Fatal(err)
		}
		return s.Handler(), func() { st.Close() }
	}
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	var size int // of the last body: room for the next
	scrape := func(b *testing.B, h http.Handler) (time.Duration, []byte) {
		w := &bodyWriter{h: http.Header{}, body: make([]byte, 0, size)}
		start := testenv.CPUTime()
		h.ServeHTTP(w, req)
		took := testenv.CPUTime() - start
		if w.code != 0 && w.code != http.StatusOK {
			b.Fatalf("scrape: HTTP %d", w.code)
		}
		size = len(w.body) + 4096
		return took, w.body
	}
	const block = 5
	run := func(b *testing.B, dir string, between func(i int)) {
		var cpu [2]time.Duration // full, kept
		writes := 0
		write := func() {
			if between != nil {
				between(writes)
				writes++
			}
		}
		// scrapeBlock times n scrapes of a new server (after two that
		// are not timed), each after a write, and returns the last body.
		scrapeBlock := func(keep bool, n int) []byte {
			h, closeStore := server(b, dir, keep)
			defer closeStore()
			for range 2 {
				write()
				scrape(b, h)
			}
			var body []byte
			for range n {
				write()
				var c time.Duration
				c, body = scrape(b, h)
				if keep {
					cpu[1] += c
				} else {
					cpu[0] += c
				}
			}
			return body
		}
		b.ResetTimer()
		for left := b.N; left > 0; left -= block {
			n := min(block, left)
			for _, keep := range []bool{false, true} {
				runtime.GC() // the last server's memory, untimed
				b.StartTimer()
				body := scrapeBlock(keep, n)
				b.StopTimer()
				if keep {
					h, closeStore := server(b, dir, false)
					_, want := scrape(b, h)
					closeStore()
					if !bytes.Equal(body, want) {
						b.Fatalf("kept scrape %d bytes, a new full read %d, not the same", len(body), len(want))
					}
				}
			}
		}
		b.ReportMetric(float64(cpu[0])/1e6/float64(b.N), "full-cpu-ms/op")
		b.ReportMetric(float64(cpu[1])/1e6/float64(b.N), "kept-cpu-ms/op")
		b.ReportMetric(float64(cpu[1])/float64(cpu[0]), "kept/full")
	}
	b.Run("unchanged", func(b *testing.B) { run(b, src, nil) })
	b.Run("live-written", func(b *testing.B) {
		dir := b.TempDir()
		ents, err := os.ReadDir(src)
		if err != nil {
			b.Fatal(err)
		}
		var live []string
		for _, e := range ents {
			id, ok, err := filestore.ShardFile(e.Name())
			from, to := filepath.Join(src, e.Name()), filepath.Join(dir, e.Name())
			if !ok || err != nil || !running(id.PID) {
				if err := os.Link(from, to); err != nil {
					b.Fatal(err)
				}
				continue
			}
			data, err := os.ReadFile(from)
			if err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(to, data, 0o644); err != nil {
				b.Fatal(err)
			}
			live = append(live, to)
		}
		// As a directory whose workers started a while ago: its last
		// entry added long enough before the scrapes for their reads to
		// skip listing it while it stays so (filestore.StampMargin).
		time.Sleep(filestore.StampMargin + time.Second/2)
		run(b, dir, func(i int) {
			for _, path := range live {
				testenv.WriteFirstValue(b, path, float64(i+1))
			}
		})
	})
}

// bodyWriter is a ResponseWriter that keeps the body.
type bodyWriter struct {
	h    http.Header
	body []byte
	code int
}

func (w *bodyWriter) Header() http.Header         { return w.h }
func (w *bodyWriter) Write(p []byte) (int, error) { w.body = append(w.body, p...); return len(p), nil }
func (w *bodyWriter) WriteHeader(code int)        { w.code = code }
