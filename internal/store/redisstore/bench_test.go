package redisstore

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/testenv"
)

// benchKeys is the number of samples (metric hashes) the benchmark writes;
// PROMSTORE_BENCH_KEYS overrides it.
func benchKeys() int {
	if n, err := strconv.Atoi(os.Getenv("PROMSTORE_BENCH_KEYS")); err == nil && n > 0 {
		return n
	}
	return 100000
}

// BenchmarkScan compares Store.Scan with a reader that does what the
// exporter's RedisMultiProcessCollector does, on the same local
// redis-server holding benchKeys() samples over 100 processes.
// Run with -benchtime=1x: one exporter-like pass takes seconds.
func BenchmarkScan(b *testing.B) {
	srv := testenv.StartRedis(b)
	ctx := context.Background()
	s, err := Open(ctx, Config{URLs: []string{srv.URL()}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	n := benchKeys()
	const pids = 100
	for p := 0; p < pids; p++ {
		id := store.ShardID{Kind: store.KindHistogram, PID: strconv.Itoa(10000 + p)}
		if p%2 == 1 {
			id = store.ShardID{Kind: store.KindGauge, Mode: "all", PID: strconv.Itoa(10000 + p)}
		}
		samples := make([]store.Sample, 0, n/pids)
		for i := 0; i < n/pids; i++ {
			name := "bench_latency_bucket"
			labels := []store.Label{{Name: "route", Value: "/api/v1/items/" + strconv.Itoa(i/10)}, {Name: "le", Value: strconv.Itoa(i%10) + ".0"}}
			fam := "bench_latency"
			if id.Kind == store.KindGauge {
				name, fam = "bench_inflight", "bench_inflight"
			}
			k, err := store.ParseKey(store.EncodeKey(fam, name, labels, "Benchmark metric"))
			if err != nil {
				b.Fatal(err)
			}
			samples = append(samples, store.Sample{Key: k, Value: float64(i) * 0.5})
		}
		if err := s.WriteShard(ctx, id, samples); err != nil {
			b.Fatal(err)
		}
	}
	total := (n / pids) * pids

	var perOp [2]time.Duration
	b.Run("promstore", func(b *testing.B) {
		s.ResetStats()
		for i := 0; i < b.N; i++ {
			got := 0
			if err := s.Scan(ctx, func(store.Sample) error { got++; return nil }); err != nil {
				b.Fatal(err)
			}
			if got != total {
				b.Fatalf("scanned %d samples, want %d", got, total)
			}
		}
		st := s.Stats()
		perOp[0] = b.Elapsed() / time.Duration(b.N)
		b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
		b.ReportMetric(float64(st.RoundTrips)/float64(b.N), "roundtrips/op")
	})
	b.Run("exporter-like", func(b *testing.B) {
		c := srv.Client()
		for i := 0; i < b.N; i++ {
			got, trips, err := exporterLikeRead(ctx, c, "gunicorn")
			if err != nil {
				b.Fatal(err)
			}
			if got != total {
				b.Fatalf("read %d samples, want %d", got, total)
			}
			b.ReportMetric(float64(trips), "roundtrips/op")
		}
		perOp[1] = b.Elapsed() / time.Duration(b.N)
		b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
	})
	if perOp[0] > 0 && perOp[1] > 0 {
		b.Logf("%d samples: promstore %v, exporter-like %v per scan: %.1fx faster",
			total, perOp[0], perOp[1], float64(perOp[1])/float64(perOp[0]))
	}
}

// exporterLikeRead reads the store the way gunicorn-prometheus-exporter's
// RedisMultiProcessCollector does: scan_iter(match=<prefix>:*:*:metric:*)
// with the server's default COUNT, then for each metric key, one after
// the other, HGETALL of its meta hash, HGET value and HGET timestamp. It
// returns the samples read and the round trips made.
func exporterLikeRead(ctx context.Context, c *redis.Client, prefix string) (int, int, error) {
	var keys []string
	var cursor uint64
	trips := 0
	for {
		batch, next, err := c.Scan(ctx, cursor, prefix+":*:*:metric:*", 0).Result()
		trips++
		if err != nil {
			return 0, trips, err
		}
		keys = append(keys, batch...)
		if cursor = next; cursor == 0 {
			break
		}
	}
	samples := 0
	for _, k := range keys {
		meta, err := c.HGetAll(ctx, strings.Replace(k, ":metric:", ":meta:", 1)).Result()
		trips++
		if err != nil {
			return 0, trips, err
		}
		if meta["original_key"] == "" {
			continue
		}
		v, err := c.HGet(ctx, k, "value").Result()
		trips++
		if err != nil {
			return 0, trips, fmt.Errorf("%s: %w", k, err)
		}
		ts, err := c.HGet(ctx, k, "timestamp").Result()
		trips++
		if err != nil {
			return 0, trips, fmt.Errorf("%s: %w", k, err)
		}
		if _, err := store.ParsePyFloat(v); err != nil {
			continue
		}
		if _, err := store.ParsePyFloat(ts); err != nil {
			continue
		}
		samples++
	}
	return samples, trips, nil
}
