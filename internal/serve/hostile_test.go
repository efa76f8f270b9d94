package serve

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFIFOShardServesWithoutLeaking: a FIFO named like a shard once made
// every scrape wait in open(2) forever, an OS thread each, and /-/ready
// never answered. Now it is an unreadable shard like any other: 500
// naming it (or the rest with --partial), ready answers, the threads the
// process ever created stay flat over 100 scrapes, and the problem is
// logged once, not per scrape.
func TestFIFOShardServesWithoutLeaking(t *testing.T) {
	dir, st := sampleStore(t)
	want := renderText(t, families(t, st))
	if err := syscall.Mkfifo(filepath.Join(dir, "counter_77.db"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("fails the scrape naming the FIFO", func(t *testing.T) {
		srv := start(t, Options{Store: st})
		r := get(t, nil, srv.url+"/metrics", nil)
		if r.status != http.StatusInternalServerError || !strings.Contains(r.body, "counter_77.db: cannot read: not a regular file but a named pipe (FIFO)") {
			t.Fatalf("status %d body %q", r.status, r.body)
		}
	})
	srv := start(t, Options{Store: st, Partial: true})
	threads := pprof.Lookup("threadcreate")
	scrape := func() {
		t.Helper()
		if r := get(t, nil, srv.url+"/metrics", nil); r.status != 200 || r.body != want {
			t.Fatalf("status %d, body is the store without the FIFO: %v", r.status, r.body == want)
		}
	}
	for range 10 {
		scrape()
	}
	before := threads.Count()
	for range 100 {
		scrape()
	}
	after := threads.Count()
	// A thread per scrape would be 100 more; the runtime may start a few
	// on its own.
	if after-before > 8 {
		t.Errorf("threads created: %d after 10 scrapes, %d after 100 more", before, after)
	}
	if r := get(t, nil, srv.url+"/-/ready", nil); r.status != 200 {
		t.Errorf("/-/ready: %d %s", r.status, r.body)
	}
	if n := strings.Count(srv.logs.String(), "counter_77.db"); n != 1 {
		t.Errorf("the FIFO was logged %d times over 110 scrapes, want once:\n%s", n, srv.logs.String())
	}
	waitSelfMetric(t, srv, `promstore_scrapes_total{outcome="partial"} 110`)
	if err := srv.stop(t); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// TestScraperHangsUp: a scraper that goes away before its answer is a
// scrape of its own outcome, canceled, not an error, and is logged.
func TestScraperHangsUp(t *testing.T) {
	_, st := sampleStore(t)
	g := newGate(st)
	srv := start(t, Options{Store: g})
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.url+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	waitEntered(t, g)
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the canceled request got an answer")
	}
	waitSelfMetric(t, srv, `promstore_scrapes_total{outcome="canceled"} 1`)
	close(g.release)
	self := get(t, nil, srv.url+SelfMetricsPath, nil)
	if !strings.Contains(self.body, `promstore_scrapes_total{outcome="error"} 0`) {
		t.Errorf("a hang-up counted as an error:\n%s", grepLines(self.body, "promstore_scrapes_total"))
	}
	if !strings.Contains(srv.logs.String(), "the scraper hung up before the store was read") {
		t.Errorf("hang-up not logged:\n%s", srv.logs.String())
	}
}

// TestLogLimiter: each kind is logged at once, then at most once per
// logEvery with how many were left out.
func TestLogLimiter(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	now := time.Unix(1000, 0)
	l := logLimiter{now: func() time.Time { return now }}
	ctx := context.Background()
	for range 5 {
		l.log(ctx, log, slog.LevelError, "a", "read failed", "n", 1)
		l.log(ctx, log, slog.LevelWarn, "b", "shard skipped")
	}
	now = now.Add(logEvery)
	l.log(ctx, log, slog.LevelError, "a", "read failed", "n", 2)
	want := `level=ERROR msg="read failed" n=1
level=WARN msg="shard skipped"
level=ERROR msg="read failed" n=2 not_logged_since_last=4
`
	if buf.String() != want {
		t.Errorf("logged:\n%s\nwant:\n%s", buf.String(), want)
	}
}
