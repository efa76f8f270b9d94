package commands

import (
	"context"
	"crypto/md5"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/cleanup"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/testenv"
)

func TestNewCmdCleanupFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		check   func(*CleanupOptions) bool
		wantErr string
	}{
		{name: "dead pids", args: []string{"-d", "x", "--dead-pids"}, check: func(o *CleanupOptions) bool {
			c := o.Cleanup
			return c.DeadPIDs && c.MinIdle == cleanup.DefaultMinIdle && !c.DryRun && !c.DropDeadGauges && !o.JSON
		}},
		{name: "pids and options", args: []string{"-d", "x", "--pid", "4100", "--pid", "web-1", "--drop-dead-gauges", "-n", "--min-idle", "5m", "-v", "-o", "json"},
			check: func(o *CleanupOptions) bool {
				c := o.Cleanup
				return len(c.PIDs) == 2 && c.PIDs[1] == "web-1" && c.DropDeadGauges && c.DryRun && c.MinIdle == 5*time.Minute && o.Verbose && o.JSON
			}},
		{name: "stale after", args: []string{"-d", "x", "--stale-after", "24h", "--min-idle", "0"}, check: func(o *CleanupOptions) bool {
			return o.Cleanup.StaleAfter == 24*time.Hour && o.Cleanup.MinIdle < 0
		}},
		{name: "redis local orphans", args: []string{"--redis-url", "redis://localhost:1/0", "--dead-pids", "--local", "--orphans"}, check: func(o *CleanupOptions) bool {
			return o.Cleanup.Local && o.Cleanup.Orphans
		}},
		{name: "nothing selected", args: []string{"-d", "x"}, wantErr: "nothing selected"},
		{name: "archive pid", args: []string{"-d", "x", "--pid", "archive"}, wantErr: "never cleaned up"},
		{name: "bad stale", args: []string{"-d", "x", "--stale-after", "-1h"}, wantErr: "--stale-after must be positive"},
		{name: "bad format", args: []string{"-d", "x", "--dead-pids", "-o", "yaml"}, wantErr: "--format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseCmd(t, nil, NewCmdCleanup, tt.args, tt.wantErr)
			if got == nil {
				return
			}
			if got.Store == nil || !tt.check(got) {
				t.Errorf("opts = %+v", got)
			}
		})
	}
}

// TestCleanupCLI runs `promstore cleanup` end to end on a directory with
// a running and an exited process: dry run, run, rerun.
func TestCleanupCLI(t *testing.T) {
	dir, live, dead := lsDir(t)
	if err := os.Remove(filepath.Join(dir, "histogram_worker-1.db")); err != nil {
		t.Fatal(err)
	}
	testenv.AgeFiles(t, dir)
	_, before, _ := runCLI(t, nil, "dump", "--dir", dir)

	code, out, errOut := runCLI(t, nil, "cleanup", "--dir", dir, "--dead-pids", "--dry-run")
	if code != 0 {
		t.Fatalf("dry run: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"compact  counter_" + dead + " -> counter_archive", "would write archive gauge_max_archive", "dry run, nothing changed", "2 compacted into 2 archive(s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "counter_"+dead+".db")); err != nil {
		t.Fatalf("dry run changed the directory: %v", err)
	}

	code, out, errOut = runCLI(t, nil, "cleanup", "--dir", dir, "--dead-pids", "-o", "json", "-v")
	if code != 0 {
		t.Fatalf("run: exit %d: %s", code, errOut)
	}
	var res struct {
		Done    bool
		Summary cleanup.Summary
		Shards  []struct{ Shard, Action, Reason string }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !res.Done || res.Summary.Compacted != 2 || res.Summary.Kept != 2 || res.Summary.Archives != 2 || res.Summary.BytesFreed != 0 {
		// Two 64 KiB shards were replaced by two 64 KiB archives.
		t.Errorf("summary %+v", res)
	}
	for _, s := range res.Shards {
		if strings.HasSuffix(s.Shard, "_"+live) && (s.Action != "keep" || !strings.Contains(s.Reason, "running")) {
			t.Errorf("shard of the running pid: %+v", s)
		}
	}
	_, after, _ := runCLI(t, nil, "dump", "--dir", dir)
	if after != before {
		t.Errorf("dump changed (no live gauges of dead pids here):\nbefore:\n%s\nafter:\n%s", before, after)
	}
	code, out, _ = runCLI(t, nil, "cleanup", "--dir", dir, "--dead-pids")
	if code != 0 || !strings.Contains(out, "0 compacted into 0 archive(s)") {
		t.Errorf("rerun: exit %d:\n%s", code, out)
	}
	if code, _, errOut := runCLI(t, nil, "cleanup", "--dir", dir); code != ExitUsage || !strings.Contains(errOut, "nothing selected") {
		t.Errorf("no selection: exit %d: %s", code, errOut)
	}
	// A pid named by --pid and left alone says why, without -v.
	code, out, _ = runCLI(t, nil, "cleanup", "--dir", dir, "--pid", live, "--pid", "999999999", "--dry-run")
	for _, want := range []string{"keep     pid " + live + ": pid " + live + " is running (-v lists its shards)", "keep     pid 999999999: no shard of it in the store"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("--pid of a running process and of none: exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
}

// TestCleanupRefusesFreshShardsOfInvisiblePids: shards written just now
// by pids that cannot be seen (another pid namespace) are refused.
func TestCleanupRefusesFreshShardsOfInvisiblePids(t *testing.T) {
	dir := t.TempDir()
	f, out, _ := testFactory(nil)
	st, err := store.Open(context.Background(), store.Location{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	lsWrite(t, st, store.ShardID{Kind: store.KindCounter, PID: testenv.DeadPID(t)}, 1)
	lsWrite(t, st, store.ShardID{Kind: store.KindCounter, PID: testenv.DeadPID(t)}, 1)
	opts := &CleanupOptions{IO: f.IO, Store: func(context.Context) (store.Store, error) { return st, nil },
		Cleanup: cleanup.Options{DeadPIDs: true}}
	err = cleanupRun(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "another pid namespace") {
		t.Errorf("err = %v\n%s", err, out)
	}
}

// TestCleanupTextSaysWhatDidNotHappen: when the run fails (here the
// journal cannot be written, as on a full disk), the text output says
// the plan was not carried out instead of claiming shards removed and
// bytes freed.
func TestCleanupTextSaysWhatDidNotHappen(t *testing.T) {
	dir, _, dead := lsDir(t)
	testenv.AgeFiles(t, dir)
	// A directory where the journal's temporary file goes: writing the
	// journal fails before anything is changed.
	block := filepath.Join(dir, cleanup.JournalName+".tmp")
	if err := os.MkdirAll(filepath.Join(block, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, nil, "cleanup", "--dir", dir, "--dead-pids")
	if code != ExitError || !strings.Contains(errOut, "journal") {
		t.Fatalf("exit %d, stderr %q; want 1 naming the journal", code, errOut)
	}
	if !strings.Contains(out, "NOT DONE: the cleanup failed before it finished") || strings.Contains(out, " freed") || strings.Contains(out, "removed") {
		t.Errorf("output claims what did not happen:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "counter_"+dead+".db")); err != nil {
		t.Errorf("the failed run removed a shard: %v", err)
	}
}

// TestCleanupDryRunSaysTheRunWouldFail: a dry run checks what the real
// run needs; with another cleanup holding the lock it says the run would
// fail and exits 1, after printing the plan.
func TestCleanupDryRunSaysTheRunWouldFail(t *testing.T) {
	dir, _, _ := lsDir(t)
	testenv.AgeFiles(t, dir)
	st, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := cleanup.FileTarget(st).Journal.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, nil, "cleanup", "--dir", dir, "--dead-pids", "--dry-run")
	if err := unlock(); err != nil {
		t.Fatalf("unlock: %v", err)
	}
	want := "dry run: the real run would fail: another cleanup is running on this directory (lock " + filepath.Join(dir, ".promstore-cleanup.lock") + ")"
	if code != ExitError || !strings.Contains(errOut, want) || !strings.Contains(out, "dry run, nothing changed") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit 1 and %q", code, out, errOut, want)
	}
	if code, _, errOut := runCLI(t, nil, "cleanup", "--dir", dir, "--dead-pids", "--dry-run"); code != 0 {
		t.Errorf("lock released: exit %d: %s", code, errOut)
	}
}

// TestCleanupNamedPIDWithoutLiveness: --pid on a Redis store without
// --local cannot know whether the pid runs; it takes the pid as dead, as
// asked, and warns. With --local a running pid is kept, without warning.
func TestCleanupNamedPIDWithoutLiveness(t *testing.T) {
	srv := testenv.StartRedis(t)
	pid := strconv.Itoa(os.Getpid()) // runs
	tests := []struct {
		name     string
		args     []string
		wantWarn bool
		wantOut  string
	}{
		{"without --local", nil, true, "compact  counter_" + pid + " -> counter_archive-1  (pid named by --pid)"},
		{"with --local", []string{"--local"}, false, "keep     pid " + pid + ": pid " + pid + " is running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := srv.Client()
			ctx := context.Background()
			if err := c.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			k := `["jobs", "jobs_total", {}, "J."]`
			m := fmt.Sprintf("%x", md5.Sum([]byte(k)))
			c.HSet(ctx, "gunicorn:counter:"+pid+":metric:"+m, "value", "3.0", "timestamp", "0.0", "updated_at", "1")
			c.HSet(ctx, "gunicorn:counter:"+pid+":meta:"+m, "original_key", k, "typ", "counter")
			args := append([]string{"cleanup", "--redis-url", srv.URL(), "--pid", pid, "--dry-run"}, tt.args...)
			code, out, stderr := runCLI(t, nil, args...)
			if code != 0 || !strings.Contains(out, tt.wantOut) {
				t.Errorf("exit %d, output lacks %q:\n%s%s", code, tt.wantOut, out, stderr)
			}
			warned := strings.Contains(stderr, "warning: --pid "+pid+": whether it runs is unknown") && strings.Contains(stderr, "taken as dead, as asked")
			if warned != tt.wantWarn {
				t.Errorf("warned %v, want %v:\n%s", warned, tt.wantWarn, stderr)
			}
		})
	}
}

// TestCleanupSaysItWaitsForReaders: a cleanup of a Redis store waiting
// for the reads in progress (here a registration no reader will remove,
// which Redis keeps for up to 2 minutes) said nothing while it waited,
// and seemed to hang; it says what it waits for after a second.
func TestCleanupSaysItWaitsForReaders(t *testing.T) {
	srv := storeWithLeakedReader(t)
	ctx := context.Background()
	f, _, errOut := serveFactory(nil)
	runCtx, cancel := context.WithTimeout(ctx, 2500*time.Millisecond)
	defer cancel()
	code := Execute(runCtx, f, []string{"cleanup", "--redis-url", srv.URL(), "--stale-after", "1ms", "--min-idle", "0"})
	if code != ExitInterrupted || !strings.Contains(errOut.String(), "waiting for the reads in progress") {
		t.Errorf("exit %d, stderr:\n%s\nwant the wait for the reads said, then the interruption", code, errOut)
	}
}

// TestCleanupNamesUnreadableShardOfSelectedPid: a selected pid's shard
// that cannot be read whole (here a 0.25 mostrecent shard cut short) is
// left alone, as dump skips it; the plan said nothing of it without -v,
// so "--pid 4101" seemed to have dealt with every shard of the pid.
func TestCleanupNamesUnreadableShardOfSelectedPid(t *testing.T) {
	dir := testenv.CopyStore(t, filepath.Join(testenv.FixturesDir(t), "python-0.25-files", "store"))
	if err := os.Truncate(filepath.Join(dir, "gauge_mostrecent_4101.db"), 2000); err != nil {
		t.Fatal(err)
	}
	testenv.AgeFiles(t, dir)
	want := "keep     gauge_mostrecent_4101  (unreadable, left alone: "
	for _, dry := range []bool{true, false} {
		args := []string{"cleanup", "--dir", dir, "--pid", "4101"}
		if dry {
			args = append(args, "--dry-run")
		}
		code, out, errOut := runCLI(t, nil, args...)
		if code != 0 || !strings.Contains(out, want) || strings.Contains(out, "keep     gauge_all_4101") {
			t.Errorf("dry run %v: exit %d, want %q and no other kept shard:\n%s\n--\n%s", dry, code, want, out, errOut)
		}
	}
	code, out, errOut := runCLI(t, nil, "cleanup", "--dir", dir, "--pid", "4101", "--dry-run", "-o", "json")
	if code != 0 || !strings.Contains(out, `"shard": "gauge_mostrecent_4101"`) {
		t.Errorf("json: exit %d, lacks the unreadable shard:\n%s%s", code, out, errOut)
	}
}
