package redisstore

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/storetest"
	"github.com/promstore/promstore/internal/testenv"
)

func openStore(t *testing.T, cfg Config) *Store {
	t.Helper()
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open %s: %v", cfg.Redacted(), err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func flushAll(t *testing.T, c redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	if cc, ok := c.(*redis.ClusterClient); ok {
		if err := cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			return n.FlushAll(ctx).Err()
		}); err != nil {
			t.Fatalf("flushall: %v", err)
		}
		return
	}
	if err := c.FlushAll(ctx).Err(); err != nil {
		t.Fatalf("flushall: %v", err)
	}
}

func TestContractStandalone(t *testing.T) {
	srv := testenv.StartRedis(t)
	c := srv.Client()
	for _, prefix := range []string{"", "app:metrics:", "we*ird?[x]"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store {
				flushAll(t, c)
				return openStore(t, Config{URLs: []string{srv.URL()}, Prefix: prefix, BatchSize: 50})
			})
		})
	}
}

func TestContractCluster(t *testing.T) {
	rc := testenv.StartCluster(t)
	c := rc.Client()
	storetest.Run(t, func(t *testing.T) store.Store {
		flushAll(t, c)
		return openStore(t, Config{URLs: rc.URLs(), BatchSize: 64})
	})
}

// loadFixture HSETs every line of a store.jsonl (key, hash) into c, with
// the prefix gunicorn replaced by prefix when that is not empty.
func loadFixture(t *testing.T, c redis.UniversalClient, prefix string) int {
	t.Helper()
	var rename func(string) string
	if prefix != "" {
		rename = func(key string) string { return prefix + strings.TrimPrefix(key, "gunicorn") }
	}
	return testenv.LoadRedisJSONL(t, c, filepath.Join(testenv.FixturesDir(t), "gpe-0.2.4-redis", "store.jsonl"), rename)
}

func expectedProm(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.FixturesDir(t), "gpe-0.2.4-redis", "expected.prom"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dump aggregates a store as `promstore dump` does.
func dump(t *testing.T, s *Store) []byte {
	t.Helper()
	return storetest.Dump(t, s)
}

func TestFixtureStandalone(t *testing.T) {
	srv := testenv.StartRedis(t)
	for _, prefix := range []string{"", "app:gunicorn:"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			c := srv.Client()
			flushAll(t, c)
			loadFixture(t, c, strings.TrimSuffix(prefix, ":"))
			s := openStore(t, Config{URLs: []string{srv.URL()}, Prefix: prefix, BatchSize: 100})
			got := dump(t, s)
			testenv.CompareExposition(t, got, expectedProm(t))
			s.ResetStats()
			if again := dump(t, s); !bytes.Equal(got, again) {
				t.Errorf("two dumps differ")
			}
			st := s.Stats()
			t.Logf("stats of one dump: %+v", st)
			// 3760 keys: round trips grow with keys/batch, not keys.
			if st.Keys != 3760 || st.RoundTrips > 3760/100*5/2 {
				t.Errorf("%d round trips for %d keys with batch 100", st.RoundTrips, st.Keys)
			}
			if st.Problems != 0 {
				t.Errorf("problems: %d", st.Problems)
			}
		})
	}
}

func TestFixtureCluster(t *testing.T) {
	rc := testenv.StartCluster(t)
	c := rc.Client()
	loadFixture(t, c, "")
	// The keys really are spread over all masters.
	ctx := context.Background()
	if err := c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		if size := n.DBSize(ctx).Val(); size < 500 {
			t.Errorf("master %s holds %d keys", n.Options().Addr, size)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, Config{URLs: rc.URLs()[:1], Cluster: true})
	testenv.CompareExposition(t, dump(t, s), expectedProm(t))
	if st := s.Stats(); st.Keys != 3760 {
		t.Errorf("scanned %d keys, want 3760", st.Keys)
	}
}

// TestFixtureShards checks Shards on the fixture, and that deleting a gauge
// shard also removes the modeless hashes that read as its samples.
func TestFixtureShards(t *testing.T) {
	srv := testenv.StartRedis(t)
	c := srv.Client()
	loadFixture(t, c, "")
	s := openStore(t, Config{URLs: []string{srv.URL()}})
	ctx := context.Background()
	infos, err := s.Shards(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// 3 kinds + 10 gauge modes, 4 pids.
	if len(infos) != 13*4 {
		t.Errorf("%d shards, want 52", len(infos))
	}
	total := 0
	for _, in := range infos {
		total += in.Samples
		if in.Bytes <= 0 || in.Updated.Year() < 2020 || in.Alive != store.AliveUnknown {
			t.Errorf("shard %s: bytes %d updated %v alive %s", in.ID, in.Bytes, in.Updated, in.Alive)
		}
		if want := "gunicorn:" + in.ID.KindName() + ":" + in.ID.PID + ":*"; in.Location != want {
			t.Errorf("shard %s: location %q, want %q", in.ID, in.Location, want)
		}
	}
	// 1876 metric hashes minus 194 modeless shadows.
	if total != 1876-194 {
		t.Errorf("%d samples, want %d", total, 1876-194)
	}

	id := store.ShardID{Kind: store.KindGauge, Mode: "mostrecent", PID: "4100"}
	if err := s.DeleteShard(ctx, id); err != nil {
		t.Fatal(err)
	}
	for _, smp := range storetest.ScanAll(t, s) {
		if smp.Shard.PID == "4100" && strings.HasPrefix(smp.Key.Family, "oracle_gauge_mostrecent") {
			t.Errorf("after deleting %s: %s %s still read", id, smp.Shard, smp.Key.Text)
		}
	}
	if n := c.Exists(ctx, "gunicorn:gauge:4100:metric:14bc33fe43efacb3ae4b104bdcbf6079").Val(); n != 0 {
		t.Errorf("modeless hash of the never-set mostrecent series survived")
	}
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{nil, "redis://localhost:6379/0 prefix gunicorn"},
		{map[string]string{"REDIS_HOST": "r1", "REDIS_PORT": "7000", "REDIS_DB": "3", "REDIS_PASSWORD": "pw", "REDIS_KEY_PREFIX": "app:"},
			"redis://:xxxxx@r1:7000/3 prefix app"},
		{map[string]string{"REDIS_HOST": "ignored", "REDIS_DB": "2", "REDIS_PASSWORD": "pw", "PROMETHEUS_REDIS_URL": "rediss://u@h:6380"},
			"rediss://u:xxxxx@h:6380/2 prefix gunicorn"},
		{map[string]string{"REDIS_DB": "2", "PROMETHEUS_REDIS_URL": "redis://:own@h/5"},
			"redis://:xxxxx@h/5 prefix gunicorn"},
		{map[string]string{"REDIS_HOST": "::1"}, "redis://[::1]:6379/0 prefix gunicorn"},
	}
	for _, tt := range tests {
		c := ConfigFromEnv(func(k string) string { return tt.env[k] })
		if got := c.Redacted(); got != tt.want {
			t.Errorf("env %v: %q, want %q", tt.env, got, tt.want)
		}
	}
	c := ConfigFromEnv(func(k string) string {
		return map[string]string{"REDIS_PASSWORD": "s3cr3t", "REDIS_PORT": "7001"}[k]
	})
	opts, _, err := c.withDefaults().clientOptions()
	if err != nil {
		t.Fatal(err)
	}
	if opts.Password != "s3cr3t" || opts.Addrs[0] != "localhost:7001" || opts.DB != 0 {
		t.Errorf("options %+v", opts)
	}
}

func TestRedactedNeverShowsPassword(t *testing.T) {
	for _, raw := range []string{
		"redis://user:hunter2@h:1/0",
		"redis://:hunter2@h:1",
		"redis://:hunter2@h:1/0?password=hunter2",
		"redis://:hunt er2%zz@h:1", // not a valid URL
	} {
		c := Config{URLs: []string{raw, raw}, Prefix: "p"}
		if got := c.Redacted(); strings.Contains(got, "hunter2") || strings.Contains(got, "hunt er2") {
			t.Errorf("Redacted(%q) = %q", raw, got)
		}
		if _, err := Open(context.Background(), Config{URLs: []string{raw}, DialTimeout: 50 * time.Millisecond}); err != nil && strings.Contains(err.Error(), "hunt") {
			t.Errorf("Open(%q) error shows the password: %v", raw, err)
		}
	}
}

func TestOpenRegisteredBackend(t *testing.T) {
	srv := testenv.StartRedis(t)
	for _, loc := range []any{Config{URLs: []string{srv.URL()}}, &Config{URLs: []string{srv.URL()}}} {
		s, err := store.Open(context.Background(), store.Location{Redis: loc})
		if err != nil {
			t.Fatalf("store.Open(%T): %v", loc, err)
		}
		if !strings.Contains(s.Describe(), srv.Addr()) {
			t.Errorf("Describe %q lacks %s", s.Describe(), srv.Addr())
		}
		s.Close()
	}
	if _, err := store.Open(context.Background(), store.Location{Redis: "redis://x"}); err == nil {
		t.Errorf("a string location was accepted")
	}
}

func TestWrongPassword(t *testing.T) {
	srv := testenv.StartRedis(t, testenv.RedisOptions{Password: "right-one"})
	_, err := Open(context.Background(), Config{URLs: []string{"redis://:Wr0ngPassw0rd@" + srv.Addr()}})
	if err == nil {
		t.Fatal("open with a wrong password succeeded")
	}
	msg := err.Error()
	if strings.Contains(msg, "Wr0ngPassw0rd") || strings.Contains(msg, "right-one") {
		t.Errorf("error shows a password: %v", msg)
	}
	if !strings.Contains(msg, srv.Addr()) || !strings.Contains(strings.ToLower(msg), "pass") {
		t.Errorf("error does not name the server and the cause: %v", msg)
	}
	// No password at all.
	_, err = Open(context.Background(), Config{URLs: []string{"redis://" + srv.Addr()}})
	if err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("open without password: %v", err)
	}
	// The right one works.
	openStore(t, Config{URLs: []string{srv.URL()}})
}

func TestConnectionRefused(t *testing.T) {
	srv := testenv.StartRedis(t)
	srv.Stop()
	start := time.Now()
	_, err := Open(context.Background(), Config{URLs: []string{"redis://:pw@" + srv.Addr()}, DialTimeout: time.Second})
	if err == nil {
		t.Fatal("open of a stopped server succeeded")
	}
	if !strings.HasPrefix(err.Error(), "redis "+srv.Addr()+": ") || !strings.Contains(err.Error(), "refused") {
		t.Errorf("error %q: want redis <addr>: ... connection refused", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("open took %v", time.Since(start))
	}
}

// stopHook stops a server when the client is about to send its n-th
// SCAN (or, with pipelines set, its n-th pipeline reading metric hashes;
// see failHook).
type stopHook struct {
	srv       *testenv.RedisServer
	pipelines bool
	n         int
	sent      atomic.Int32
}

func (h *stopHook) maybeStop() {
	if int(h.sent.Add(1)) == h.n {
		h.srv.Stop()
	}
}

func (h *stopHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *stopHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !h.pipelines && cmd.Name() == "scan" {
			h.maybeStop()
		}
		return next(ctx, cmd)
	}
}

func (h *stopHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.pipelines && reads(cmds, "value") {
			h.maybeStop()
		}
		return next(ctx, cmds)
	}
}

// TestStoppedMidScan stops Redis in the middle of a scan, between SCAN
// calls and between the pipelines that read the hashes: the scan fails
// with an error naming the server instead of hanging, and works again
// after a restart.
func TestStoppedMidScan(t *testing.T) {
	for _, tc := range []struct {
		name      string
		pipelines bool
		at        int // the SCAN or pipeline that finds the server stopped
	}{
		{"during SCAN", false, 3},
		{"while reading hashes", true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testenv.StartRedis(t)
			loadFixture(t, srv.Client(), "")
			s := openStore(t, Config{URLs: []string{srv.URL()}, BatchSize: 5, DialTimeout: time.Second, ReadTimeout: time.Second})
			h := &stopHook{srv: srv, pipelines: tc.pipelines, n: tc.at}
			s.client.AddHook(h)
			done := make(chan error, 1)
			go func() { done <- s.Scan(context.Background(), func(store.Sample) error { return nil }) }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), srv.Addr()) {
					t.Errorf("scan over a stopped server: %v", err)
				}
				if _, partial := store.Partial(err); partial {
					t.Errorf("a lost server is reported as partial: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("scan hangs after the server stopped")
			}
			if h.sent.Load() < int32(tc.at) {
				t.Fatalf("the scan sent %d, fewer than %d", h.sent.Load(), tc.at)
			}
			// After a restart the store works again (empty now).
			srv.Restart()
			if got := storetest.ScanAll(t, s); len(got) != 0 {
				t.Errorf("%d samples after restart", len(got))
			}
		})
	}
}

// TestSlowRedis pauses the server beyond ReadTimeout: a timeout error.
func TestSlowRedis(t *testing.T) {
	srv := testenv.StartRedis(t)
	loadFixture(t, srv.Client(), "")
	s := openStore(t, Config{URLs: []string{srv.URL()}, ReadTimeout: 200 * time.Millisecond})
	if err := srv.Client().Do(context.Background(), "client", "pause", 3000, "all").Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := s.Scan(context.Background(), func(store.Sample) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "timeout") || !strings.Contains(err.Error(), srv.Addr()) {
		t.Errorf("scan of a paused server: %v", err)
	}
	if d := time.Since(start); d > 2900*time.Millisecond {
		t.Errorf("timeout took %v, ReadTimeout is 200ms", d)
	}
}

// TestContextCanceled: a cancelled scan returns promptly with ctx's error.
func TestContextCanceled(t *testing.T) {
	srv := testenv.StartRedis(t)
	loadFixture(t, srv.Client(), "")
	s := openStore(t, Config{URLs: []string{srv.URL()}, BatchSize: 50})
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := s.Scan(ctx, func(store.Sample) error {
		if n++; n == 5 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled scan: %v", err)
	}
}

func TestClusterNodeDown(t *testing.T) {
	rc := testenv.StartCluster(t)
	loadFixture(t, rc.Client(), "")
	s := openStore(t, Config{URLs: rc.URLs(), DialTimeout: time.Second, ReadTimeout: time.Second})
	rc.StopNode(1)
	done := make(chan error, 1)
	go func() { done <- s.Scan(context.Background(), func(store.Sample) error { return nil }) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "redis ") {
			t.Errorf("scan with a master down: %v", err)
		}
		t.Logf("error: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("scan hangs with a master down")
	}
}

// TestProblems plants every kind of bad key beside good ones: each is
// reported by name and the rest is read.
func TestProblems(t *testing.T) {
	srv := testenv.StartRedis(t)
	c := srv.Client()
	ctx := context.Background()
	s := openStore(t, Config{URLs: []string{srv.URL()}})
	good := storetest.Key(t, "g", "g", []store.Label{{Name: "a", Value: "1"}}, "h")
	id := store.ShardID{Kind: store.KindGauge, Mode: "max", PID: "1"}
	if err := s.WriteShard(ctx, id, []store.Sample{{Key: good, Value: 5}}); err != nil {
		t.Fatal(err)
	}
	key := func(k string) string { return "gunicorn:" + k }
	okMeta := map[string]any{"original_key": `["x", "x_total", {}, ""]`, "created_at": "1.0"}
	xsum := md5hex(`["x", "x_total", {}, ""]`)
	badKey := `["x", "x_total"]`
	plant := map[string]any{
		// Orphan: metric without meta.
		key("counter:2:metric:" + xsum): map[string]any{"value": "1.0", "timestamp": "0.0"},
		// Meta without original_key.
		key("counter:3:metric:" + xsum): map[string]any{"value": "1.0", "timestamp": "0.0"},
		key("counter:3:meta:" + xsum):   map[string]any{"created_at": "1.0"},
		// Value that is not a number.
		key("counter:4:metric:" + xsum): map[string]any{"value": "abc", "timestamp": "0.0"},
		key("counter:4:meta:" + xsum):   okMeta,
		// original_key that does not hash to the key's md5.
		key("counter:5:metric:00000000000000000000000000000000"): map[string]any{"value": "1.0", "timestamp": "0.0"},
		key("counter:5:meta:00000000000000000000000000000000"):   okMeta,
		// Unknown kind.
		key("gauge_bogus:6:metric:" + xsum): map[string]any{"value": "1.0", "timestamp": "0.0"},
		key("gauge_bogus:6:meta:" + xsum):   okMeta,
		// Meta without metric: not a problem.
		key("counter:8:meta:" + xsum): okMeta,
		// Unparsable original_key with a matching md5.
		key("counter:9:metric:" + md5hex(badKey)): map[string]any{"value": "1.0", "timestamp": "0.0"},
		key("counter:9:meta:" + md5hex(badKey)):   map[string]any{"original_key": badKey},
		// A good one beside them.
		key("counter:10:metric:" + xsum): map[string]any{"value": "2.5", "timestamp": "0.0", "updated_at": "1700000000.5"},
		key("counter:10:meta:" + xsum):   okMeta,
	}
	for k, v := range plant {
		if err := c.HSet(ctx, k, v).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// A string where a hash is expected.
	c.Set(ctx, key("counter:7:metric:"+xsum), "1.0", 0)
	c.HSet(ctx, key("counter:7:meta:"+xsum), okMeta)
	// Key names that do not follow the layout.
	c.HSet(ctx, key("counter:metric:"+xsum), "value", "1.0")
	c.HSet(ctx, key("unrelated"), "x", "1") // foreign key under the prefix: ignored

	var got []store.Sample
	err := s.Scan(ctx, func(smp store.Sample) error { got = append(got, smp); return nil })
	problems, partial := store.Partial(err)
	if !partial {
		t.Fatalf("scan: %v, want a partial error", err)
	}
	wantProblems := map[string]string{
		key("counter:2:metric:" + xsum):                          "meta hash gunicorn:counter:2:meta:" + xsum + " is missing",
		key("counter:3:metric:" + xsum):                          "has no original_key",
		key("counter:4:metric:" + xsum):                          `value "abc" is not a number`,
		key("counter:5:metric:00000000000000000000000000000000"): "does not hash to",
		key("gauge_bogus:6:metric:" + xsum):                      `unknown gauge mode "bogus"`,
		key("counter:7:metric:" + xsum):                          "WRONGTYPE",
		key("counter:metric:" + xsum):                            "key name is not",
		key("counter:9:metric:" + md5hex(badKey)):                "original_key",
	}
	seen := map[string]bool{}
	for _, p := range problems {
		seen[p.Shard] = true
		want, ok := wantProblems[p.Shard]
		if !ok {
			t.Errorf("unexpected problem %v", p)
			continue
		}
		if !strings.Contains(p.Error(), want) || !strings.Contains(p.Error(), p.Shard) {
			t.Errorf("problem %q, want it to name the key and say %q", p.Error(), want)
		}
		// A metric hash whose meta hash is missing or names nothing is an
		// orphan (what a write stopped part-way leaves); no other is.
		orphan := p.Shard == key("counter:2:metric:"+xsum) || p.Shard == key("counter:3:metric:"+xsum)
		if (p.Kind == store.ProblemOrphan) != orphan {
			t.Errorf("problem %q: kind %v, want orphan %v", p.Error(), p.Kind, orphan)
		}
	}
	for k := range wantProblems {
		if !seen[k] {
			t.Errorf("no problem reported for %s", k)
		}
	}
	if len(got) != 2 {
		t.Fatalf("read %d samples beside the problems, want 2: %v", len(got), got)
	}
	if got[0].Shard.KindName() != "counter" || got[0].Shard.PID != "10" || got[0].Value != 2.5 {
		t.Errorf("sample 0 = %+v", got[0])
	}
	if got[1].Shard != id || got[1].Value != 5 {
		t.Errorf("sample 1 = %+v", got[1])
	}

	// Shards lists the problems per shard.
	infos, err := s.Shards(ctx)
	if _, partial := store.Partial(err); !partial {
		t.Errorf("shards: %v, want partial (keys outside any shard)", err)
	}
	for _, in := range infos {
		if in.ID.PID == "2" && (len(in.Problems) != 1 || !strings.Contains(in.Problems[0], "orphan")) {
			t.Errorf("shard %s problems %v", in.ID, in.Problems)
		}
		if in.ID.PID == "10" && (len(in.Problems) != 0 || in.Updated.Unix() != 1700000000) {
			t.Errorf("shard %s: %+v", in.ID, in)
		}
	}
}

// TestModeless checks the three cases of formats.md for modeless gauge keys.
func TestModeless(t *testing.T) {
	srv := testenv.StartRedis(t)
	c := srv.Client()
	ctx := context.Background()
	s := openStore(t, Config{URLs: []string{srv.URL()}})
	k1 := storetest.Key(t, "g1", "g1", nil, "shadowed")
	k2 := storetest.Key(t, "g2", "g2", nil, "adopted")
	k3 := storetest.Key(t, "g3", "g3", nil, "bare")
	sum := func(k *store.Key) string { return md5hex(k.Text) }
	zero := map[string]any{"value": "0.0", "timestamp": "0.0", "updated_at": "1.0"}
	// g1: a real gauge_max value plus a modeless shadow holding 0.
	if err := s.WriteShard(ctx, store.ShardID{Kind: store.KindGauge, Mode: "max", PID: "1"}, []store.Sample{{Key: k1, Value: 9}}); err != nil {
		t.Fatal(err)
	}
	c.HSet(ctx, "gunicorn:gauge:1:metric:"+sum(k1), zero)
	c.HSet(ctx, "gunicorn:gauge:1:meta:"+sum(k1), "original_key", k1.Text)
	// g2: only a gauge_livesum meta (without original_key) and the modeless pair.
	c.HSet(ctx, "gunicorn:gauge_livesum:1:meta:"+sum(k2), "typ", "gauge", "multiprocess_mode", "livesum")
	c.HSet(ctx, "gunicorn:gauge:1:metric:"+sum(k2), zero)
	c.HSet(ctx, "gunicorn:gauge:1:meta:"+sum(k2), "original_key", k2.Text)
	// g3: the modeless pair alone reads as mode all.
	c.HSet(ctx, "gunicorn:gauge:1:metric:"+sum(k3), "value", "4.0", "timestamp", "0.0")
	c.HSet(ctx, "gunicorn:gauge:1:meta:"+sum(k3), "original_key", k3.Text)

	got := storetest.ScanAll(t, s)
	want := []store.Sample{
		{Shard: store.ShardID{Kind: store.KindGauge, Mode: "max", PID: "1"}, Key: k1, Value: 9},
		{Shard: store.ShardID{Kind: store.KindGauge, Mode: "livesum", PID: "1"}, Key: k2, Value: 0},
		{Shard: store.ShardID{Kind: store.KindGauge, Mode: "all", PID: "1"}, Key: k3, Value: 4},
	}
	storetest.CompareSamples(t, got, want)

	infos, err := s.Shards(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		joined := strings.Join(in.Problems, "; ")
		switch in.ID.Mode {
		case "max":
			if !strings.Contains(joined, "1 modeless gauge hashes") || !strings.Contains(joined, "shadowed") {
				t.Errorf("shard %s problems %q", in.ID, joined)
			}
		case "livesum", "all":
			if !strings.Contains(joined, "1 modeless gauge hashes") || !strings.Contains(joined, "read in this shard") {
				t.Errorf("shard %s problems %q", in.ID, joined)
			}
		}
	}

	// Deleting gauge_all removes the bare modeless pair but not the others.
	if err := s.DeleteShard(ctx, store.ShardID{Kind: store.KindGauge, Mode: "all", PID: "1"}); err != nil {
		t.Fatal(err)
	}
	storetest.CompareSamples(t, storetest.ScanAll(t, s), want[:2])
	// Deleting gauge_max removes its shadow too: nothing reappears as mode all.
	if err := s.DeleteShard(ctx, store.ShardID{Kind: store.KindGauge, Mode: "max", PID: "1"}); err != nil {
		t.Fatal(err)
	}
	storetest.CompareSamples(t, storetest.ScanAll(t, s), want[1:2])
}

// TestShardKeysOfOnePass checks that listing the keys of many shards at
// once (ReplaceShard's sources) finds what listing them one by one finds,
// modeless gauge keys and a pid that starts with another included, with
// one SCAN pass over the keyspace.
func TestShardKeysOfOnePass(t *testing.T) {
	srv := testenv.StartRedis(t)
	c := srv.Client()
	ctx := context.Background()
	s := openStore(t, Config{URLs: []string{srv.URL()}})
	k1 := storetest.Key(t, "g1", "g1", nil, "shadowed")
	k2 := storetest.Key(t, "g2", "g2", nil, "adopted")
	k3 := storetest.Key(t, "g3", "g3", nil, "bare")
	kc := storetest.Key(t, "c", "c_total", nil, "")
	sum := func(k *store.Key) string { return md5hex(k.Text) }
	zero := map[string]any{"value": "0.0", "timestamp": "0.0", "updated_at": "1.0"}
	ids := []store.ShardID{
		{Kind: store.KindGauge, Mode: "max", PID: "1"},
		{Kind: store.KindGauge, Mode: "livesum", PID: "1"},
		{Kind: store.KindGauge, Mode: "all", PID: "1"},
		{Kind: store.KindGauge, Mode: "all", PID: "10"},
		{Kind: store.KindCounter, PID: "1"},
		{Kind: store.KindCounter, PID: "10"},
		{Kind: store.KindCounter, PID: "2"}, // no keys
	}
	for _, pid := range []string{"1", "10", "11"} {
		if err := s.WriteShard(ctx, store.ShardID{Kind: store.KindGauge, Mode: "max", PID: pid}, []store.Sample{{Key: k1, Value: 9}}); err != nil {
			t.Fatal(err)
		}
		if err := s.WriteShard(ctx, store.ShardID{Kind: store.KindCounter, PID: pid}, []store.Sample{{Key: kc, Value: 1}}); err != nil {
			t.Fatal(err)
		}
		c.HSet(ctx, "gunicorn:gauge:"+pid+":metric:"+sum(k1), zero)
		c.HSet(ctx, "gunicorn:gauge:"+pid+":meta:"+sum(k1), "original_key", k1.Text)
		c.HSet(ctx, "gunicorn:gauge_livesum:"+pid+":meta:"+sum(k2), "typ", "gauge", "multiprocess_mode", "livesum")
		c.HSet(ctx, "gunicorn:gauge:"+pid+":metric:"+sum(k2), zero)
		c.HSet(ctx, "gunicorn:gauge:"+pid+":meta:"+sum(k2), "original_key", k2.Text)
		c.HSet(ctx, "gunicorn:gauge:"+pid+":metric:"+sum(k3), "value", "4.0", "timestamp", "0.0")
		c.HSet(ctx, "gunicorn:gauge:"+pid+":meta:"+sum(k3), "original_key", k3.Text)
	}
	want := map[store.ShardID][]string{}
	for _, id := range ids {
		keys, err := s.shardKeys(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want[id] = keys
	}
	if len(want[ids[0]]) != 4 || len(want[ids[2]]) != 2 || len(want[ids[4]]) != 2 || len(want[ids[6]]) != 0 {
		t.Fatalf("shardKeys: %v", want)
	}
	if err := c.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := s.shardKeysOf(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if !slices.Equal(got[id], want[id]) {
			t.Errorf("shard %s: one pass listed %q, one by one %q", id, got[id], want[id])
		}
	}
	stats := c.Info(ctx, "commandstats").Val()
	if !strings.Contains(stats, "cmdstat_scan:calls=1,") {
		t.Errorf("listing %d shards took more than one SCAN call:\n%s", len(ids), stats)
	}

	// ShardsDeleter deletes exactly those keys, after one SCAN call.
	gone := map[string]bool{}
	for _, keys := range want {
		for _, k := range keys {
			gone[k] = true
		}
	}
	var left []string
	for _, k := range c.Keys(ctx, "*").Val() {
		if !gone[k] {
			left = append(left, k)
		}
	}
	slices.Sort(left)
	c.ConfigResetStat(ctx)
	del, err := s.ShardsDeleter(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if err := del(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if stats := c.Info(ctx, "commandstats").Val(); !strings.Contains(stats, "cmdstat_scan:calls=1,") {
		t.Errorf("deleting %d shards took more than one SCAN call:\n%s", len(ids), stats)
	}
	now := c.Keys(ctx, "*").Val()
	slices.Sort(now)
	if !slices.Equal(now, left) {
		t.Errorf("after deleting: %q, want %q", now, left)
	}
}

func TestWriteFormat(t *testing.T) {
	srv := testenv.StartRedis(t)
	c := srv.Client()
	ctx := context.Background()
	s := openStore(t, Config{URLs: []string{srv.URL()}, TTL: time.Hour})
	s.now = func() time.Time { return time.Unix(1732550000, 123456000) }
	legacy := storetest.LegacyKey(t, "c", "c_total", []store.Label{{Name: "b", Value: "2"}, {Name: "a", Value: "1"}})
	if err := s.WriteShard(ctx, store.ShardID{Kind: store.KindCounter, PID: "42"}, []store.Sample{{Key: legacy, Value: 1}}); err != nil {
		t.Fatal(err)
	}
	canonical := `["c", "c_total", {"a": "1", "b": "2"}, "Multiprocess metric"]`
	h := md5hex(canonical)
	metric := c.HGetAll(ctx, "gunicorn:counter:42:metric:"+h).Val()
	meta := c.HGetAll(ctx, "gunicorn:counter:42:meta:"+h).Val()
	wantMetric := map[string]string{"value": "1.0", "timestamp": "0.0", "updated_at": "1732550000.123456"}
	wantMeta := map[string]string{"original_key": canonical, "typ": "counter", "multiprocess_mode": "all", "created_at": "1732550000.123456"}
	if !mapsEqual(metric, wantMetric) || !mapsEqual(meta, wantMeta) {
		t.Errorf("metric %v meta %v, want %v %v", metric, meta, wantMetric, wantMeta)
	}
	for _, k := range []string{"gunicorn:counter:42:metric:" + h, "gunicorn:counter:42:meta:" + h} {
		if ttl := c.TTL(ctx, k).Val(); ttl <= 59*time.Minute {
			t.Errorf("%s TTL %v, want 1h", k, ttl)
		}
	}
	// Rewriting keeps created_at.
	s.now = func() time.Time { return time.Unix(1800000000, 0) }
	if err := s.WriteShard(ctx, store.ShardID{Kind: store.KindCounter, PID: "42"}, []store.Sample{{Key: legacy, Value: 2}}); err != nil {
		t.Fatal(err)
	}
	if got := c.HGet(ctx, "gunicorn:counter:42:meta:"+h, "created_at").Val(); got != "1732550000.123456" {
		t.Errorf("created_at after rewrite %q", got)
	}
	if got := c.HGet(ctx, "gunicorn:counter:42:metric:"+h, "updated_at").Val(); got != "1800000000.0" {
		t.Errorf("updated_at after rewrite %q", got)
	}
	// Gauge meta fields, and a negative zero written as Python's str(-0.0).
	g := storetest.Key(t, "g", "g", nil, "")
	negZero := math.Copysign(0, -1)
	if err := s.WriteShard(ctx, store.ShardID{Kind: store.KindGauge, Mode: "livemostrecent", PID: "42"}, []store.Sample{{Key: g, Value: negZero, Timestamp: 1.5}}); err != nil {
		t.Fatal(err)
	}
	meta = c.HGetAll(ctx, "gunicorn:gauge_livemostrecent:42:meta:"+md5hex(g.Text)).Val()
	if meta["typ"] != "gauge" || meta["multiprocess_mode"] != "livemostrecent" {
		t.Errorf("gauge meta %v", meta)
	}
	metric = c.HGetAll(ctx, "gunicorn:gauge_livemostrecent:42:metric:"+md5hex(g.Text)).Val()
	if metric["value"] != "-0.0" || metric["timestamp"] != "1.5" {
		t.Errorf("gauge metric %v, want value -0.0 and timestamp 1.5", metric)
	}
	found := false
	for _, smp := range storetest.ScanAll(t, s) {
		if smp.Shard.Kind == store.KindGauge && smp.Key.Text == g.Text {
			found = true
			if smp.Value != 0 || !math.Signbit(smp.Value) || smp.Timestamp != 1.5 {
				t.Errorf("gauge read back as value %v (sign bit %v), timestamp %v; want -0 and 1.5", smp.Value, math.Signbit(smp.Value), smp.Timestamp)
			}
		}
	}
	if !found {
		t.Errorf("gauge sample not read back")
	}
	if err := s.WriteShard(ctx, store.ShardID{Kind: store.KindGauge, Mode: "bogus", PID: "1"}, nil); err == nil {
		t.Errorf("write to an unknown gauge mode succeeded")
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestSplitKey(t *testing.T) {
	s := &Store{cfg: Config{Prefix: "a:b"}}
	tests := []struct {
		key  string
		want keyName
		ok   bool
	}{
		{"a:b:counter:12:metric:ff", keyName{"counter", "12", "metric", "ff"}, true},
		{"a:b:gauge_all:x:y:meta:ff", keyName{"gauge_all", "x:y", "meta", "ff"}, true},
		{"a:bc:counter:12:metric:ff", keyName{}, false},
		{"a:b:counter:metric:ff", keyName{}, false},
		{"a:b:counter::metric:ff", keyName{"counter", "", "metric", "ff"}, true},
		{"a:b:counter", keyName{}, false},
		{"a:b:counter:12", keyName{}, false},
	}
	for _, tt := range tests {
		got, ok := s.splitKey(tt.key)
		if ok != tt.ok || got != tt.want {
			t.Errorf("splitKey(%q) = %+v %v, want %+v %v", tt.key, got, ok, tt.want, tt.ok)
		}
	}
}

func TestSentinel(t *testing.T) {
	master := testenv.StartRedis(t, testenv.RedisOptions{Password: "m4ster"})
	sentinel := testenv.StartSentinel(t, master, "metrics")
	loadFixture(t, master.Client(), "")
	s := openStore(t, Config{URLs: []string{"redis://:m4ster@" + sentinel.Addr()}, SentinelMaster: "metrics"})
	if d := s.Describe(); strings.Contains(d, "m4ster") || !strings.Contains(d, "sentinel master metrics") {
		t.Errorf("Describe = %q", d)
	}
	testenv.CompareExposition(t, dump(t, s), expectedProm(t))
	// Writes go to the master.
	k := storetest.Key(t, "via", "via_total", nil, "")
	if err := s.WriteShard(context.Background(), store.ShardID{Kind: store.KindCounter, PID: "1"}, []store.Sample{{Key: k, Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if n := master.Client().Exists(context.Background(), "gunicorn:counter:1:metric:"+md5hex(k.Text)).Val(); n != 1 {
		t.Errorf("write through the sentinel did not reach the master")
	}
}

// TestOrphansUpdatedAt: Orphans reads updated_at of each orphan; a
// missing field or a key of another type leaves it unknown (zero)
// instead of failing the listing.
func TestOrphansUpdatedAt(t *testing.T) {
	srv := testenv.StartRedis(t)
	c := srv.Client()
	ctx := context.Background()
	const dated = "gunicorn:counter:1:metric:00000000000000000000000000000001"
	const undated = "gunicorn:counter:1:metric:00000000000000000000000000000002"
	const str = "gunicorn:counter:1:metric:00000000000000000000000000000003"
	if err := c.HSet(ctx, dated, "value", "1.0", "updated_at", "1700000000.5").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.HSet(ctx, undated, "value", "1.0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, str, "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, Config{URLs: []string{srv.URL()}})
	got, err := s.Orphans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{dated: time.Unix(1700000000, 500000000), undated: {}, str: {}}
	if len(got) != len(want) {
		t.Fatalf("Orphans = %+v, want the 3 keys %v", got, want)
	}
	for _, o := range got {
		w, ok := want[o.Key]
		if !ok || !o.Updated.Equal(w) {
			t.Errorf("orphan %s updated %v, want %v (listed: %v)", o.Key, o.Updated, w, ok)
		}
	}
}

// hmgetCalls is how many HMGETs the server has run (INFO commandstats).
func hmgetCalls(t *testing.T, c *redis.Client) int {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_hmget:calls="); ok {
			n, err := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	return 0
}

// TestNamesPerMD5: a scan reads original_key once per md5 (one HMGET per
// metric hash plus one per distinct sample key), names every pid's hash
// of that md5 by it, and reads the members' own meta hashes only when
// the first one names nothing.
func TestNamesPerMD5(t *testing.T) {
	srv := testenv.StartRedis(t)
	c := srv.Client()
	ctx := context.Background()
	s := openStore(t, Config{URLs: []string{srv.URL()}})
	const pids, series = 5, 40
	var keys []*store.Key
	for i := range series {
		keys = append(keys, storetest.Key(t, "c", "c_total", []store.Label{{Name: "i", Value: strconv.Itoa(i)}}, "h"))
	}
	for p := 1; p <= pids; p++ {
		var samples []store.Sample
		for i, k := range keys {
			samples = append(samples, store.Sample{Key: k, Value: float64(p*100 + i)})
		}
		if err := s.WriteShard(ctx, store.ShardID{Kind: store.KindCounter, PID: strconv.Itoa(p)}, samples); err != nil {
			t.Fatal(err)
		}
	}
	before := hmgetCalls(t, c)
	if got := len(storetest.ScanAll(t, s)); got != pids*series {
		t.Fatalf("scanned %d samples, want %d", got, pids*series)
	}
	if got, want := hmgetCalls(t, c)-before, pids*series+series; got != want {
		t.Errorf("scan ran %d HMGETs, want %d (one per metric hash, one per md5)", got, want)
	}

	// Pid 1's meta of key 0 (the one read for the md5) loses original_key:
	// every hash of that md5 is named by its own meta hash, so pid 1's is
	// reported and the other pids' are still read.
	sum0 := md5hex(keys[0].Text)
	c.HDel(ctx, "gunicorn:counter:1:meta:"+sum0, "original_key")
	// Pid 3's meta of key 1 (not the one read) loses it too: its md5's
	// name comes from pid 1, so the sample is still named.
	c.HDel(ctx, "gunicorn:counter:3:meta:"+md5hex(keys[1].Text), "original_key")
	var got []store.Sample
	err := s.Scan(ctx, func(smp store.Sample) error { got = append(got, smp); return nil })
	problems, partial := store.Partial(err)
	if !partial || len(problems) != 1 || problems[0].Shard != "gunicorn:counter:1:metric:"+sum0 || !strings.Contains(problems[0].Error(), "has no original_key") {
		t.Fatalf("scan: %v, want one problem naming gunicorn:counter:1:metric:%s", err, sum0)
	}
	if len(got) != pids*series-1 {
		t.Errorf("scanned %d samples, want %d", len(got), pids*series-1)
	}
	for _, smp := range got {
		if smp.Key == keys[0] && smp.Shard.PID == "1" {
			t.Errorf("read pid 1's sample of a hash without original_key: %+v", smp)
		}
	}
}

// failHook fails the n-th pipeline of the client that reads the field
// (value for metric hashes, original_key for meta hashes) with err before
// sending it. Only those pipelines count: go-redis sends its own (CLIENT
// SETINFO when it opens a connection) through the same hook, and failing
// one of those only makes it dial again.
type failHook struct {
	n     int
	field string
	err   error
	sent  atomic.Int32
}

func reads(cmds []redis.Cmder, field string) bool {
	for _, c := range cmds {
		for _, a := range c.Args() {
			if a == field {
				return true
			}
		}
	}
	return false
}

func (h *failHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *failHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h *failHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if reads(cmds, h.field) && int(h.sent.Add(1)) == h.n {
			for _, c := range cmds {
				c.SetErr(h.err)
			}
			return h.err
		}
		return next(ctx, cmds)
	}
}

// TestReadFailsMidScan: when reading hashes fails while SCAN is still
// listing, or reading the names fails while the last values are read, the
// scan reports that failure, not the cancellation it causes.
func TestReadFailsMidScan(t *testing.T) {
	for _, tc := range []struct {
		name string
		hook *failHook
	}{
		{"values", &failHook{n: 2, field: "value"}},
		{"names", &failHook{n: 1, field: "original_key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testenv.StartRedis(t)
			loadFixture(t, srv.Client(), "")
			s := openStore(t, Config{URLs: []string{srv.URL()}, BatchSize: 5})
			tc.hook.err = errors.New("injected pipeline failure")
			s.client.AddHook(tc.hook)
			err := s.Scan(context.Background(), func(store.Sample) error { return nil })
			if err == nil || !strings.Contains(err.Error(), tc.hook.err.Error()) {
				t.Fatalf("scan: %v, want the pipeline's failure", err)
			}
			if _, partial := store.Partial(err); partial {
				t.Errorf("a failed read is reported as partial: %v", err)
			}
		})
	}
}
