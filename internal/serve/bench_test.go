package serve

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
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
// running, so their shards are read again on every scrape. It reports
// the CPU time of each kind of scrape and kept/full, their ratio.
func BenchmarkScrapeKept(b *testing.B) {
	dir := testenv.ProdStore(b, "churn")
	tenth := func(pid string) store.Liveness {
		n, err := strconv.Atoi(pid)
		switch {
		case err != nil:
			return store.AliveUnknown
		case n%10 == 0:
			return store.AliveYes
		}
		return store.AliveNo
	}
	handler := func(keep bool) http.Handler {
		st, err := filestore.Open(context.Background(), dir, filestore.Options{Alive: tenth})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		st.KeepReads(keep)
		s, err := New(Options{Store: st})
		if err != nil {
			b.Fatal(err)
		}
		return s.Handler()
	}
	full, kept := handler(false), handler(true)
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	scrape := func(h http.Handler) (time.Duration, int) {
		w := &countingWriter{h: http.Header{}}
		start := testenv.CPUTime()
		h.ServeHTTP(w, req)
		if w.code != 0 && w.code != http.StatusOK {
			b.Fatalf("scrape: HTTP %d", w.code)
		}
		return testenv.CPUTime() - start, w.n
	}
	// The first scrapes: the kept server maps the dead shards.
	_, fullBytes := scrape(full)
	if _, n := scrape(kept); n != fullBytes {
		b.Fatalf("kept scrape %d bytes, full %d", n, fullBytes)
	}
	var fullCPU, keptCPU time.Duration
	for b.Loop() {
		c, n := scrape(full)
		fullCPU += c
		if n != fullBytes {
			b.Fatalf("full scrape %d bytes, first %d", n, fullBytes)
		}
		c, n = scrape(kept)
		keptCPU += c
		if n != fullBytes {
			b.Fatalf("kept scrape %d bytes, full %d", n, fullBytes)
		}
	}
	b.ReportMetric(float64(fullCPU)/1e6/float64(b.N), "full-cpu-ms/op")
	b.ReportMetric(float64(keptCPU)/1e6/float64(b.N), "kept-cpu-ms/op")
	b.ReportMetric(float64(keptCPU)/float64(fullCPU), "kept/full")
}

type countingWriter struct {
	h    http.Header
	n    int
	code int
}

func (w *countingWriter) Header() http.Header         { return w.h }
func (w *countingWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
func (w *countingWriter) WriteHeader(code int)        { w.code = code }
