// Command redisscan reads a Redis store once with promstore's reader, as
// `promstore dump` does (Store.Scan into the aggregator), and prints one
// JSON line with the reader's own counters: samples, keys, round trips
// (SCAN calls and pipeline executions), the in-process read time and the
// sum of the values. Used by scripts/bench-redis.sh for the round-trip
// figure, which the server cannot count for pipelined clients.
//
//	go run ./scripts/redisscan -url redis://127.0.0.1:PORT/0
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/redisstore"
)

func main() {
	url := flag.String("url", "", "Redis store URL (required)")
	prefix := flag.String("prefix", "gunicorn", "key prefix")
	runs := flag.Int("runs", 1, "read this many times (the figures are of the last read)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the reads to this file")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "redisscan: -url is required")
		os.Exit(2)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "redisscan:", err)
			os.Exit(1)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "redisscan:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(context.Background(), *url, *prefix, *runs); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "redisscan:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, url, prefix string, runs int) error {
	s, err := redisstore.Open(ctx, redisstore.Config{URLs: []string{url}, Prefix: prefix})
	if err != nil {
		return err
	}
	defer s.Close()
	var (
		read time.Duration
		sum  float64
		fams []aggregate.Family
		st   redisstore.Stats
	)
	for range max(runs, 1) {
		s.ResetStats()
		agg := aggregate.New()
		sum = 0
		start := time.Now()
		err = s.Scan(ctx, func(smp store.Sample) error {
			sum += smp.Value
			return agg.Add(smp)
		})
		if err != nil {
			return fmt.Errorf("scan %s: %w", s.Describe(), err)
		}
		fams = agg.Families()
		read = time.Since(start)
		st = s.Stats()
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"seconds":     read.Seconds(),
		"samples":     st.Samples,
		"keys":        st.Keys,
		"round_trips": st.RoundTrips,
		"families":    len(fams),
		"sum":         sum,
	})
}
