package commands

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/store/redisstore"
	"github.com/promstore/promstore/internal/store/storetest"
	"github.com/promstore/promstore/internal/testenv"
)

// TestMigrateStopReportCountsWhatRedisHolds: a migration into a real
// redis-server that fails part-way stops, and its report says what Redis
// holds of the shards, as the test reads it with plain Redis commands:
// samples present, shards complete, partly written (some samples, or
// metric hashes without their meta hash) and not started, naming the
// partly written shards and an orphan key of each. Once the cause is
// fixed, running the same command again finishes the migration: Redis
// then dumps as the file store does. Two causes: memory running out
// (maxmemory, noeviction), and an ACL user that may write metric hashes
// but not meta hashes: the first batch's meta hashes are refused, so its
// metric hashes are not sent and nothing is written (they were orphans,
// in every shard it started). Neither leaves an orphan metric hash.
func TestMigrateStopReportCountsWhatRedisHolds(t *testing.T) {
	for _, tc := range []struct {
		name string
		// fail makes the server fail part-way and returns the URL to
		// migrate with; fix undoes it and returns the URL of the rerun.
		fail, fix func(t *testing.T, srv *testenv.RedisServer) string
		errRE     string
		// nothingWritten: the run stops at its first batch.
		nothingWritten bool
		// cause is what the report says to mend before a rerun.
		cause string
	}{
		{
			name: "maxmemory noeviction",
			fail: func(t *testing.T, srv *testenv.RedisServer) string {
				// Room for about a sixth of the samples.
				c := srv.Client()
				used := infoField(t, c, "used_memory")
				mustDo(t, c, "config", "set", "maxmemory-policy", "noeviction")
				mustDo(t, c, "config", "set", "maxmemory", strconv.FormatInt(used+1<<20, 10))
				return srv.URL()
			},
			fix: func(t *testing.T, srv *testenv.RedisServer) string {
				mustDo(t, srv.Client(), "config", "set", "maxmemory", "0")
				return srv.URL()
			},
			errRE: `OOM command not allowed when used memory > 'maxmemory'\.`,
			cause: "Redis is out of memory (maxmemory with noeviction): raise maxmemory or free memory",
		},
		{
			name: "ACL forbids meta hashes",
			fail: func(t *testing.T, srv *testenv.RedisServer) string {
				mustDo(t, srv.Client(), "acl", "setuser", "metrics", "on", ">pw", "+@all", "%R~*", "%W~gunicorn:*:metric:*")
				return strings.Replace(srv.URL(), "redis://", "redis://metrics:pw@", 1)
			},
			fix:            func(t *testing.T, srv *testenv.RedisServer) string { return srv.URL() },
			errRE:          `NOPERM .*`,
			nothingWritten: true,
			cause:          "the Redis user may not write these keys (its ACL): give one that may",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			srv := testenv.StartRedis(t)
			c := srv.Client()

			// 60 counter shards of 100 samples each.
			dir := t.TempDir()
			src, err := filestore.Open(ctx, dir, filestore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			type shard struct {
				id      store.ShardID
				samples []store.Sample
			}
			var shards []shard
			for p := 0; p < 60; p++ {
				sh := shard{id: store.ShardID{Kind: store.KindCounter, PID: strconv.Itoa(1000 + p)}}
				for i := 0; i < 100; i++ {
					k := storetest.Key(t, "requests", "requests_total", []store.Label{{Name: "path", Value: fmt.Sprintf("/api/v1/items/%03d", i)}}, "Requests served.")
					sh.samples = append(sh.samples, store.Sample{Key: k, Value: float64(p*1000 + i)})
				}
				if err := src.WriteShard(ctx, sh.id, sh.samples); err != nil {
					t.Fatal(err)
				}
				shards = append(shards, sh)
			}
			want := dumpStore(t, src)
			src.Close()

			code, out, errOut := runCLI(t, nil, "migrate", "file-to-redis", "--dir", dir, "--redis-url", tc.fail(t, srv))
			if code != 1 || out != "" {
				t.Fatalf("exit %d, stdout %q, want 1 and nothing\n%s", code, out, errOut)
			}

			// What Redis holds, read with plain commands.
			var complete, partly, untouched, present, orphans int
			var partial []string
			for _, sh := range shards {
				n := 0
				var own []string
				for _, s := range sh.samples {
					sum := md5.Sum([]byte(store.CanonicalKeyText(s.Key)))
					h := hex.EncodeToString(sum[:])
					metric := "gunicorn:counter:" + sh.id.PID + ":metric:" + h
					meta := "gunicorn:counter:" + sh.id.PID + ":meta:" + h
					v, err := c.HGet(ctx, metric, "value").Result()
					if errors.Is(err, redis.Nil) {
						continue
					} else if err != nil {
						t.Fatal(err)
					}
					if c.Exists(ctx, meta).Val() == 0 {
						own = append(own, metric)
						continue
					}
					if v != store.PyRepr(s.Value) {
						t.Fatalf("%s holds %s, want %s", metric, v, store.PyRepr(s.Value))
					}
					n++
				}
				present += n
				orphans += len(own)
				switch {
				case n == len(sh.samples) && len(own) == 0:
					complete++
				case n == 0 && len(own) == 0:
					untouched++
				default:
					partly++
					line := fmt.Sprintf("promstore:   %s: %d of %d samples", sh.id, n, len(sh.samples))
					sort.Strings(own)
					switch len(own) {
					case 0:
					case 1:
						line += fmt.Sprintf(", 1 unreadable key (shard %s: orphan metric hash: meta hash %s is missing)", own[0], strings.Replace(own[0], ":metric:", ":meta:", 1))
					default:
						line += fmt.Sprintf(", %d unreadable keys (first: shard %s: orphan metric hash: meta hash %s is missing)", len(own), own[0], strings.Replace(own[0], ":metric:", ":meta:", 1))
					}
					partial = append(partial, line)
				}
			}
			if orphans != 0 {
				t.Errorf("%d orphan metric hashes: a metric hash was written although its meta hash was not", orphans)
			}
			if untouched == 0 || (complete == 0) != tc.nothingWritten || (untouched == len(shards)) != tc.nothingWritten {
				t.Fatalf("the run did not stop part-way as intended (%d shards complete, %d partly written, %d not started, %d orphan metric hashes): the test proves nothing", complete, partly, untouched, orphans)
			}
			report := fmt.Sprintf("promstore: migration stopped part-way (error below); read back, the target holds %d of the 6000 samples to write: %d of 60 shards complete, %d partly written, %d not started\n",
				present, complete, partly, untouched)
			if len(partial) > 0 {
				report += "promstore: partly written shards (a rerun finishes them):\n" + strings.Join(partial, "\n") + "\n"
			}
			report += "promstore: " + tc.cause + "; once that is mended, run the same command again to complete it\n"
			lastLine := regexp.MustCompile(`^promstore: write target shard counter_10[0-5][0-9]: write shard counter_10[0-5][0-9]: redis 127\.0\.0\.1:[0-9]+: ` + tc.errRE + `\n$`)
			got, last, _ := strings.Cut(errOut, "promstore: write target shard")
			if got != report || !lastLine.MatchString("promstore: write target shard"+last) {
				t.Fatalf("stderr:\n%s\nwant:\n%sand then the write error", errOut, report)
			}
			t.Logf("stopped with %d of 6000 samples present: %d shards complete, %d partly written, %d not started, %d orphan metric hashes", present, complete, partly, untouched, orphans)

			// With the cause fixed, a rerun finishes the migration.
			code, out, errOut = runCLI(t, nil, "migrate", "file-to-redis", "--dir", dir, "--redis-url", tc.fix(t, srv))
			if code != 0 {
				t.Fatalf("rerun: exit %d\n%s%s", code, out, errOut)
			}
			if !strings.Contains(out, fmt.Sprintf("migrated 60 shards, 6000 samples (%d new, %d already present, 0 conflicts)", 6000-present, present)) {
				t.Fatalf("rerun: %s", out)
			}
			dst, err := redisstore.Open(ctx, redisstore.Config{URLs: []string{srv.URL()}})
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			testenv.CompareExposition(t, dumpStore(t, dst), want)
		})
	}
}

// mustDo sends a Redis command.
func mustDo(t *testing.T, c *redis.Client, args ...any) {
	t.Helper()
	if err := c.Do(context.Background(), args...).Err(); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
}

// infoField returns an integer field of INFO.
func infoField(t *testing.T, c *redis.Client, field string) int64 {
	t.Helper()
	info, err := c.Info(context.Background(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), field+":"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("INFO %s: %v", field, err)
			}
			return n
		}
	}
	t.Fatalf("INFO has no %s", field)
	return 0
}

// TestMigrateStopReportCountsWhatTheDirectoryHolds: a migration from Redis
// into a directory on a small tmpfs stops when the file system is full.
// Its report says what the directory holds, as the test reads it itself
// (each shard file is written whole or not at all: complete shards and
// shards not started, no partly written ones and no temporary files left
// behind); once there is room, the same command finishes the migration
// and the directory dumps as Redis does. Mounting needs root (with CI=true
// the test fails without).
func TestMigrateStopReportCountsWhatTheDirectoryHolds(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "not root: cannot mount a tmpfs")
	}
	ctx := context.Background()
	srv := testenv.StartRedis(t)

	// 60 counter shards of 100 samples each, moved into Redis.
	srcDir := t.TempDir()
	src, err := filestore.Open(ctx, srcDir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for p := 0; p < 60; p++ {
		id := store.ShardID{Kind: store.KindCounter, PID: strconv.Itoa(1000 + p)}
		var samples []store.Sample
		for i := 0; i < 100; i++ {
			k := storetest.Key(t, "requests", "requests_total", []store.Label{{Name: "path", Value: fmt.Sprintf("/api/v1/items/%03d", i)}}, "Requests served.")
			samples = append(samples, store.Sample{Key: k, Value: float64(p*1000 + i)})
		}
		if err := src.WriteShard(ctx, id, samples); err != nil {
			t.Fatal(err)
		}
	}
	want := dumpStore(t, src)
	src.Close()
	if code, out, errOut := runCLI(t, nil, "migrate", "file-to-redis", "--dir", srcDir, "--redis-url", srv.URL()); code != 0 {
		t.Fatalf("into Redis: exit %d\n%s%s", code, out, errOut)
	}

	dir := testenv.SmallTmpfs(t, "256k")
	code, out, errOut := runCLI(t, nil, "migrate", "redis-to-file", "--dir", dir, "--redis-url", srv.URL())
	if code != 1 || out != "" {
		t.Fatalf("exit %d, stdout %q, want 1 and nothing\n%s", code, out, errOut)
	}

	// What the directory holds, listed by the test.
	names, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	complete := 0
	for _, e := range names {
		if !regexp.MustCompile(`^counter_10[0-5][0-9]\.db$`).MatchString(e.Name()) {
			t.Errorf("the stopped run left %s in the directory", e.Name())
			continue
		}
		complete++
	}
	if complete == 0 || complete == 60 {
		t.Fatalf("the run did not stop part-way as intended (%d of 60 shards written): the test proves nothing", complete)
	}
	report := fmt.Sprintf("promstore: migration stopped part-way (error below); read back, the target holds %d of the 6000 samples to write: %d of 60 shards complete, 0 partly written, %d not started\n"+
		"promstore: the disk is full; once that is mended, run the same command again to complete it\n", 100*complete, complete, 60-complete)
	lastLine := regexp.MustCompile(`^promstore: write target shard counter_10[0-5][0-9]: .*no space left on device\n$`)
	got, last, _ := strings.Cut(errOut, "promstore: write target shard")
	if got != report || !lastLine.MatchString("promstore: write target shard"+last) {
		t.Fatalf("stderr:\n%s\nwant:\n%sand then the write error", errOut, report)
	}
	t.Logf("stopped with %d of 60 shards written", complete)

	// With room, a rerun finishes the migration.
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size=16m,mode=755"); err != nil {
		t.Fatalf("remount %s larger: %v", dir, err)
	}
	code, out, errOut = runCLI(t, nil, "migrate", "redis-to-file", "--dir", dir, "--redis-url", srv.URL())
	if code != 0 {
		t.Fatalf("rerun: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, fmt.Sprintf("migrated 60 shards, 6000 samples (%d new, %d already present, 0 conflicts)", 6000-100*complete, 100*complete)) {
		t.Fatalf("rerun: %s", out)
	}
	dst, err := filestore.Open(ctx, dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	testenv.CompareExposition(t, dumpStore(t, dst), want)
}

// TestMigrateDryRunProbesWrites: a dry run into Redis as a user its ACL
// lets read but not write says that the real run would fail (exit 1), as
// cleanup's dry run does, instead of printing a plan the real run stops
// on; the same dry run as a user who may write exits 0.
func TestMigrateDryRunProbesWrites(t *testing.T) {
	ctx := context.Background()
	srv := testenv.StartRedis(t)
	dir := t.TempDir()
	src, err := filestore.Open(ctx, dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k := storetest.Key(t, "jobs", "jobs_total", nil, "Jobs.")
	if err := src.WriteShard(ctx, store.ShardID{Kind: store.KindCounter, PID: "1000"}, []store.Sample{{Key: k, Value: 3}}); err != nil {
		t.Fatal(err)
	}
	src.Close()
	mustDo(t, srv.Client(), "acl", "setuser", "reader", "on", ">pw", "+@all", "%R~*")
	ro := strings.Replace(srv.URL(), "redis://", "redis://reader:pw@", 1)
	code, out, errOut := runCLI(t, nil, "migrate", "file-to-redis", "--dir", dir, "--dry-run", "--redis-url", ro)
	if code != 1 || !strings.Contains(out, "dry run: nothing written") ||
		!strings.Contains(errOut, "dry run: the real run would fail: this client cannot write the target") || !strings.Contains(errOut, "NOPERM") {
		t.Errorf("read-only user: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, nil, "migrate", "file-to-redis", "--dir", dir, "--dry-run", "--redis-url", srv.URL()); code != 0 {
		t.Errorf("default user: exit %d: %s", code, errOut)
	}
}
