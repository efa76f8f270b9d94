package commands

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/testenv"
)

// get fetches url and returns the status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitReady polls /-/ready until it answers 200, at most for d.
func waitReady(t *testing.T, base string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		code, body := get(t, base+"/-/ready")
		if code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/-/ready still %d after %s: %s", code, d, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestServeWaitsForStore: with --wait-for-store, serve started before its
// store exists (a directory not made yet, a Redis not up yet) serves at
// once: healthy, not ready (503 saying why), the telemetry path failing;
// once the store can be opened it is ready and serves it. Without the
// flag it exits (TestServeStoreErrors).
func TestServeWaitsForStore(t *testing.T) {
	t.Run("directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "later")
		ctx, cancel := context.WithCancel(context.Background())
		base, done, logs := startServe(t, ctx, "--dir", dir, "--wait-for-store", "--compact-every", "1h")
		if code, _ := get(t, base+"/-/healthy"); code != http.StatusOK {
			t.Errorf("/-/healthy: %d", code)
		}
		if code, body := get(t, base+"/-/ready"); code != http.StatusServiceUnavailable || !strings.Contains(body, "not open yet") || !strings.Contains(body, dir) {
			t.Errorf("/-/ready before the directory: %d %q", code, body)
		}
		if code, body := get(t, base+"/metrics"); code == http.StatusOK || !strings.Contains(body, "not open yet") {
			t.Errorf("/metrics before the directory: %d %q", code, body)
		}
		if err := os.CopyFS(dir, os.DirFS(filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store"))); err != nil {
			t.Fatal(err)
		}
		waitReady(t, base, 20*time.Second)
		for range 3 {
			if code, body := get(t, base+"/metrics"); code != http.StatusOK || !strings.Contains(body, "app_events_total") {
				t.Errorf("/metrics once the directory is there: %d, %d bytes", code, len(body))
			}
		}
		// Reads of the unchanged store are served as when it opened at
		// start; the compaction tried while waiting is no error.
		_, self := get(t, base+"/-/metrics")
		if !regexp.MustCompile(`(?m)^promstore_store_reads_unchanged_total [1-9]`).MatchString(self) {
			t.Errorf("no unchanged read after the store opened:\n%s", grepLines(self, "promstore_store_reads"))
		}
		if strings.Contains(self, `promstore_compactions_total{outcome="error"} 1`) {
			t.Errorf("the compaction before the store opened counts as an error:\n%s", grepLines(self, "promstore_compactions"))
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if l := logs.String(); !strings.Contains(l, "the store cannot be opened yet") || !strings.Contains(l, "the store is open") {
			t.Errorf("the wait and the opening are not logged:\n%s", l)
		}
	})
	t.Run("no waiting for what no retry mends", func(t *testing.T) {
		f, _, errOut := serveFactory(nil)
		start := time.Now()
		code := Execute(context.Background(), f, []string{"serve", "--wait-for-store", "--web.listen-address", "127.0.0.1:0",
			"--redis-url", "rediss://127.0.0.1:1/0", "--redis-tls-ca", filepath.Join(t.TempDir(), "missing-ca.pem")})
		if code != ExitError || !strings.Contains(errOut.String(), "missing-ca.pem") || time.Since(start) > 10*time.Second {
			t.Errorf("a missing CA file with --wait-for-store: exit %d after %s, stderr %q; want 1 at once naming it", code, time.Since(start), errOut.String())
		}
	})
	t.Run("redis", func(t *testing.T) {
		srv := testenv.StartRedis(t)
		srv.Stop()
		ctx, cancel := context.WithCancel(context.Background())
		base, done, logs := startServe(t, ctx, "--redis-url", srv.URL(), "--wait-for-store")
		if code, body := get(t, base+"/-/ready"); code != http.StatusServiceUnavailable || !strings.Contains(body, "not open yet") {
			t.Errorf("/-/ready before Redis: %d %q", code, body)
		}
		srv.Restart()
		if code, _, errOut := runCLI(t, nil, "migrate", "file-to-redis", "--dir", filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store"), "--redis-url", srv.URL()); code != 0 {
			t.Fatalf("migrate: exit %d: %s", code, errOut)
		}
		waitReady(t, base, 40*time.Second)
		if code, body := get(t, base+"/metrics"); code != http.StatusOK || !strings.Contains(body, "app_events_total") {
			t.Errorf("/metrics once Redis is up: %d, %d bytes\n%s", code, len(body), logs.String())
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
