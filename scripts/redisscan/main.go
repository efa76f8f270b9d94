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
	"time"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/redisstore"
)

func main() {
	url := flag.String("url", "", "Redis store URL (required)")
	prefix := flag.String("prefix", "gunicorn", "key prefix")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "redisscan: -url is required")
		os.Exit(2)
	}
	if err := run(context.Background(), *url, *prefix); err != nil {
		fmt.Fprintln(os.Stderr, "redisscan:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, url, prefix string) error {
	s, err := redisstore.Open(ctx, redisstore.Config{URLs: []string{url}, Prefix: prefix})
	if err != nil {
		return err
	}
	defer s.Close()
	agg := aggregate.New()
	sum := 0.0
	start := time.Now()
	err = s.Scan(ctx, func(smp store.Sample) error {
		sum += smp.Value
		return agg.Add(smp)
	})
	read := time.Since(start)
	if err != nil {
		return fmt.Errorf("scan %s: %w", s.Describe(), err)
	}
	fams := agg.Families()
	st := s.Stats()
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"seconds":     read.Seconds(),
		"samples":     st.Samples,
		"keys":        st.Keys,
		"round_trips": st.RoundTrips,
		"families":    len(fams),
		"sum":         sum,
	})
}
