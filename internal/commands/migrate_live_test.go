package commands

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/store/redisstore"
	"github.com/promstore/promstore/internal/store/storetest"
	"github.com/promstore/promstore/internal/testenv"
)

// TestMigrateDeleteSourceKeepsRunning: file-to-redis --delete-source keeps
// the shards of processes running on this host, naming them in a warning
// (a worker writes on into the file it has mapped: unlinked, every later
// increment is lost), and deletes the others.
func TestMigrateDeleteSourceKeepsRunning(t *testing.T) {
	e := newMigrateEnv(t)
	ctx := context.Background()
	live, dead := testenv.LivePID(t), testenv.DeadPID(t)
	tests := []struct {
		name     string
		pids     []string
		wantKept []string
	}{
		{"dead only", []string{dead}, nil},
		{"running and dead", []string{live, dead}, []string{live}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := e.srv.Client().FlushDB(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			st, err := filestore.Open(ctx, dir, filestore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			k := storetest.Key(t, "jobs", "jobs_total", nil, "Jobs.")
			for _, pid := range tt.pids {
				id := store.ShardID{Kind: store.KindCounter, PID: pid}
				if err := st.WriteShard(ctx, id, []store.Sample{{Key: k, Value: 5}}); err != nil {
					t.Fatal(err)
				}
			}
			if err := e.run(e.opts("file-to-redis", "--dir", dir, "--delete-source")); err != nil {
				t.Fatalf("migrate: %v\n%s", err, e.errOut)
			}
			for _, pid := range tt.pids {
				_, err := os.Stat(filepath.Join(dir, "counter_"+pid+".db"))
				kept := err == nil
				wantKept := len(tt.wantKept) > 0 && tt.wantKept[0] == pid
				if kept != wantKept {
					t.Errorf("shard of pid %s kept: %v, want %v", pid, kept, wantKept)
				}
			}
			warned := strings.Contains(e.errOut.String(), "kept 1 source shard(s) of running processes: counter_"+live)
			if warned != (len(tt.wantKept) > 0) {
				t.Errorf("stderr %q: want the warning naming counter_%s: %v", e.errOut.String(), live, len(tt.wantKept) > 0)
			}
		})
	}
}

// TestMigrateDeleteSourceRerunAdvice: the warning about the shards
// --delete-source kept advises, for when their workers have stopped, the
// rerun that works: the workers wrote more since, so the plain
// --delete-source rerun stops on the conflicts (exit 1, nothing deleted)
// while --on-conflict overwrite --delete-source brings their final values
// over and deletes them; and it warns that sum counts the migrated part
// twice.
func TestMigrateDeleteSourceRerunAdvice(t *testing.T) {
	e := newMigrateEnv(t)
	ctx := context.Background()
	pid := testenv.LivePID(t)
	dir := t.TempDir()
	st, err := filestore.Open(ctx, dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := store.ShardID{Kind: store.KindCounter, PID: pid}
	k := storetest.Key(t, "jobs", "jobs_total", nil, "Jobs.")
	if err := st.WriteShard(ctx, id, []store.Sample{{Key: k, Value: 5}}); err != nil {
		t.Fatal(err)
	}
	if err := e.run(e.opts("file-to-redis", "--dir", dir, "--delete-source")); err != nil {
		t.Fatalf("migrate: %v\n%s", err, e.errOut)
	}
	for _, w := range []string{"kept 1 source shard(s) of running processes: counter_" + pid, "run the migration again with --on-conflict overwrite --delete-source", "--on-conflict sum would add", "counting it twice"} {
		if !strings.Contains(e.errOut.String(), w) {
			t.Errorf("warning lacks %q:\n%s", w, e.errOut)
		}
	}
	// The worker writes more, then stops.
	if err := st.WriteShard(ctx, id, []store.Sample{{Key: k, Value: 8}}); err != nil {
		t.Fatal(err)
	}
	stopped := func(string) store.Liveness { return store.AliveNo }
	file := filepath.Join(dir, "counter_"+pid+".db")
	o := e.opts("file-to-redis", "--dir", dir, "--delete-source")
	o.Alive = stopped
	if err := e.run(o); err == nil || !strings.Contains(e.errOut.String(), "1 conflict") {
		t.Fatalf("a plain --delete-source rerun: err = %v, want the conflict it stops on\n%s", err, e.errOut)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("a refused rerun deleted the source: %v", err)
	}
	o = e.opts("file-to-redis", "--dir", dir, "--on-conflict", "overwrite", "--delete-source")
	o.Alive = stopped
	if err := e.run(o); err != nil {
		t.Fatalf("the advised rerun: %v\n%s", err, e.errOut)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("the advised rerun kept the source shard: %v", err)
	}
	if got := string(e.dumpRedis()); !strings.Contains(got, "jobs_total 8.0") {
		t.Errorf("Redis holds\n%s\nwant jobs_total 8.0, the worker's final value", got)
	}
}

// TestMigrateRedisToFileKeepsRunningShards: redis-to-file refuses to
// replace the shard file of a process running on this host that maps it
// (a real prometheus_client worker: it would write on into the file it
// has mapped, its later increments lost): nothing written, exit 1, the
// shard named. A pid that runs but does not map the file (an unrelated
// process whose pid a Redis shard of another host has) is not its
// writer: the shard is written. Where /proc cannot tell, the shard is
// refused and the error says the pid may be unrelated and that
// --pid-prefix avoids it. A dead pid's shard, or a running pid without a
// file yet, is written.
func TestMigrateRedisToFileKeepsRunningShards(t *testing.T) {
	e := newMigrateEnv(t)
	ctx := context.Background()
	live, dead := testenv.LivePID(t), testenv.DeadPID(t)
	workerDir := t.TempDir()
	worker := testenv.PythonWorker(t, workerDir)
	cannotTell := func(pid, path string) (bool, error) {
		return false, &os.PathError{Op: "open", Path: "/proc/" + pid + "/maps", Err: os.ErrPermission}
	}
	tests := []struct {
		name    string
		pid     string
		dir     string // the worker's; a new one when empty
		hasFile bool
		maps    func(pid, path string) (bool, error)
		refused []string // in the error; none: written
	}{
		{name: "running worker that maps its file", pid: worker, dir: workerDir, hasFile: true,
			refused: []string{"1 shard(s) to write are mapped by their processes, running on this host: counter_" + worker}},
		{name: "running pid that does not map the file", pid: live, hasFile: true},
		{name: "running pid, /proc cannot tell", pid: live, hasFile: true, maps: cannotTell,
			refused: []string{"have pids of processes running on this host, which may be their writers: counter_" + live, "permission denied", "may be unrelated", "--pid-prefix"}},
		{name: "running pid without a file", pid: live},
		{name: "dead pid with a file", pid: dead, hasFile: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := e.srv.Client().FlushDB(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			rs, err := redisstore.Open(ctx, e.cfg())
			if err != nil {
				t.Fatal(err)
			}
			defer rs.Close()
			id := store.ShardID{Kind: store.KindCounter, PID: tt.pid}
			other := storetest.Key(t, "other", "other_total", nil, "Other.")
			if err := rs.WriteShard(ctx, id, []store.Sample{{Key: other, Value: 7}}); err != nil {
				t.Fatal(err)
			}
			dir := tt.dir
			if dir == "" {
				dir = t.TempDir()
			}
			file := filepath.Join(dir, "counter_"+tt.pid+".db")
			if tt.hasFile && tt.dir == "" {
				st, err := filestore.Open(ctx, dir, filestore.Options{})
				if err != nil {
					t.Fatal(err)
				}
				k := storetest.Key(t, "jobs", "jobs_total", nil, "Jobs.")
				if err := st.WriteShard(ctx, id, []store.Sample{{Key: k, Value: 5}}); err != nil {
					t.Fatal(err)
				}
			}
			var before os.FileInfo
			if tt.hasFile {
				if before, err = os.Stat(file); err != nil {
					t.Fatal(err)
				}
			}
			o := e.opts("redis-to-file", "--dir", dir)
			o.Maps = tt.maps
			err = e.run(o)
			if len(tt.refused) == 0 {
				if err != nil {
					t.Fatalf("migrate: %v\n%s", err, e.errOut)
				}
				return
			}
			if err == nil {
				t.Fatalf("migrate wrote counter_%s, want a refusal", tt.pid)
			}
			for _, w := range tt.refused {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			after, err := os.Stat(file)
			if err != nil {
				t.Fatal(err)
			}
			if !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
				t.Error("the running process's shard file was replaced or written")
			}
		})
	}
}

// TestMigrateRerunAfterCleanup: a migration run again after a cleanup of
// the target or of the source (whose archive then holds the shards the
// first run migrated) is refused, exit 1, nothing written, the target's
// dump unchanged; before the fix it wrote the shards again beside the
// archive, every counter doubled, and said "verified".
func TestMigrateRerunAfterCleanup(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		cleanup func(e *migrateEnv, dir string) []string
		want    string
	}{
		{"cleanup of the target", func(e *migrateEnv, _ string) []string {
			return []string{"cleanup", "--redis-url", e.srv.URL(), "--redis-prefix", "gunicorn", "--dead-pids", "--local", "--min-idle", "0"}
		}, "the target has no shard counter_"},
		{"cleanup of the source", func(_ *migrateEnv, dir string) []string {
			return []string{"cleanup", "--dir", dir, "--dead-pids", "--min-idle", "0"}
		}, "the source has no shard counter_"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newMigrateEnv(t)
			dir := t.TempDir()
			st, err := filestore.Open(ctx, dir, filestore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			k := storetest.Key(t, "jobs", "jobs_total", nil, "Jobs.")
			for i := range 2 {
				id := store.ShardID{Kind: store.KindCounter, PID: testenv.DeadPID(t)}
				if err := st.WriteShard(ctx, id, []store.Sample{{Key: k, Value: float64(5 + i)}}); err != nil {
					t.Fatal(err)
				}
			}
			testenv.AgeFiles(t, dir)
			if err := e.run(e.opts("file-to-redis", "--dir", dir)); err != nil {
				t.Fatalf("first migration: %v\n%s", err, e.errOut)
			}
			if code, _, errOut := runCLI(t, nil, tt.cleanup(e, dir)...); code != 0 {
				t.Fatalf("cleanup: exit %d: %s", code, errOut)
			}
			before := e.dumpRedis()
			if !strings.Contains(string(before), "jobs_total 11.0") {
				t.Fatalf("target after the cleanup:\n%s", before)
			}
			err = e.run(e.opts("file-to-redis", "--dir", dir))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("rerun: err = %v, want a refusal naming %q\n%s", err, tt.want, e.out)
			}
			if after := e.dumpRedis(); string(after) != string(before) {
				t.Errorf("the refused rerun changed the target:\n%s\nwas\n%s", after, before)
			}
		})
	}
}

// TestMigrateFirstMigrationPastArchive: a directory never migrated before
// (history moved into a Redis whose own compaction archive holds the same
// series) looks to the archive check like a rerun after a compaction and
// is refused; --first-migration says it is not, and migrates it.
func TestMigrateFirstMigrationPastArchive(t *testing.T) {
	ctx := context.Background()
	e := newMigrateEnv(t)
	k := storetest.Key(t, "jobs", "jobs_total", nil, "Jobs.")
	write := func(dir string, v float64) {
		t.Helper()
		st, err := filestore.Open(ctx, dir, filestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		id := store.ShardID{Kind: store.KindCounter, PID: testenv.DeadPID(t)}
		if err := st.WriteShard(ctx, id, []store.Sample{{Key: k, Value: v}}); err != nil {
			t.Fatal(err)
		}
		testenv.AgeFiles(t, dir)
	}
	live := t.TempDir()
	write(live, 5)
	if err := e.run(e.opts("file-to-redis", "--dir", live)); err != nil {
		t.Fatalf("migration: %v\n%s", err, e.errOut)
	}
	if code, _, errOut := runCLI(t, nil, "cleanup", "--redis-url", e.srv.URL(), "--redis-prefix", "gunicorn", "--dead-pids", "--local", "--min-idle", "0"); code != 0 {
		t.Fatalf("cleanup: exit %d: %s", code, errOut)
	}
	history := t.TempDir()
	write(history, 7)
	if err := e.run(e.opts("file-to-redis", "--dir", history)); err == nil || !strings.Contains(err.Error(), "--first-migration") {
		t.Fatalf("err = %v, want a refusal pointing to --first-migration", err)
	}
	if err := e.run(e.opts("file-to-redis", "--dir", history, "--first-migration")); err != nil {
		t.Fatalf("with --first-migration: %v\n%s", err, e.errOut)
	}
	if got := e.dumpRedis(); !strings.Contains(string(got), "jobs_total 12.0") {
		t.Errorf("target:\n%s\nwant jobs_total 12.0", got)
	}
}
