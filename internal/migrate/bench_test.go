package migrate

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/store/redisstore"
	"github.com/promstore/promstore/internal/testenv"
)

// benchSource writes procs counter shards of n samples each.
func benchSource(b *testing.B, procs, n int) *filestore.Store { return benchSourceTB(b, procs, n) }

func benchSourceTB(b testing.TB, procs, n int) *filestore.Store {
	b.Helper()
	st, err := filestore.Open(context.Background(), b.TempDir(), filestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for p := range procs {
		id := store.ShardID{Kind: store.KindCounter, PID: strconv.Itoa(1000 + p)}
		ss := make([]store.Sample, n)
		for i := range ss {
			text := store.EncodeKey("http_requests", "http_requests_total",
				[]store.Label{{Name: "code", Value: "200"}, {Name: "route", Value: "/api/v1/items/" + strconv.Itoa(i)}}, "Requests served.")
			k, err := store.ParseKey(text)
			if err != nil {
				b.Fatal(err)
			}
			ss[i] = store.Sample{Key: k, Value: float64(i)}
		}
		if err := st.WriteShard(context.Background(), id, ss); err != nil {
			b.Fatal(err)
		}
	}
	return st
}

// BenchmarkMigrateToRedis measures the phases of a file-to-redis
// migration of 100,000 samples into a real redis-server, by number of
// shards written at once: planning (source and target scans), writing,
// and verifying (reading all of Redis back).
func BenchmarkMigrateToRedis(b *testing.B) {
	const procs, n = 20, 5000
	ctx := context.Background()
	srv := testenv.StartRedis(b)
	src := benchSource(b, procs, n)
	dst, err := redisstore.Open(ctx, redisstore.Config{URLs: []string{srv.URL()}})
	if err != nil {
		b.Fatal(err)
	}
	defer dst.Close()
	for _, workers := range []int{1, 4, 8} {
		b.Run("workers="+strconv.Itoa(workers), func(b *testing.B) {
			var plan, write, verify time.Duration
			for b.Loop() {
				if err := srv.Client().FlushAll(ctx).Err(); err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				p, err := Build(ctx, src, dst, Options{})
				if err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if _, err := Execute(ctx, p, dst, Options{Workers: workers}); err != nil {
					b.Fatal(err)
				}
				t2 := time.Now()
				r, err := Verify(ctx, p, dst)
				if err != nil {
					b.Fatal(err)
				}
				if !r.OK() {
					b.Fatal(r.Summary())
				}
				t3 := time.Now()
				plan, write, verify = plan+t1.Sub(t0), write+t2.Sub(t1), verify+t3.Sub(t2)
			}
			samples := float64(procs * n * b.N)
			b.ReportMetric(samples/plan.Seconds(), "plan-samples/s")
			b.ReportMetric(samples/write.Seconds(), "write-samples/s")
			b.ReportMetric(samples/verify.Seconds(), "verify-samples/s")
		})
	}
}
