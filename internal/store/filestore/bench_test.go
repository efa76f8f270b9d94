package filestore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/testenv"
)

// benchStore writes a store of procs processes with series samples per
// shard into a temporary directory with WriteShard: per process a
// counter, a histogram and a gauge (livesum) shard, keys of realistic
// length, the same key texts in every process as in a real deployment.
// It returns the directory, the sample count and the bytes in use.
func benchStore(b *testing.B, procs, series int) (string, int, int64) {
	b.Helper()
	dir := b.TempDir()
	st := openDir(b, dir, 16)
	help := "Requests handled by the application server, by route and status code."
	var counter, hist, gauge []*store.Key
	for i := range series {
		route := fmt.Sprintf("/api/v1/customers/%d/orders", i)
		counter = append(counter, mustKey(b, store.EncodeKey("http_requests", "http_requests_total",
			[]store.Label{{Name: "code", Value: strconv.Itoa(200 + i%5)}, {Name: "method", Value: "GET"}, {Name: "route", Value: route}}, help)))
		le := []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "+Inf"}[i%9]
		hist = append(hist, mustKey(b, store.EncodeKey("http_latency_seconds", "http_latency_seconds_bucket",
			[]store.Label{{Name: "le", Value: le}, {Name: "route", Value: fmt.Sprintf("/api/v1/customers/%d/orders", i/9)}}, "Latency.")))
		gauge = append(gauge, mustKey(b, store.EncodeKey("inflight", "inflight",
			[]store.Label{{Name: "route", Value: route}}, "In flight.")))
	}
	n := 0
	for p := range procs {
		pid := strconv.Itoa(10000 + p)
		for _, sh := range []struct {
			id   store.ShardID
			keys []*store.Key
		}{
			{store.ShardID{Kind: store.KindCounter, PID: pid}, counter},
			{store.ShardID{Kind: store.KindHistogram, PID: pid}, hist},
			{store.ShardID{Kind: store.KindGauge, Mode: "livesum", PID: pid}, gauge},
		} {
			samples := make([]store.Sample, len(sh.keys))
			for i, k := range sh.keys {
				samples[i] = store.Sample{Key: k, Value: float64(i*p%97) + 0.5, Timestamp: 1.7e9}
			}
			if err := st.WriteShard(context.Background(), sh.id, samples); err != nil {
				b.Fatal(err)
			}
			n += len(samples)
		}
	}
	var used int64
	files, _ := filepath.Glob(filepath.Join(dir, "*.db"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		used += int64(int32(uint32(data[0]) | uint32(data[1])<<8 | uint32(data[2])<<16 | uint32(data[3])<<24))
	}
	return dir, n, used
}

// BenchmarkScan reads 64 processes x 3 shards x 10k samples (about 130 MB
// in use) per iteration.
func BenchmarkScan(b *testing.B) {
	dir, n, used := benchStore(b, 64, 10000)
	st := openDir(b, dir, 0)
	b.SetBytes(used)
	b.ReportAllocs()
	cpu := testenv.CPUTime()
	for b.Loop() {
		got := 0
		err := st.Scan(context.Background(), func(store.Sample) error {
			got++
			return nil
		})
		if err != nil || got != n {
			b.Fatalf("scan: %d samples, %v", got, err)
		}
	}
	b.ReportMetric(float64(testenv.CPUTime()-cpu)/1e6/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkScanAggregate is a dump without rendering: scan into the
// aggregator.
func BenchmarkScanAggregate(b *testing.B) {
	dir, n, used := benchStore(b, 64, 10000)
	st := openDir(b, dir, 0)
	b.SetBytes(used)
	b.ReportAllocs()
	cpu := testenv.CPUTime()
	for b.Loop() {
		agg := aggregate.New()
		if err := st.ScanShards(context.Background(), agg.AddShard); err != nil {
			b.Fatal(err)
		}
		if len(agg.Families()) != 3 {
			b.Fatal("wrong families")
		}
	}
	b.ReportMetric(float64(testenv.CPUTime()-cpu)/1e6/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkParseShard parses one 10k-sample shard from memory, with its
// keys already cached as in every shard after the first.
func BenchmarkParseShard(b *testing.B) {
	dir, _, _ := benchStore(b, 1, 10000)
	data, err := os.ReadFile(filepath.Join(dir, "counter_10000.db"))
	if err != nil {
		b.Fatal(err)
	}
	p := parser{keys: newKeyCache(nil, nil)}
	var out []entry
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	cpu := testenv.CPUTime()
	for b.Loop() {
		var perr *parseError
		out, _, perr = p.parse(data, int64(len(data)), out[:0])
		if perr != nil {
			b.Fatal(perr)
		}
	}
	b.ReportMetric(float64(testenv.CPUTime()-cpu)/1e6/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(len(out))*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkScanDir scans and aggregates the store in $PROMSTORE_BENCH_DIR,
// e.g. the one scripts/bench-dump.sh writes with the real
// prometheus_client; it is skipped without it.
func BenchmarkScanDir(b *testing.B) {
	dir := os.Getenv("PROMSTORE_BENCH_DIR")
	if dir == "" {
		b.Skip("set PROMSTORE_BENCH_DIR to a PROMETHEUS_MULTIPROC_DIR to benchmark it")
	}
	st := openDir(b, dir, 0)
	for _, agg := range []bool{false, true} {
		b.Run(map[bool]string{false: "scan", true: "scan+aggregate"}[agg], func(b *testing.B) {
			var n int
			cpu := testenv.CPUTime()
			for b.Loop() {
				n = 0
				a := aggregate.New()
				// As dump reads: a shard at once.
				err := st.ScanShards(context.Background(), func(id store.ShardID, entries []store.Entry) error {
					n += len(entries)
					if agg {
						return a.AddShard(id, entries)
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(testenv.CPUTime()-cpu)/1e6/float64(b.N), "cpu-ms/op")
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
