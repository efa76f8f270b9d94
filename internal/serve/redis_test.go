package serve

import (
	"context"
	"crypto/md5"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/promstore/promstore/internal/cleanup"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/store/redisstore"
	"github.com/promstore/promstore/internal/testenv"
)

// TestRedisGoesAwayAndComesBack serves a store in a real redis-server,
// kills the server mid-life and starts it again.
func TestRedisGoesAwayAndComesBack(t *testing.T) {
	const password = "r3dis-secret"
	rs := testenv.StartRedis(t, testenv.RedisOptions{Password: password})
	ctx := context.Background()
	st, err := redisstore.Open(ctx, redisstore.Config{URLs: []string{rs.URL()}})
	if err != nil {
		t.Fatalf("open redis store: %v", err)
	}
	defer st.Close()
	write := func() {
		t.Helper()
		k, err := store.ParseKey(store.EncodeKey("jobs", "jobs_total", []store.Label{{Name: "queue", Value: "a"}}, "Jobs done."))
		if err != nil {
			t.Fatal(err)
		}
		id := store.ShardID{Kind: store.KindCounter, PID: "4100"}
		if err := st.WriteShard(ctx, id, []store.Sample{{Shard: id, Key: k, Value: 3}}); err != nil {
			t.Fatalf("write shard: %v", err)
		}
	}
	write()
	want := renderText(t, families(t, st))
	if !strings.Contains(want, "jobs_total{queue=\"a\"} 3.0") {
		t.Fatalf("store output lacks the written sample:\n%s", want)
	}
	srv := start(t, Options{Store: st, StoreName: st.Describe()})
	if r := get(t, nil, srv.url+"/metrics", nil); r.status != 200 || r.body != want {
		t.Fatalf("status %d, body equal %v", r.status, r.body == want)
	}

	rs.Stop()
	r := get(t, nil, srv.url+"/metrics", nil)
	if r.status != http.StatusInternalServerError {
		t.Errorf("redis down: status %d body %q, want 500", r.status, r.body)
	}
	if strings.Count(strings.TrimSpace(r.body), "\n") != 0 {
		t.Errorf("error body is not one line: %q", r.body)
	}
	downBody := r.body
	t.Logf("redis down: %s", downBody)
	if rr := get(t, nil, srv.url+"/-/ready", nil); rr.status != http.StatusServiceUnavailable {
		t.Errorf("/-/ready with redis down: %d, want 503", rr.status)
	}

	rs.Restart() // empty: nothing was persisted
	write()
	if r := get(t, nil, srv.url+"/metrics", nil); r.status != 200 || r.body != want {
		t.Errorf("redis back: status %d, body equal %v: %s", r.status, r.body == want, r.body)
	}
	if rr := get(t, nil, srv.url+"/-/ready", nil); rr.status != 200 {
		t.Errorf("/-/ready with redis back: %d", rr.status)
	}
	if strings.Contains(downBody, password) || strings.Contains(srv.logs.String(), password) {
		t.Errorf("password shown in a response or the logs")
	}
}

// TestReadyPingsRedis: /-/ready asks a Redis store (here under cleanup's
// consistent view, as promstore serve opens it) for a PING, not for a
// listing of its keys.
func TestReadyPingsRedis(t *testing.T) {
	rs := testenv.StartRedis(t)
	ctx := context.Background()
	st := openRedis(t, rs)
	srv := start(t, Options{Store: cleanup.Consistent(st), StoreName: st.Describe()})
	c := rs.Client()
	defer c.Close()
	if err := c.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if r := get(t, nil, srv.url+"/-/ready", nil); r.status != 200 {
		t.Fatalf("/-/ready: %d %s", r.status, r.body)
	}
	stats, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stats, "cmdstat_ping:") || strings.Contains(stats, "cmdstat_scan:") {
		t.Errorf("/-/ready did not ping, or listed keys:\n%s", stats)
	}
}

// openRedis opens a store of rs, closed when the test ends.
func openRedis(t *testing.T, rs *testenv.RedisServer) *redisstore.Store {
	t.Helper()
	st, err := redisstore.Open(context.Background(), redisstore.Config{URLs: []string{rs.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// jobsRedis starts a redis-server holding one counter sample of pid,
// jobs_total{queue="a"} 3, and returns it, a store of it (closed when the
// test ends) and the sample's key.
func jobsRedis(t *testing.T, pid string) (*testenv.RedisServer, *redisstore.Store, *store.Key) {
	t.Helper()
	rs := testenv.StartRedis(t)
	ctx := context.Background()
	st := openRedis(t, rs)
	k, err := store.ParseKey(store.EncodeKey("jobs", "jobs_total", []store.Label{{Name: "queue", Value: "a"}}, "Jobs done."))
	if err != nil {
		t.Fatal(err)
	}
	id := store.ShardID{Kind: store.KindCounter, PID: pid}
	if err := st.WriteShard(ctx, id, []store.Sample{{Shard: id, Key: k, Value: 3}}); err != nil {
		t.Fatal(err)
	}
	return rs, st, k
}

// TestOrphanKeysServed: a Redis store under the exporter's TTLs holds now
// and then a metric hash whose meta hash has expired. The exporter's
// collector skips it, and so does a scrape (logging it), without
// --partial; a problem of another kind (a value that is not a number)
// still fails the scrape.
func TestOrphanKeysServed(t *testing.T) {
	ctx := context.Background()
	rs, st, k := jobsRedis(t, "4100")
	c := rs.Client()
	defer c.Close()
	orphan := "gunicorn:counter:4101:metric:22222222222222222222222222222222"
	if err := c.HSet(ctx, orphan, "value", "5.0", "timestamp", "0.0").Err(); err != nil {
		t.Fatal(err)
	}
	srv := start(t, Options{Store: cleanup.Consistent(st), StoreName: st.Describe()})
	r := get(t, nil, srv.url+"/metrics", nil)
	if r.status != 200 || !strings.Contains(r.body, `jobs_total{queue="a"} 3.0`) {
		t.Fatalf("an orphan key: status %d, body:\n%s", r.status, r.body)
	}
	if !strings.Contains(srv.logs.String(), "orphan") {
		t.Errorf("the orphan key was not logged:\n%s", srv.logs.String())
	}
	bad := fmt.Sprintf("gunicorn:counter:4100:metric:%x", md5.Sum([]byte(k.Text)))
	if err := c.HSet(ctx, bad, "value", "notafloat").Err(); err != nil {
		t.Fatal(err)
	}
	if r := get(t, nil, srv.url+"/metrics", nil); r.status != http.StatusInternalServerError {
		t.Errorf("a value that is not a number: status %d, want 500", r.status)
	}
}

// TestEmptyShardOfRunningProcessServed: a Python worker creates its shard
// file and sizes it a moment later; a scrape in between finds it of 0
// bytes. When that pid runs here, the file holds no sample yet and the
// scrape serves the rest without --partial; the same file of a pid that
// does not run (a worker killed then) still fails it, as Python's
// collector does.
func TestEmptyShardOfRunningProcessServed(t *testing.T) {
	dir := testenv.CopyStore(t, filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store"))
	st, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := start(t, Options{Store: cleanup.Consistent(st), StoreName: st.Describe()})
	live := filepath.Join(dir, "counter_"+testenv.LivePID(t)+".db")
	if err := os.WriteFile(live, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := get(t, nil, srv.url+"/metrics", nil); r.status != 200 || !strings.Contains(r.body, "app_events_total") {
		t.Fatalf("a running process's 0-byte shard: status %d, %d bytes", r.status, len(r.body))
	}
	if err := os.Remove(live); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "counter_"+testenv.DeadPID(t)+".db"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := get(t, nil, srv.url+"/metrics", nil); r.status != http.StatusInternalServerError {
		t.Errorf("a dead process's 0-byte shard: status %d, want 500", r.status)
	}
}

// TestRedisDownSaysSo: with the store under cleanup's consistent view, as
// promstore serve opens it, a scrape while Redis is down answers that the
// server does not answer; it answered "check for a cleanup of ... before
// reading: register read in <prefix>:promstore:readers: ...", as if a
// cleanup were the trouble.
func TestRedisDownSaysSo(t *testing.T) {
	rs := testenv.StartRedis(t)
	st := openRedis(t, rs)
	srv := start(t, Options{Store: cleanup.Consistent(st), StoreName: st.Describe()})
	if r := get(t, nil, srv.url+"/metrics", nil); r.status != 200 {
		t.Fatalf("redis up: status %d %s", r.status, r.body)
	}
	rs.Stop()
	r := get(t, nil, srv.url+"/metrics", nil)
	if r.status != http.StatusInternalServerError || !strings.Contains(r.body, "connection refused") {
		t.Fatalf("redis down: status %d body %q, want 500 saying the connection was refused", r.status, r.body)
	}
	if strings.Contains(r.body, "cleanup") || strings.Contains(r.body, "register read") {
		t.Errorf("redis down: %q blames a cleanup check", r.body)
	}
}

// TestFailedScrapeNamesWhatFailsIt: a scrape failed by a key that cannot
// be read names that key and counts only such keys, not an orphan beside
// it (which alone would be skipped and served): the error used to say
// "2 shards could not be read; first: <the orphan>", pointing the user at
// the one key that did not matter.
func TestFailedScrapeNamesWhatFailsIt(t *testing.T) {
	ctx := context.Background()
	rs, st, k := jobsRedis(t, "4101")
	c := rs.Client()
	// The orphan's shard (pid 4100) sorts before the broken key's.
	orphan := "gunicorn:counter:4100:metric:22222222222222222222222222222222"
	bad := fmt.Sprintf("gunicorn:counter:4101:metric:%x", md5.Sum([]byte(k.Text)))
	tests := []struct {
		key, value string
	}{
		{orphan, "5.0"},
		{bad, "notafloat"},
	}
	for _, tt := range tests {
		if err := c.HSet(ctx, tt.key, "value", tt.value).Err(); err != nil {
			t.Fatal(err)
		}
	}
	srv := start(t, Options{Store: cleanup.Consistent(st), StoreName: st.Describe()})
	r := get(t, nil, srv.url+"/metrics", nil)
	if r.status != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", r.status)
	}
	if !strings.Contains(r.body, "shard "+bad+`: value "notafloat" is not a number`) || strings.Contains(r.body, orphan) {
		t.Errorf("the answer names %q, want the key that is not a number and not the orphan", r.body)
	}
	if logs := srv.logs.String(); !strings.Contains(logs, "shards=1 ") || !strings.Contains(logs, bad) {
		t.Errorf("the log does not count and name the failing key alone:\n%s", logs)
	}
}
