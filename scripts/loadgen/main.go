// Command loadgen scrapes one URL with C concurrent scrapers for a bounded
// time and number of requests, and prints what it measured: completed
// scrapes, scrapes per second, p50/p90/p99/max latency, bytes per scrape
// and errors. It is the load generator of scripts/bench-serve.sh and only
// talks to loopback addresses.
//
//	go run ./scripts/loadgen -url http://127.0.0.1:9877/metrics -c 50 -d 10s
//
// Scrapes still running when the time is up are cancelled and reported as
// "cut" (not counted in the latencies, so a server slower than the run
// looks better than it is: read "cut" together with the figures).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

type result struct {
	Label       string  `json:"label"`
	Concurrency int     `json:"concurrency"`
	Scrapes     int     `json:"scrapes"`
	Errors      int     `json:"errors"`
	Cut         int     `json:"cut"`
	Seconds     float64 `json:"seconds"`
	PerSecond   float64 `json:"scrapes_per_second"`
	P50ms       float64 `json:"p50_ms"`
	P90ms       float64 `json:"p90_ms"`
	P99ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
	Bytes       int64   `json:"bytes_per_scrape"`
	FirstError  string  `json:"first_error,omitempty"`
}

func main() {
	target := flag.String("url", "", "URL to scrape (loopback only)")
	conc := flag.Int("c", 1, "concurrent scrapers")
	dur := flag.Duration("d", 10*time.Second, "how long to scrape")
	maxN := flag.Int("n", 100000, "stop after this many scrapes")
	accept := flag.String("accept", "", "Accept header (empty: none, the text format)")
	gz := flag.Bool("gzip", false, "send Accept-Encoding: gzip (the body is not decompressed)")
	label := flag.String("label", "", "label to print with the result")
	asJSON := flag.Bool("json", false, "print the result as JSON")
	flag.Parse()
	if err := run(*target, *conc, *dur, *maxN, *accept, *gz, *label, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(target string, conc int, dur time.Duration, maxN int, accept string, gz bool, label string, asJSON bool) error {
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("url %q: %w", target, err)
	}
	if ip := net.ParseIP(u.Hostname()); (ip == nil || !ip.IsLoopback()) && u.Hostname() != "localhost" {
		return fmt.Errorf("url %q: only loopback hosts are allowed", target)
	}
	if conc < 1 || maxN < 1 || dur <= 0 {
		return errors.New("-c, -n and -d must be positive")
	}
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns:        conc,
		MaxIdleConnsPerHost: conc,
		DisableCompression:  true,
	}}
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()

	var (
		issued   atomic.Int64
		mu       sync.Mutex
		lat      []time.Duration
		errs     int
		cut      int
		bytes    int64
		firstErr string
		wg       sync.WaitGroup
	)
	begin := time.Now()
	for range conc {
		wg.Go(func() {
			for ctx.Err() == nil && issued.Add(1) <= int64(maxN) {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
				if accept != "" {
					req.Header.Set("Accept", accept)
				}
				if gz {
					req.Header.Set("Accept-Encoding", "gzip")
				}
				start := time.Now()
				n, err := scrape(client, req)
				took := time.Since(start)
				mu.Lock()
				switch {
				case err != nil && ctx.Err() != nil:
					cut++
				case err != nil:
					errs++
					if firstErr == "" {
						firstErr = err.Error()
					}
				default:
					lat = append(lat, took)
					bytes = n
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(begin)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r := result{Label: label, Concurrency: conc, Scrapes: len(lat), Errors: errs, Cut: cut,
		Seconds: elapsed.Seconds(), PerSecond: float64(len(lat)) / elapsed.Seconds(), Bytes: bytes, FirstError: firstErr}
	if len(lat) > 0 {
		r.P50ms = ms(pct(lat, 0.50))
		r.P90ms = ms(pct(lat, 0.90))
		r.P99ms = ms(pct(lat, 0.99))
		r.MaxMs = ms(lat[len(lat)-1])
	}
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(r)
	}
	fmt.Printf("%-10s c=%-3d scrapes=%-6d %8.1f/s  p50=%8.1fms p90=%8.1fms p99=%8.1fms max=%8.1fms  %d B/scrape  errors=%d cut=%d\n",
		r.Label, r.Concurrency, r.Scrapes, r.PerSecond, r.P50ms, r.P90ms, r.P99ms, r.MaxMs, r.Bytes, r.Errors, r.Cut)
	if firstErr != "" {
		fmt.Printf("           first error: %s\n", firstErr)
	}
	return nil
}

func scrape(c *http.Client, req *http.Request) (int64, error) {
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return n, err
	}
	if resp.StatusCode != http.StatusOK {
		return n, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return n, nil
}

// pct returns the q-quantile of sorted durations (nearest rank).
func pct(sorted []time.Duration, q float64) time.Duration {
	i := int(float64(len(sorted))*q+0.999999) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
