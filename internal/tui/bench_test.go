package tui

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/testenv"
)

// writeBigStore writes a file store of four processes whose aggregate is
// 100,000 series: 20,000 counters, 5,000 histograms of 11 buckets (65,000
// series with _count and _sum) and 15,000 livesum gauges; 380,000 samples.
func writeBigStore(tb testing.TB) (*filestore.Store, int) {
	tb.Helper()
	st, err := filestore.Open(context.Background(), tb.TempDir(), filestore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	les := []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "+Inf"}
	var counters, hists, gauges []store.Sample
	for i := 0; i < 20000; i++ {
		counters = append(counters, sample(mkKey("http_requests", "http_requests_total", "route", "/r/"+strconv.Itoa(i), "method", "GET"), float64(i)))
	}
	for i := 0; i < 5000; i++ {
		route := "/r/" + strconv.Itoa(i)
		hists = append(hists, sample(mkKey("http_latency_seconds", "http_latency_seconds_sum", "route", route), 1.5))
		for j, le := range les {
			hists = append(hists, sample(mkKey("http_latency_seconds", "http_latency_seconds_bucket", "le", le, "route", route), float64(j%3)))
		}
	}
	for i := 0; i < 15000; i++ {
		gauges = append(gauges, sample(mkKey("inflight", "inflight", "route", "/r/"+strconv.Itoa(i)), 1))
	}
	for p := 0; p < 4; p++ {
		pid := strconv.Itoa(30000 + p)
		writeShard(tb, st, store.ShardID{Kind: store.KindCounter, PID: pid}, counters...)
		writeShard(tb, st, store.ShardID{Kind: store.KindHistogram, PID: pid}, hists...)
		writeShard(tb, st, store.ShardID{Kind: store.KindGauge, Mode: "livesum", PID: pid}, gauges...)
	}
	return st, 20000 + 5000*13 + 15000
}

// BenchmarkRefresh measures one refresh of top on a 100k-series store:
// the read and aggregation in the tea.Cmd (snapshot) and the model taking
// it in on the UI goroutine (apply: history, rates, sort by value).
func BenchmarkRefresh(b *testing.B) {
	st, want := writeBigStore(b)
	ctx := context.Background()
	src := NewStoreSource(st, SourceOptions{Alive: store.ProcessAlive})
	snap, err := src.Snapshot(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if len(snap.Series) != want || snap.Samples != 380000 {
		b.Fatalf("%d series, %d samples; want %d, 380000", len(snap.Series), snap.Samples, want)
	}

	// The floor: scanning the store into the aggregator, as dump does.
	b.Run("aggregate-only", func(b *testing.B) {
		b.ReportAllocs()
		cpu := testenv.CPUTime()
		for b.Loop() {
			agg := aggregate.New()
			if err := st.Scan(ctx, agg.Add); err != nil {
				b.Fatal(err)
			}
			_ = agg.Families()
		}
		reportCPU(b, cpu)
	})
	b.Run("snapshot", func(b *testing.B) {
		b.ReportAllocs()
		cpu := testenv.CPUTime()
		for b.Loop() {
			if _, err := src.Snapshot(ctx); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu)
	})
	b.Run("apply", func(b *testing.B) {
		m := update(b, update(b, New(src), sized(120, 40)), press("v")...)
		t0 := snap.Time
		b.ReportAllocs()
		cpu := testenv.CPUTime()
		for b.Loop() {
			t0 = t0.Add(2 * time.Second)
			s := *snap
			s.Time = t0
			m = update(b, m, snapshotMsg{snap: &s})
		}
		reportCPU(b, cpu)
	})
	b.Run("full", func(b *testing.B) {
		m := update(b, update(b, New(src), sized(120, 40)), press("v")...)
		b.ReportAllocs()
		cpu := testenv.CPUTime()
		for b.Loop() {
			s, err := src.Snapshot(ctx)
			if err != nil {
				b.Fatal(err)
			}
			m = update(b, m, snapshotMsg{snap: s})
			_ = m.View()
		}
		reportCPU(b, cpu)
	})
}

// reportCPU reports the CPU time (all threads, garbage collection
// included) per iteration since start.
func reportCPU(b *testing.B, start time.Duration) {
	if d := testenv.CPUTime() - start; d > 0 {
		b.ReportMetric(float64(d.Milliseconds())/float64(b.N), "cpu-ms/op")
	}
}
