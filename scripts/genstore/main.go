// Command genstore writes a large synthetic PROMETHEUS_MULTIPROC_DIR with
// promstore's own file store writer (writing a million samples through the
// Python client takes minutes). The shards are byte-for-byte what Python's
// MmapedDict writes; the metric plan is synthetic. Used by
// scripts/bench-migrate.sh.
//
//	go run ./scripts/genstore -dir DIR [-procs 64] [-series 5000] [-layout 16]
//
// Each process gets a counter shard (series samples), a gauge_all shard
// (series samples) and a histogram shard (series/10 label sets x 12
// bucket/sum/count samples): 3.2 x series samples per process, so the
// defaults write 1,024,000 samples.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
)

func main() {
	dir := flag.String("dir", "", "directory to write (created)")
	procs := flag.Int("procs", 64, "number of processes (pids 10000...)")
	series := flag.Int("series", 5000, "counter and gauge series per process")
	layout := flag.Int("layout", 16, "entry layout: 16 or 8 bytes")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "genstore: -dir is required")
		os.Exit(2)
	}
	if err := run(*dir, *procs, *series, *layout); err != nil {
		fmt.Fprintln(os.Stderr, "genstore:", err)
		os.Exit(1)
	}
}

func run(dir string, procs, series, layout int) error {
	ctx := context.Background()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	st, err := filestore.Open(ctx, dir, filestore.Options{Layout: layout})
	if err != nil {
		return err
	}
	defer st.Close()
	rnd := rand.New(rand.NewPCG(42, 0))
	codes := []string{"200", "201", "404", "500", "503"}
	buckets := []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "+Inf"}
	total := 0
	for p := range procs {
		pid := strconv.Itoa(10000 + p)
		var counters, gauges, hist []store.Sample
		for i := range series {
			route := "/api/v1/items/" + strconv.Itoa(i)
			labels := []store.Label{{Name: "code", Value: codes[i%len(codes)]}, {Name: "route", Value: route}}
			counters = append(counters, sample("http_requests", "http_requests_total", labels, "Requests served.", float64(rnd.IntN(1000))))
			gauges = append(gauges, sample("queue_depth", "queue_depth", labels[1:], "Queue depth.", rnd.Float64()*100))
			if i%10 == 0 {
				rl := []store.Label{{Name: "route", Value: route}}
				for _, le := range buckets {
					bl := append([]store.Label{{Name: "le", Value: le}}, rl...)
					hist = append(hist, sample("latency_seconds", "latency_seconds_bucket", bl, "Latency.", float64(rnd.IntN(50))))
				}
				hist = append(hist, sample("latency_seconds", "latency_seconds_sum", rl, "Latency.", rnd.Float64()*30))
				hist = append(hist, sample("latency_seconds", "latency_seconds_count", rl, "Latency.", float64(rnd.IntN(500))))
			}
		}
		for _, w := range []struct {
			id store.ShardID
			ss []store.Sample
		}{
			{store.ShardID{Kind: store.KindCounter, PID: pid}, counters},
			{store.ShardID{Kind: store.KindGauge, Mode: "all", PID: pid}, gauges},
			{store.ShardID{Kind: store.KindHistogram, PID: pid}, hist},
		} {
			if err := st.WriteShard(ctx, w.id, w.ss); err != nil {
				return err
			}
			total += len(w.ss)
		}
	}
	fmt.Printf("wrote %d samples in %d shards to %s\n", total, 3*procs, dir)
	return nil
}

func sample(family, name string, labels []store.Label, help string, v float64) store.Sample {
	text := store.EncodeKey(family, name, labels, help)
	k, err := store.ParseKey(text)
	if err != nil {
		panic(err)
	}
	return store.Sample{Key: k, Value: v}
}
