package tui

import (
	"context"
	"io"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/render"
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

// BenchmarkTopVsDump compares, in turns in one run, on scripts/prodstore.py's
// big store (48 workers, 2.2M samples, 174,740 series, written by the real
// prometheus_client; $PROMSTORE_BENCH_DIR for another):
//
//   - dump: what promstore dump does in-process: a new store reader, the
//     plain aggregator, Python's exposition streamed to nowhere;
//   - refresh: a refresh of the interactive top (per-process breakdowns
//     kept) by a source that has read the store before, every shard read
//     again (as when every process runs);
//   - refresh-kept: the same with the reads kept (KeepReads, as top
//     does), every pid being dead here: the dead shards are not read again;
//   - refresh-written: what top's refresh costs when every process runs
//     and writes: reads kept, on a copy of the store whose every pid is
//     taken for running, each shard with a value written in place before
//     each refresh (untimed), so that every shard is copied, hashed and
//     parsed again and everything aggregated again;
//   - once-read and once-print: top --once's read and its printing of
//     every row.
//
// It reports the CPU time of each and the ratios refresh/dump,
// refresh-kept/dump, refresh-written/dump and once-print/once-read.
func BenchmarkTopVsDump(b *testing.B) {
	dir := testenv.ProdStore(b, "big")
	ctx := context.Background()
	open := func(keep bool) *filestore.Store {
		st, err := filestore.Open(ctx, dir, filestore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		st.KeepReads(keep)
		b.Cleanup(func() { st.Close() })
		return st
	}
	client := testenv.PythonClient(b)
	opts := SourceOptions{PythonClient: client}
	live, kept := NewStoreSource(open(false), opts), NewStoreSource(open(true), opts)
	copied, shards := testenv.CopyUsed(b, dir)
	running, err := filestore.Open(ctx, copied, filestore.Options{Alive: func(string) store.Liveness { return store.AliveYes }})
	if err != nil {
		b.Fatal(err)
	}
	running.KeepReads(true)
	b.Cleanup(func() { running.Close() })
	written := NewStoreSource(running, opts)
	for _, src := range []Source{live, kept, written} { // the first read of each
		if _, err := src.Snapshot(ctx); err != nil {
			b.Fatal(err)
		}
	}
	cpu := func(fn func()) time.Duration {
		// The garbage of the phase before is collected first, untimed:
		// the collection it would trigger marks the whole heap of this
		// benchmark (two sources, each with every series' processes,
		// and a dump's), far more than a top process holds, and would
		// be charged to whichever phase runs then.
		runtime.GC()
		start := testenv.CPUTime()
		fn()
		return testenv.CPUTime() - start
	}
	var dump, refresh, refreshKept, refreshWritten, onceRead, oncePrint time.Duration
	rows, round := 0, 0
	for b.Loop() {
		dump += cpu(func() {
			st := open(false)
			agg := aggregate.NewFor(client)
			if err := store.ScanShards(ctx, st, agg.AddShard); err != nil {
				b.Fatal(err)
			}
			// As dump writes a store of legacy names: the families
			// streamed.
			if err := (render.Format{Exposition: render.Exposition{Escaping: model.UnderscoreEscaping, Client: client}}).Stream(io.Discard, agg.Streamer()); err != nil {
				b.Fatal(err)
			}
		})
		refresh += cpu(func() {
			if _, err := live.Snapshot(ctx); err != nil {
				b.Fatal(err)
			}
		})
		refreshKept += cpu(func() {
			if _, err := kept.Snapshot(ctx); err != nil {
				b.Fatal(err)
			}
		})
		round++
		for _, path := range shards {
			testenv.WriteFirstValue(b, path, float64(round))
		}
		refreshWritten += cpu(func() {
			if _, err := written.Snapshot(ctx); err != nil {
				b.Fatal(err)
			}
		})
		var tab *Table
		onceRead += cpu(func() {
			var err error
			if tab, err = ReadTable(ctx, open(false), opts); err != nil {
				b.Fatal(err)
			}
		})
		oncePrint += cpu(func() {
			if err := tab.Print(io.Discard); err != nil {
				b.Fatal(err)
			}
		})
		rows = tab.Series()
	}
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 / float64(b.N) }
	b.ReportMetric(ms(dump), "dump-cpu-ms/op")
	b.ReportMetric(ms(refresh), "refresh-cpu-ms/op")
	b.ReportMetric(ms(refreshKept), "refresh-kept-cpu-ms/op")
	b.ReportMetric(float64(refresh)/float64(dump), "refresh/dump")
	b.ReportMetric(float64(refreshKept)/float64(dump), "refresh-kept/dump")
	b.ReportMetric(ms(refreshWritten), "refresh-written-cpu-ms/op")
	b.ReportMetric(float64(refreshWritten)/float64(dump), "refresh-written/dump")
	b.ReportMetric(ms(onceRead), "once-read-cpu-ms/op")
	b.ReportMetric(ms(oncePrint), "once-print-cpu-ms/op")
	b.ReportMetric(float64(oncePrint)/float64(onceRead), "once-print/once-read")
	b.ReportMetric(float64(rows), "rows")
}
