package cleanup

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/render"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/redisstore"
	"github.com/promstore/promstore/internal/testenv"
)

// loadRedisFixture loads the gunicorn-prometheus-exporter fixture into
// srv with its pids renamed per pids (renamed to "": left out).
func loadRedisFixture(t testing.TB, srv *testenv.RedisServer, pids map[string]string) {
	t.Helper()
	ctx := context.Background()
	c := srv.Client()
	if err := c.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(testenv.FixturesDir(t), "gpe-0.2.4-redis", "store.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	pipe := c.Pipeline()
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Key  string            `json:"key"`
			Hash map[string]string `json:"hash"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		k := line.Key
		skip := false
		for old, pid := range pids {
			if strings.Contains(k, ":"+old+":") {
				k = strings.Replace(k, ":"+old+":", ":"+pid+":", 1)
				skip = pid == ""
			}
		}
		if skip {
			continue
		}
		pipe.HSet(ctx, k, line.Hash)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

func openRedis(t testing.TB, srv *testenv.RedisServer) *redisstore.Store {
	t.Helper()
	st, err := redisstore.Open(context.Background(), redisstore.Config{URLs: []string{srv.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// dumpStore returns the text exposition of st without the samples of the
// shards skip says to leave out.
func dumpStore(t testing.TB, st store.Reader, skip func(store.ShardID) bool) []byte {
	t.Helper()
	agg := aggregate.New()
	err := st.Scan(context.Background(), func(s store.Sample) error {
		if skip != nil && skip(s.Shard) {
			return nil
		}
		return agg.Add(s)
	})
	if _, partial := store.Partial(err); err != nil && !partial {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := render.Text(&b, agg.Families()); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func liveGaugeOf(pids ...string) func(store.ShardID) bool {
	return func(id store.ShardID) bool {
		if id.Kind != store.KindGauge || !store.IsLiveMode(id.Mode) {
			return false
		}
		for _, p := range pids {
			if id.PID == p {
				return true
			}
		}
		return false
	}
}

// TestRedisDeadPIDs cleans the exporter's Redis fixture with three pids
// renamed to exited processes and one to a running one.
func TestRedisDeadPIDs(t *testing.T) {
	srv := testenv.StartRedis(t)
	live := testenv.LivePID(t)
	dead := []string{testenv.DeadPID(t), testenv.DeadPID(t), testenv.DeadPID(t)}
	loadRedisFixture(t, srv, map[string]string{"4100": dead[0], "4101": dead[1], "4102": live, "4103": dead[2]})
	st := openRedis(t, srv)
	want := dumpStore(t, st, liveGaugeOf(dead...))

	if _, err := Run(context.Background(), RedisTarget(st), Options{DeadPIDs: true}); err == nil || !strings.Contains(err.Error(), "--local") {
		t.Fatalf("--dead-pids without --local on Redis: err = %v", err)
	}
	res, err := Run(context.Background(), RedisTarget(st), Options{DeadPIDs: true, Local: true})
	if err != nil {
		t.Fatal(err)
	}
	if s := res.Plan.Summary(); s.Compacted == 0 || s.Removed == 0 {
		t.Fatalf("summary %+v", s)
	}
	compareDumps(t, dumpStore(t, st, nil), want, false)
	infos, _ := st.Shards(context.Background())
	archives := 0
	for _, in := range infos {
		switch {
		case IsArchivePID(in.ID.PID):
			archives++
		case in.ID.PID == live:
		case in.ID.Kind == store.KindGauge && in.ID.Mode == "all":
		default:
			t.Errorf("shard %s of a dead pid left", in.ID)
		}
	}
	if archives == 0 {
		t.Error("no archive shards in Redis")
	}
	if v, ok, _ := st.GetAux(context.Background(), redisJournalName); ok {
		t.Errorf("journal left: %.80s", v)
	}
}

// TestRedisCrashAtEveryStep is the Redis twin of TestCrashAtEveryStep,
// comparing dumps (Redis keys carry write times).
func TestRedisCrashAtEveryStep(t *testing.T) {
	srv := testenv.StartRedis(t)
	live := testenv.LivePID(t)
	dead := []string{testenv.DeadPID(t)}
	// Process 4102 stands for an archive of an earlier promstore (pid
	// "archive"), which the run folds into its new generation.
	pids := map[string]string{"4100": dead[0], "4101": live, "4102": ArchivePID, "4103": ""}
	loadRedisFixture(t, srv, pids)
	st := openRedis(t, srv)
	want := dumpStore(t, st, liveGaugeOf(dead...))
	var steps []string
	opts := Options{DeadPIDs: true, Local: true}
	opts.afterStep = func(s string) error { steps = append(steps, s); return nil }
	if _, err := Run(context.Background(), RedisTarget(st), opts); err != nil {
		t.Fatal(err)
	}
	compareDumps(t, dumpStore(t, st, nil), want, false)
	errCrash := errors.New("simulated crash")
	for k := range steps {
		t.Run(fmt.Sprintf("after_%02d", k+1), func(t *testing.T) {
			loadRedisFixture(t, srv, pids)
			n := 0
			opts := Options{DeadPIDs: true, Local: true}
			opts.afterStep = func(string) error {
				if n++; n == k+1 {
					return errCrash
				}
				return nil
			}
			if _, err := Run(context.Background(), RedisTarget(st), opts); !errors.Is(err, errCrash) {
				t.Fatalf("crashing run: %v", err)
			}
			// Each archive and its sources change in one transaction:
			// whatever step the run stopped after, a plain read (not
			// promstore's journal-aware one) is right.
			compareDumps(t, dumpStore(t, st, liveGaugeOf(dead...)), want, false)
			if _, err := Run(context.Background(), RedisTarget(st), Options{DeadPIDs: true, Local: true}); err != nil {
				t.Fatal(err)
			}
			compareDumps(t, dumpStore(t, st, nil), want, false)
		})
	}
}

// TestRedisOrphans removes orphan metric hashes and shadowed modeless
// gauge hashes, sparing fresh ones, without changing the dump.
func TestRedisOrphans(t *testing.T) {
	srv := testenv.StartRedis(t)
	loadRedisFixture(t, srv, nil)
	ctx := context.Background()
	c := srv.Client()
	c.HSet(ctx, "gunicorn:counter:4100:metric:00000000000000000000000000000001", "value", "5.0", "timestamp", "0.0", "updated_at", "1000.0")
	c.HSet(ctx, "gunicorn:counter:4100:metric:00000000000000000000000000000002", "value", "5.0", "timestamp", "0.0", "updated_at", "9999999999.0")
	st := openRedis(t, srv)
	before := dumpStore(t, st, nil)
	res, err := Run(ctx, RedisTarget(st), Options{Orphans: true, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	var spared, old int
	for _, o := range res.Orphans {
		if o.Spared {
			spared++
		} else {
			old++
		}
	}
	if spared != 1 || old < 1 {
		t.Fatalf("orphans %+v", res.Orphans)
	}
	if _, err := Run(ctx, RedisTarget(st), Options{Orphans: true}); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Exists(ctx, "gunicorn:counter:4100:metric:00000000000000000000000000000001").Result(); n != 0 {
		t.Error("old orphan still there")
	}
	if n, _ := c.Exists(ctx, "gunicorn:counter:4100:metric:00000000000000000000000000000002").Result(); n != 1 {
		t.Error("fresh orphan removed")
	}
	left, err := st.Orphans(ctx)
	if err != nil || len(left) != 1 {
		t.Errorf("orphans left: %v, %v", left, err)
	}
	compareDumps(t, dumpStore(t, st, nil), before, false)
}

// TestRedisClusterCleanup: on a real 3-master Cluster no transaction can
// hold an archive's keys and its sources' (other slots), so the run works
// in steps under its journal; it still folds the older archive into a
// new generation, and promstore's readers are exact after every step
// (a run stopped at each step, then rerun).
func TestRedisClusterCleanup(t *testing.T) {
	rc := testenv.StartCluster(t)
	ctx := context.Background()
	st, err := redisstore.Open(ctx, redisstore.Config{URLs: rc.URLs()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	target := RedisTarget(st)
	if target.Replace != nil {
		t.Fatal("a Cluster target has a one-transaction Replace")
	}
	key, err := store.ParseKey(store.EncodeKey("jobs", "jobs_total", []store.Label{{Name: "kind", Value: "a"}}, "Jobs."))
	if err != nil {
		t.Fatal(err)
	}
	write := func(pid string, v float64) {
		t.Helper()
		if err := st.WriteShard(ctx, store.ShardID{Kind: store.KindCounter, PID: pid}, []store.Sample{{Key: key, Value: v}}); err != nil {
			t.Fatal(err)
		}
	}
	reader := Consistent(st)
	for stopAt := 1; ; stopAt++ {
		if err := rc.Client().ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return c.FlushAll(ctx).Err() }); err != nil {
			t.Fatal(err)
		}
		write(ArchivePID, 100) // an archive of an earlier promstore
		var pids []string
		for i := range 3 {
			pid := testenv.DeadPID(t)
			pids = append(pids, pid)
			write(pid, float64(i+1))
		}
		steps := 0
		opts := Options{PIDs: pids, MinIdle: -1}
		opts.afterStep = func(string) error {
			if steps++; steps == stopAt {
				return errCrash
			}
			return nil
		}
		_, err := Run(ctx, target, opts)
		crashed := errors.Is(err, errCrash)
		if err != nil && !crashed {
			t.Fatal(err)
		}
		if jobs, _, err := totals(ctx, reader); err != nil || jobs != 106 {
			t.Fatalf("stopped after step %d: promstore read jobs_total %v, want 106 (%v)", stopAt, jobs, err)
		}
		if _, err := Run(ctx, target, Options{PIDs: pids, MinIdle: -1}); err != nil {
			t.Fatal(err)
		}
		if jobs, _, err := totals(ctx, st); err != nil || jobs != 106 {
			t.Fatalf("after the rerun: jobs_total %v, want 106 (%v)", jobs, err)
		}
		infos, err := st.Shards(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(infos) != 1 || infos[0].ID.PID != ArchivePIDOf(1) {
			t.Fatalf("shards %v, want counter_%s only", infos, ArchivePIDOf(1))
		}
		if !crashed {
			t.Logf("%d steps, each stopped at once and rerun: reads exact", stopAt-1)
			return
		}
	}
}
