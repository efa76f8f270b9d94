package commands

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/store/redisstore"
	"github.com/promstore/promstore/internal/store/storetest"
	"github.com/promstore/promstore/internal/testenv"
)

// scrapeJobs scrapes url once and returns jobs_total{kind="a"} (0 when
// absent).
func scrapeJobs(t *testing.T, url string) (float64, error) {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, `jobs_total{kind="a"} `); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, nil
}

// selfMetric returns the value of an unlabelled (or first) sample of
// promstore's own metric name at url/-/metrics.
func selfMetric(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/-/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, _ := strconv.ParseFloat(rest, 64)
			return v
		}
	}
	return 0
}

// scrapeLoop scrapes url back to back until stop is closed and checks
// that jobs_total never decreases and stays within [lo(), hi()] read
// around each scrape (the writers' progress).
func scrapeLoop(t *testing.T, url string, stop chan struct{}, lo, hi func() float64) (scrapes int, errs []string) {
	last := -1.0
	for {
		select {
		case <-stop:
			return scrapes, errs
		default:
		}
		min := lo()
		v, err := scrapeJobs(t, url)
		max := hi()
		scrapes++
		switch {
		case err != nil:
			errs = append(errs, err.Error())
		case v < last:
			errs = append(errs, fmt.Sprintf("jobs_total went down from %v to %v", last, v))
		case v < min || v > max:
			errs = append(errs, fmt.Sprintf("jobs_total %v outside [%v, %v]", v, min, max))
		}
		if err == nil {
			last = v
		}
		if len(errs) > 10 {
			return scrapes, errs
		}
	}
}

// TestSidecarCompactsWhileScraped: promstore serve --compact-every over a
// directory that real Python processes (each counting one job, then
// exiting) keep filling: every scrape's jobs_total lies between the jobs
// done before and after it and never decreases, the dead processes'
// shards are compacted as they come, and the
// compactions show in promstore's own metrics.
func TestSidecarCompactsWhileScraped(t *testing.T) {
	testenv.Python(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// --partial: a Python process creating its shard leaves it empty for
	// an instant, which a scrape then reports as a problem (as Python's
	// own collector fails on it); it has nothing to do with compaction.
	url, done, log := startServe(t, ctx, "--dir", dir, "--compact-every", "50ms", "--compact-min-idle", "0", "--partial")

	var mu sync.Mutex
	doneJobs, startedJobs := 0.0, 0.0
	lo := func() float64 { mu.Lock(); defer mu.Unlock(); return doneJobs }
	hi := func() float64 { mu.Lock(); defer mu.Unlock(); return startedJobs }
	stop := make(chan struct{})
	type result struct {
		n    int
		errs []string
	}
	res := make(chan result, 1)
	go func() {
		n, errs := scrapeLoop(t, url, stop, lo, hi)
		res <- result{n, errs}
	}()
	maxFiles := 0
	const rounds, perRound = 6, 15
	for range rounds {
		mu.Lock()
		startedJobs += perRound
		mu.Unlock()
		testenv.WriteDeadJobs(t, perRound, dir, 0, false)
		mu.Lock()
		doneJobs += perRound
		mu.Unlock()
		ents, _ := os.ReadDir(dir)
		maxFiles = max(maxFiles, len(ents))
	}
	// The last round's shards get compacted too.
	waitFor(t, func() bool {
		m, _ := filepath.Glob(filepath.Join(dir, "*.db"))
		return len(m) == 1
	}, "the directory to hold only the archive", log)
	v, err := scrapeJobs(t, url)
	close(stop)
	r := <-res
	if err != nil || v != rounds*perRound {
		t.Errorf("final scrape: jobs_total %v, %v; want %d", v, err, rounds*perRound)
	}
	if len(r.errs) > 0 {
		t.Errorf("%d of %d scrapes were wrong: %v", len(r.errs), r.n, r.errs)
	}
	// Compactions ran while the workers wrote: the directory never held
	// every round's shards at once. (How close it kept up is a matter of
	// the machine's load, not checked here: a loaded CI runner once saw
	// 60 entries where a quiet one sees under 20.)
	if maxFiles >= rounds*perRound {
		t.Errorf("the directory grew to %d entries: no compaction ran while the workers wrote", maxFiles)
	}
	if n := selfMetric(t, url, "promstore_compaction_shards_compacted_total"); n < rounds*perRound {
		t.Errorf("promstore_compaction_shards_compacted_total %v, want at least %d", n, rounds*perRound)
	}
	if ts := selfMetric(t, url, "promstore_compaction_last_success_timestamp_seconds"); ts <= 0 {
		t.Errorf("no last compaction time")
	}
	t.Logf("%d scrapes, at most %d directory entries", r.n, maxFiles)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v\n%s", err, log)
	}
}

// TestSidecarFoldsRedisKeysBeforeTheyExpire: exporter-style writers put
// their keys with a TTL of 3 s and exit; promstore serve --compact-every
// --compact-local folds them into archive keys without a TTL, so the
// total after the writers' keys would have expired equals the total
// before.
func TestSidecarFoldsRedisKeysBeforeTheyExpire(t *testing.T) {
	testenv.Python(t)
	srv := testenv.StartRedis(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url, done, log := startServe(t, ctx, "--redis-url", srv.URL(), "--compact-every", "100ms", "--compact-min-idle", "0", "--compact-local")
	const n = 20
	testenv.WriteDeadJobs(t, n, srv.URL(), 3, false)
	c := srv.Client()
	// A probe that expires when the writers' keys would have (Redis' clock).
	if err := c.Set(ctx, "probe", "1", 3500*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	before, err := scrapeJobs(t, url)
	if err != nil || before != n {
		t.Fatalf("jobs_total before %v, %v; want %d", before, err, n)
	}
	waitFor(t, func() bool {
		keys, err := c.Keys(ctx, "gunicorn:counter:*:metric:*").Result()
		if err != nil || len(keys) != 1 || !strings.Contains(keys[0], ":archive") {
			return false
		}
		ttl, err := c.PTTL(ctx, keys[0]).Result()
		return err == nil && ttl < 0
	}, "one archive metric key without a TTL", log)
	waitFor(t, func() bool {
		n, err := c.Exists(ctx, "probe").Result()
		return err == nil && n == 0
	}, "the writers' TTL to pass", log)
	after, err := scrapeJobs(t, url)
	if err != nil || after != before {
		t.Errorf("jobs_total after the TTL: %v, %v; want %v", after, err, before)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v\n%s", err, log)
	}
}

// waitFor polls cond every 20 ms for up to a minute.
func waitFor(t *testing.T, cond func() bool, what string, log fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; log:\n%s", what, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSidecarRefusalIsNoError: shards of processes that just exited (none
// of them visible) make cleanup --dead-pids refuse for --compact-min-idle:
// a state that passes. The sidecar counts such runs as refused, not as
// errors, and logs the reason once, not at every interval.
func TestSidecarRefusalIsNoError(t *testing.T) {
	dir := t.TempDir()
	st, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k := storetest.Key(t, "jobs", "jobs_total", nil, "Jobs.")
	for range 2 {
		if err := st.WriteShard(context.Background(), store.ShardID{Kind: store.KindCounter, PID: testenv.DeadPID(t)}, []store.Sample{{Key: k, Value: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url, done, log := startServe(t, ctx, "--dir", dir, "--compact-every", "50ms", "--compact-min-idle", "1h")
	waitFor(t, func() bool { return selfMetric(t, url, `promstore_compactions_total{outcome="refused"}`) >= 2 }, "two refused compactions", log)
	// Another worker exits: the refusal names other pids, the same cause.
	if err := st.WriteShard(context.Background(), store.ShardID{Kind: store.KindCounter, PID: testenv.DeadPID(t)}, []store.Sample{{Key: k, Value: 1}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return selfMetric(t, url, `promstore_compactions_total{outcome="refused"}`) >= 5 }, "five refused compactions", log)
	if n := selfMetric(t, url, `promstore_compactions_total{outcome="error"}`); n != 0 {
		t.Errorf("%v compactions counted as errors", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
	if l := log.String(); strings.Count(l, `msg="compaction refused`) != 1 || strings.Contains(l, "compaction failed") {
		t.Errorf("want the refusal logged once, no failure:\n%s", l)
	}
	// It names serve's flags: serve has no --min-idle or --stale-after.
	if l := log.String(); !strings.Contains(l, "(--compact-min-idle)") || !strings.Contains(l, "--compact-stale-after") ||
		strings.Contains(l, " --min-idle") || strings.Contains(l, "(--min-idle)") || strings.Contains(l, " --stale-after") || strings.Contains(l, "--dead-pids") {
		t.Errorf("the refusal names flags serve does not have:\n%s", l)
	}
}

// TestSidecarLeakedReaderKeepsNoScrapesOut: a read registration in Redis
// that no reader will remove (a reader killed, or cut off by a timeout
// after Redis took its registration; kept for up to 2 minutes) made the
// sidecar's compaction hold the read gate closed all that time, and every
// scrape failed with 503. The compaction now gives up after half the
// scrape timeout and tries again at its next interval: scrapes wait at
// most that long.
func TestSidecarLeakedReaderKeepsNoScrapesOut(t *testing.T) {
	// The wait is half the scrape timeout, or half the interval when that
	// is shorter (else the gate would be closed all the time).
	t.Run("scrape timeout", func(t *testing.T) { testLeakedReader(t, "2s", "4s") })
	t.Run("interval", func(t *testing.T) { testLeakedReader(t, "1s", "10s") })
}

// storeWithLeakedReader starts a redis-server holding a dead worker's
// counter (stale at once for --stale-after) and a read registration no
// reader will remove, kept for 2 minutes as a killed reader's would be.
func storeWithLeakedReader(t *testing.T) *testenv.RedisServer {
	t.Helper()
	srv := testenv.StartRedis(t)
	ctx := context.Background()
	c := srv.Client()
	defer c.Close()
	st, err := redisstore.Open(ctx, redisstore.Config{URLs: []string{srv.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	k := storetest.Key(t, "jobs", "jobs_total", nil, "Jobs.")
	if err := st.WriteShard(ctx, store.ShardID{Kind: store.KindCounter, PID: "4100"}, []store.Sample{{Key: k, Value: 1}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	now, err := c.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.HSet(ctx, "gunicorn:promstore:readers", "leaked", strconv.FormatInt(now.Add(2*time.Minute).UnixMilli(), 10)).Err(); err != nil {
		t.Fatal(err)
	}
	return srv
}

func testLeakedReader(t *testing.T, every, timeout string) {
	srv := storeWithLeakedReader(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url, done, log := startServe(t, ctx, "--redis-url", srv.URL(), "--compact-every", every, "--compact-stale-after", "1ms", "--compact-min-idle", "0",
		"--scrape-timeout", timeout, "--log.level", "debug")
	for i := range 8 {
		begin := time.Now()
		resp, err := http.Get(url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("scrape %d: status %d after %s: %s\nlog:\n%s", i, resp.StatusCode, time.Since(begin).Round(time.Millisecond), body, log)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if !strings.Contains(log.String(), "waiting for the reads in progress") {
		t.Errorf("the compaction's wait for the leaked reader is not logged:\n%s", log)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}
