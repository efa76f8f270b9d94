package redisstore

import (
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/testenv"
)

// writeBenchShards builds procs shards of n samples each, counters,
// gauges and histograms in turn, with the keys and values
// scripts/genstore writes (integer counts, fractional gauges and sums).
func writeBenchShards(tb testing.TB, procs, n int) ([]store.ShardID, [][]store.Sample) {
	tb.Helper()
	rnd := rand.New(rand.NewPCG(42, 0))
	codes := []string{"200", "201", "404", "500", "503"}
	buckets := []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "+Inf"}
	mk := func(family, name string, labels []store.Label, help string, v, ts float64) store.Sample {
		k, err := store.ParseKey(store.EncodeKey(family, name, labels, help))
		if err != nil {
			tb.Fatal(err)
		}
		return store.Sample{Key: k, Value: v, Timestamp: ts}
	}
	var ids []store.ShardID
	var shards [][]store.Sample
	for p := range procs {
		pid := strconv.Itoa(10000 + p)
		ss := make([]store.Sample, 0, n)
		var id store.ShardID
		switch p % 3 {
		case 0:
			id = store.ShardID{Kind: store.KindCounter, PID: pid}
			for i := range n {
				labels := []store.Label{{Name: "code", Value: codes[i%len(codes)]}, {Name: "route", Value: "/api/v1/items/" + strconv.Itoa(i)}}
				ss = append(ss, mk("http_requests", "http_requests_total", labels, "Requests served.", float64(rnd.IntN(1000)), 0))
			}
		case 1:
			id = store.ShardID{Kind: store.KindGauge, Mode: "mostrecent", PID: pid}
			for i := range n {
				labels := []store.Label{{Name: "route", Value: "/api/v1/items/" + strconv.Itoa(i)}}
				ss = append(ss, mk("queue_depth", "queue_depth", labels, "Queue depth.", rnd.Float64()*100, 1732550000+rnd.Float64()*1000))
			}
		default:
			id = store.ShardID{Kind: store.KindHistogram, PID: pid}
			for i := 0; len(ss) < n; i++ {
				rl := []store.Label{{Name: "route", Value: "/api/v1/items/" + strconv.Itoa(i)}}
				for _, le := range buckets {
					bl := append([]store.Label{{Name: "le", Value: le}}, rl...)
					ss = append(ss, mk("latency_seconds", "latency_seconds_bucket", bl, "Latency.", float64(rnd.IntN(50)), 0))
				}
				ss = append(ss, mk("latency_seconds", "latency_seconds_sum", rl, "Latency.", rnd.Float64()*30, 0))
				ss = append(ss, mk("latency_seconds", "latency_seconds_count", rl, "Latency.", float64(rnd.IntN(500)), 0))
			}
			ss = ss[:n]
		}
		ids = append(ids, id)
		shards = append(shards, ss)
	}
	return ids, shards
}

// redisCPU is used_cpu_user + used_cpu_sys from INFO cpu.
func redisCPU(tb testing.TB, srv *testenv.RedisServer) float64 {
	tb.Helper()
	info, err := srv.Client().Info(context.Background(), "cpu").Result()
	if err != nil {
		tb.Fatal(err)
	}
	total := 0.0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatal(err)
			}
			total += f
		}
	}
	return total
}

// BenchmarkWriteShard writes 64 shards of 10,000 samples (PROMSTORE_BENCH_KEYS
// overrides the total) into a local redis-server, several shards at once
// as migrate does: into an empty database with WriteShard ("new") and
// with WriteNewShard ("absent", what migrate does for samples its plan
// found missing), and with WriteShard over the same keys again
// ("rewrite"). Besides samples/s it reports the CPU seconds per
// million samples of this process (go-cpu-s/M) and of redis-server
// (redis-cpu-s/M): on a shared machine they say more than the rate.
// Run with -benchtime=1x or a few x.
func BenchmarkWriteShard(b *testing.B) {
	procs, n := 64, 10000
	if k := benchKeys(); k != 100000 {
		n = max(k/procs, 1)
	}
	srv := testenv.StartRedis(b)
	ctx := context.Background()
	ids, shards := writeBenchShards(b, procs, n)
	total := procs * n
	for _, workers := range []int{1, 4} {
		for _, mode := range []string{"new", "absent", "rewrite"} {
			b.Run("workers="+strconv.Itoa(workers)+"/"+mode, func(b *testing.B) {
				s, err := Open(ctx, Config{URLs: []string{srv.URL()}})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				var goCPU, redisCPUs float64
				var elapsed time.Duration
				for b.Loop() {
					b.StopTimer()
					if mode != "rewrite" {
						if err := srv.Client().FlushAll(ctx).Err(); err != nil {
							b.Fatal(err)
						}
					}
					r0, g0, t0 := redisCPU(b, srv), testenv.CPUTime().Seconds(), time.Now()
					b.StartTimer()
					writeConcurrently(b, s, workers, mode == "absent", ids, shards)
					b.StopTimer()
					elapsed += time.Since(t0)
					goCPU += testenv.CPUTime().Seconds() - g0
					redisCPUs += redisCPU(b, srv) - r0
					b.StartTimer()
				}
				if got := srv.Client().DBSize(ctx).Val(); got != int64(2*total) {
					b.Fatalf("redis holds %d keys, want %d", got, 2*total)
				}
				m := float64(total) * float64(b.N) / 1e6
				b.ReportMetric(float64(total)*float64(b.N)/elapsed.Seconds(), "samples/s")
				b.ReportMetric(goCPU/m, "go-cpu-s/M")
				b.ReportMetric(redisCPUs/m, "redis-cpu-s/M")
			})
		}
	}
}

// writeConcurrently writes the shards with the given number of
// goroutines, as migrate.Execute does.
func writeConcurrently(b *testing.B, s *Store, workers int, absent bool, ids []store.ShardID, shards [][]store.Sample) {
	write := s.WriteShard
	if absent {
		write = s.WriteNewShard
	}
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := write(context.Background(), ids[i], shards[i]); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
		}()
	}
	for i := range ids {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
}

// BenchmarkReplaceShard times what a cleanup step on a standalone Redis
// costs: one MULTI/EXEC writing a counter archive of 1,000 or 10,000
// samples and deleting 20 source shards of 1,000 counter samples each.
// exec-ms/op is the server's own time for the commands the EXEC runs
// (SLOWLOG), the time the transaction holds the server while every other
// client waits; ns/op adds the listing of the keys to delete (one SCAN
// pass over the whole keyspace for the archive and its 20 sources) and the
// round trips.
func BenchmarkReplaceShard(b *testing.B) {
	srv := testenv.StartRedis(b)
	st, err := Open(context.Background(), Config{URLs: []string{srv.URL()}})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	c := srv.Client()
	_, shards := writeBenchShards(b, 1, 10000)
	for _, n := range []int{1000, 10000} {
		b.Run("archive="+strconv.Itoa(n), func(b *testing.B) {
			var exec time.Duration
			for i := range b.N {
				b.StopTimer()
				if err := c.FlushAll(ctx).Err(); err != nil {
					b.Fatal(err)
				}
				var del []store.ShardID
				for p := range 20 {
					id := store.ShardID{Kind: store.KindCounter, PID: strconv.Itoa(20000 + p)}
					if err := st.WriteShard(ctx, id, shards[0][:1000]); err != nil {
						b.Fatal(err)
					}
					del = append(del, id)
				}
				c.ConfigSet(ctx, "slowlog-max-len", "200000")
				c.ConfigSet(ctx, "slowlog-log-slower-than", "0")
				c.SlowLogReset(ctx)
				b.StartTimer()
				archive := store.ShardID{Kind: store.KindCounter, PID: "archive-" + strconv.Itoa(i+1)}
				if err := st.ReplaceShard(ctx, archive, shards[0][:n], del); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				logs, err := c.SlowLogGet(ctx, -1).Result()
				if err != nil {
					b.Fatal(err)
				}
				// Redis logs the commands a transaction runs, not the EXEC.
				for _, l := range logs {
					if len(l.Args) > 0 && txCommands[strings.ToLower(l.Args[0])] {
						exec += l.Duration
					}
				}
				c.ConfigSet(ctx, "slowlog-log-slower-than", "10000")
				b.StartTimer()
			}
			b.ReportMetric(float64(exec.Microseconds())/1000/float64(b.N), "exec-ms/op")
		})
	}
}

// txCommands are the commands ReplaceShard's transaction runs.
var txCommands = map[string]bool{"multi": true, "exec": true, "hset": true, "hsetnx": true, "unlink": true}
