package commands

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/store/redisstore"
	"github.com/promstore/promstore/internal/testenv"
)

// deadShards writes n counter shards of exited pids with samples samples
// each (the same series in every shard, as workers of one program write
// them) into w.
func deadShards(t *testing.T, w store.Writer, n, samples int) {
	t.Helper()
	for p := 0; p < n; p++ {
		id := store.ShardID{Kind: store.KindCounter, PID: testenv.DeadPID(t)}
		var ss []store.Sample
		for i := 0; i < samples; i++ {
			k, err := store.ParseKey(store.EncodeKey("jobs", "jobs_total", []store.Label{{Name: "queue", Value: fmt.Sprintf("queue-%04d", i)}}, "Jobs done."))
			if err != nil {
				t.Fatal(err)
			}
			ss = append(ss, store.Sample{Key: k, Value: float64(i + 1)})
		}
		if err := w.WriteShard(context.Background(), id, ss); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCleanupDryRunRedisSaysTheRunWouldFail: on a real redis-server, a
// dry run checks what the real run needs and, when something is in the
// way, prints the plan, says "dry run: the real run would fail: ..." and
// exits 1; the real run then indeed fails. With nothing in the way the
// dry run exits 0.
func TestCleanupDryRunRedisSaysTheRunWouldFail(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// setup makes the server refuse the run and returns the URL to
		// run with; want is the error (nil: none), given the server.
		setup func(t *testing.T, srv *testenv.RedisServer) string
		want  func(srv *testenv.RedisServer) *regexp.Regexp
		// samples per shard (default 200).
		samples int
	}{
		{
			name: "nothing in the way (maxmemory with room)",
			setup: func(t *testing.T, srv *testenv.RedisServer) string {
				c := srv.Client()
				mustDo(t, c, "config", "set", "maxmemory-policy", "noeviction")
				mustDo(t, c, "config", "set", "maxmemory", strconv.FormatInt(infoField(t, c, "used_memory")+64<<20, 10))
				return srv.URL()
			},
		},
		{
			name: "another cleanup holds the lock",
			setup: func(t *testing.T, srv *testenv.RedisServer) string {
				if err := srv.Client().Set(ctx, "gunicorn:promstore:cleanup-lock", "other", 10*time.Minute).Err(); err != nil {
					t.Fatal(err)
				}
				return srv.URL()
			},
			want: func(*testenv.RedisServer) *regexp.Regexp {
				return regexp.MustCompile(`^another cleanup is running on this store \(lock gunicorn:promstore:cleanup-lock, expires in 10m0s if that run died\)$`)
			},
		},
		{
			name: "ACL user may only read",
			setup: func(t *testing.T, srv *testenv.RedisServer) string {
				mustDo(t, srv.Client(), "acl", "setuser", "reader", "on", ">pw", "+@all", "%R~*")
				return strings.Replace(srv.URL(), "redis://", "redis://reader:pw@", 1)
			},
			want: func(srv *testenv.RedisServer) *regexp.Regexp {
				return regexp.MustCompile(`^this client cannot write the store \(the run writes its lock, journal and archives and removes shards and orphan keys\): may not write gunicorn:promstore:cleanup-lock: redis ` +
					regexp.QuoteMeta(srv.Addr()) + `: NOPERM this user has no permissions to access one of the keys used as arguments$`)
			},
		},
		{
			name: "read-only replica",
			setup: func(t *testing.T, srv *testenv.RedisServer) string {
				mustDo(t, srv.Client(), "config", "set", "repl-diskless-sync-delay", "0")
				replica := testenv.StartRedis(t, testenv.RedisOptions{Args: []string{"--replicaof", "127.0.0.1", strconv.Itoa(srv.Port())}})
				rc, want := replica.Client(), srv.Client().DBSize(ctx).Val()
				deadline := time.Now().Add(30 * time.Second)
				for rc.DBSize(ctx).Val() != want || !strings.Contains(rc.Info(ctx, "replication").Val(), "master_link_status:up") {
					if time.Now().After(deadline) {
						t.Fatalf("replica did not sync within 30s: %s", rc.Info(ctx, "replication").Val())
					}
					time.Sleep(20 * time.Millisecond)
				}
				return replica.URL()
			},
			want: func(*testenv.RedisServer) *regexp.Regexp {
				return regexp.MustCompile(`^this client cannot write the store \(the run writes its lock, journal and archives and removes shards and orphan keys\): may not write gunicorn:promstore:cleanup-lock: redis 127\.0\.0\.1:[0-9]+: READONLY You can't write against a read only replica\.$`)
			},
		},
		{
			name: "maxmemory noeviction, too little left",
			setup: func(t *testing.T, srv *testenv.RedisServer) string {
				c := srv.Client()
				mustDo(t, c, "config", "set", "maxmemory-policy", "noeviction")
				// Less room than the journal and the archive of 3000
				// samples take, more than promstore's connections do.
				mustDo(t, c, "config", "set", "maxmemory", strconv.FormatInt(infoField(t, c, "used_memory")+640<<10, 10))
				return srv.URL()
			},
			samples: 3000,
			want: func(srv *testenv.RedisServer) *regexp.Regexp {
				return regexp.MustCompile(`^writing the journal and the first archive needs about ([0-9]+) bytes of Redis memory, ([0-9]+) are left below maxmemory on ` +
					regexp.QuoteMeta(srv.Addr()) + ` \(maxmemory [0-9]+, used [0-9]+, policy noeviction\), which refuses writes beyond it$`)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testenv.StartRedis(t)
			st, err := redisstore.Open(ctx, redisstore.Config{URLs: []string{srv.URL()}})
			if err != nil {
				t.Fatal(err)
			}
			n := tc.samples
			if n == 0 {
				n = 200
			}
			deadShards(t, st, 3, n)
			st.Close()
			url := tc.setup(t, srv)
			args := []string{"cleanup", "--redis-url", url, "--dead-pids", "--local", "--min-idle", "0"}

			code, out, errOut := runCLI(t, nil, append(args, "--dry-run")...)
			if !strings.Contains(out, "dry run, nothing changed") || !strings.Contains(out, "3 compacted into 1 archive(s)") {
				t.Errorf("dry run printed no plan:\n%s", out)
			}
			if tc.want == nil {
				if code != 0 || errOut != "" {
					t.Fatalf("dry run: exit %d, stderr %q; want 0 and nothing", code, errOut)
				}
				if code, _, errOut := runCLI(t, nil, args...); code != 0 {
					t.Fatalf("real run: exit %d\n%s", code, errOut)
				}
				return
			}
			msg, ok := strings.CutPrefix(errOut, "promstore: cleanup of "+strings.Replace(url, ":pw@", ":xxxxx@", 1)+" prefix gunicorn: dry run: the real run would fail: ")
			re := tc.want(srv)
			if code != ExitError || !ok || !re.MatchString(strings.TrimSuffix(msg, "\n")) {
				t.Fatalf("dry run: exit %d, stderr:\n%s\nwant exit 1 and \"promstore: cleanup of <the store>: dry run: the real run would fail: \" and a match of %s", code, errOut, re)
			}
			if m := re.FindStringSubmatch(strings.TrimSuffix(msg, "\n")); len(m) == 3 {
				need, _ := strconv.Atoi(m[1])
				left, _ := strconv.Atoi(m[2])
				if need <= left {
					t.Errorf("needs %d, %d left: no reason given", need, left)
				}
			}
			code, out, errOut = runCLI(t, nil, args...)
			if code != ExitError {
				t.Fatalf("the real run did not fail: exit %d\n%s%s", code, out, errOut)
			}
			t.Logf("dry run: %sreal run: %s", msg, errOut)
		})
	}
}

// TestCleanupDryRunAsUserWhoCannotWrite: promstore run as an unprivileged
// user (uid and gid 65534) over a store directory it may read but not
// write: the dry run says the real run would fail and exits 1, and the
// real run fails. The test runs as root and drops privileges for the
// child; it cannot do without (with CI=true it fails).
func TestCleanupDryRunAsUserWhoCannotWrite(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "not root: cannot run promstore as another user")
	}
	// A directory tree the unprivileged user may enter: the program, the
	// store (root's, mode 755) and a file for the child's peak RSS.
	top, err := os.MkdirTemp("", "promstore-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	if err := os.Chmod(top, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(top, "promstore")
	copyExecutable(t, os.Args[0], bin)
	dir := filepath.Join(top, "store")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	deadShards(t, st, 3, 20)
	testenv.AgeFiles(t, dir)

	run := func(args ...string) (int, string, string) {
		t.Helper()
		return runAs65534(t, bin, args...)
	}
	// The child really runs unprivileged.
	if code, _, errOut := run("ls", "--dir", dir); code != 0 {
		t.Fatalf("ls as uid 65534: exit %d: %s", code, errOut)
	}
	code, out, errOut := run("cleanup", "--dir", dir, "--dead-pids", "--dry-run")
	want := "promstore: cleanup of dir " + dir + ": dry run: the real run would fail: cannot write the directory " + dir + " (shards are removed, the journal and archives written there): permission denied\n"
	if code != ExitError || errOut != want || !strings.Contains(out, "dry run, nothing changed") {
		t.Fatalf("dry run: exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit 1 and:\n%s", code, out, errOut, want)
	}
	code, out, errOut = run("cleanup", "--dir", dir, "--dead-pids")
	if code != ExitError || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("real run: exit %d\n%s%s", code, out, errOut)
	}
	if n := len(mustReadDir(t, dir)); n != 3 {
		t.Fatalf("the store holds %d entries after the failed run, want its 3 shards", n)
	}
	// The same dry run as root, who may write, passes.
	if code, _, errOut := runCLI(t, nil, "cleanup", "--dir", dir, "--dead-pids", "--dry-run"); code != 0 {
		t.Fatalf("dry run as root: exit %d: %s", code, errOut)
	}
}

// copyExecutable copies the program src to dst (mode 755).
func copyExecutable(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCleanupDryRunFullDisk: a store on a small tmpfs filled up: the dry
// run says the archives need more than is free and exits 1, and the real
// run fails for want of space. Mounting needs root (with CI=true the test
// fails without).
func TestCleanupDryRunFullDisk(t *testing.T) {
	dir := testenv.SmallTmpfs(t, "256k")
	st, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	deadShards(t, st, 3, 200)
	testenv.AgeFiles(t, dir)
	// Fill the rest of the file system.
	fill, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, err = fill.Write(make([]byte, 4096))
	}
	fill.Close()
	if !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("filling %s: %v", dir, err)
	}

	code, out, errOut := runCLI(t, nil, "cleanup", "--dir", dir, "--dead-pids", "--dry-run")
	re := regexp.MustCompile(`^promstore: cleanup of dir ` + regexp.QuoteMeta(dir) + `: dry run: the real run would fail: the archives need about ([0-9]+) bytes, ` + regexp.QuoteMeta(dir) + ` has ([0-9]+) bytes free\n$`)
	m := re.FindStringSubmatch(errOut)
	if code != ExitError || m == nil || !strings.Contains(out, "dry run, nothing changed") {
		t.Fatalf("dry run: exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit 1 and a match of %s", code, out, errOut, re)
	}
	if need, _ := strconv.Atoi(m[1]); need < 200*24 {
		t.Errorf("the archive of 200 samples needs about %d bytes?", need)
	}
	code, out, errOut = runCLI(t, nil, "cleanup", "--dir", dir, "--dead-pids")
	if code != ExitError || !strings.Contains(errOut, "no space left on device") {
		t.Fatalf("real run: exit %d\n%s%s", code, out, errOut)
	}
	// A rerun alone does not get past a full disk: the text says so.
	if !strings.Contains(out, "NOT DONE: the cleanup failed before it finished (error below); the plan above was not carried out, or only in part (a rerun finishes it once this is mended: the disk is full): ") {
		t.Errorf("real run: the text does not say what a rerun needs:\n%s", out)
	}
}

// orphanedRedis starts a redis-server whose store holds one orphan: a
// metric hash without its meta hash, last updated in 1970. It returns
// the server, a client of it and the orphan's key.
func orphanedRedis(t *testing.T) (*testenv.RedisServer, *redis.Client, string) {
	t.Helper()
	srv := testenv.StartRedis(t)
	c := srv.Client()
	const orphan = "gunicorn:counter:4100:metric:00000000000000000000000000000001"
	if err := c.HSet(context.Background(), orphan, "value", "5.0", "timestamp", "0.0", "updated_at", "1000.0").Err(); err != nil {
		t.Fatal(err)
	}
	return srv, c, orphan
}

// TestCleanupDryRunOrphansOnly: a dry run of `cleanup --orphans` alone
// (no shard to change, only orphan keys to delete) checks that the client
// may delete those keys: an ACL user that may write promstore's own keys
// but not the store's metric hashes gets "the real run would fail",
// naming the orphan key, and the real run fails; a client that may write
// everything passes the dry run, and its real run deletes the orphan.
func TestCleanupDryRunOrphansOnly(t *testing.T) {
	ctx := context.Background()
	srv, c, orphan := orphanedRedis(t)
	mustDo(t, c, "acl", "setuser", "keeper", "on", ">pw", "+@all", "%R~*", "~gunicorn:promstore:*")
	limited := strings.Replace(srv.URL(), "redis://", "redis://keeper:pw@", 1)
	args := func(url string, more ...string) []string {
		return append([]string{"cleanup", "--redis-url", url, "--orphans", "--min-idle", "0"}, more...)
	}

	code, out, errOut := runCLI(t, nil, args(limited, "--dry-run")...)
	want := "promstore: cleanup of " + strings.Replace(limited, ":pw@", ":xxxxx@", 1) + " prefix gunicorn: dry run: the real run would fail: " +
		"this client cannot write the store (the run writes its lock, journal and archives and removes shards and orphan keys): may not write " + orphan +
		": redis " + srv.Addr() + ": NOPERM this user has no permissions to access one of the keys used as arguments\n"
	if code != ExitError || errOut != want || !strings.Contains(out, orphan) {
		t.Fatalf("dry run: exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit 1, the orphan listed and stderr:\n%s", code, out, errOut, want)
	}
	if code, out, errOut := runCLI(t, nil, args(limited)...); code != ExitError || !strings.Contains(errOut, "NOPERM") {
		t.Fatalf("real run as the limited user: exit %d\n%s%s", code, out, errOut)
	}
	if n := c.Exists(ctx, orphan).Val(); n != 1 {
		t.Fatalf("the failed run deleted the orphan")
	}

	if code, out, errOut := runCLI(t, nil, args(srv.URL(), "--dry-run")...); code != 0 || errOut != "" {
		t.Fatalf("dry run with write permission: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, nil, args(srv.URL())...); code != 0 {
		t.Fatalf("real run: exit %d\n%s%s", code, out, errOut)
	}
	if n := c.Exists(ctx, orphan).Val(); n != 0 {
		t.Errorf("the real run left the orphan")
	}
}

// TestCleanupWarnsWhenItCannotReleaseItsLock: an ACL user who may SET
// promstore's keys but not run the release script on them takes the
// cleanup lock, fails (it may not delete the orphan), and cannot release
// the lock: the run says so, naming the lock and its expiry, instead of
// leaving the next run to find it held without a word.
func TestCleanupWarnsWhenItCannotReleaseItsLock(t *testing.T) {
	ctx := context.Background()
	srv, c, _ := orphanedRedis(t)
	mustDo(t, c, "acl", "setuser", "setter", "on", ">pw", "+@all", "%R~*", "%W~gunicorn:promstore:*")
	url := strings.Replace(srv.URL(), "redis://", "redis://setter:pw@", 1)
	code, out, errOut := runCLI(t, nil, "cleanup", "--redis-url", url, "--orphans", "--min-idle", "0")
	warning := "promstore: warning: release lock gunicorn:promstore:cleanup-lock: redis " + srv.Addr() +
		": NOPERM this user has no permissions to access one of the keys used as arguments (it expires after 10m0s): until then another cleanup of this store waits\n"
	if code != ExitError || !strings.Contains(errOut, warning) {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit 1 and the warning:\n%s", code, out, errOut, warning)
	}
	if ttl := c.TTL(ctx, "gunicorn:promstore:cleanup-lock").Val(); ttl <= 0 {
		t.Errorf("the lock the warning names is not there (TTL %v)", ttl)
	}
}

// TestCleanupOrphansSummary: the summary line of `cleanup --orphans` says
// what a dry run would delete ("would be deleted", not "deleted") and
// counts the orphan keys' memory in what is freed, in both runs.
func TestCleanupOrphansSummary(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		want  string
		lacks string
	}{
		{"dry run", []string{"--dry-run"}, "; 1 orphan key(s) would be deleted", "; 1 orphan key(s) deleted"},
		{"real run", nil, "; 1 orphan key(s) deleted", "would"},
	}
	freedRe := regexp.MustCompile(`(?:up to )?([0-9.]+ [KMG]?i?B) freed`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _, _ := orphanedRedis(t)
			args := append([]string{"cleanup", "--redis-url", srv.URL(), "--orphans", "--min-idle", "0"}, tt.args...)
			code, out, stderr := runCLI(t, nil, args...)
			if code != 0 || !strings.Contains(out, tt.want) || strings.Contains(out, tt.lacks) {
				t.Fatalf("exit %d, want %q and not %q:\n%s%s", code, tt.want, tt.lacks, out, stderr)
			}
			m := freedRe.FindStringSubmatch(out)
			if m == nil || m[1] == "0 B" {
				t.Errorf("freed %v, want the orphan's memory:\n%s", m, out)
			}
		})
	}
}

// runAs65534 runs the promstore binary bin as uid and gid 65534.
func runAs65534(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(childEnv(), asPromstore+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out.String(), errb.String()
	}
	if err != nil {
		t.Fatalf("run promstore as uid 65534: %v", err)
	}
	return 0, out.String(), errb.String()
}

// TestUnreadableDirNamedOnce: a store directory the user may not open is
// named once in the error ("open DIR: permission denied"), not twice.
// The test runs as root and drops privileges for the child.
func TestUnreadableDirNamedOnce(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "not root: cannot run promstore as another user")
	}
	top, err := os.MkdirTemp("", "promstore-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	if err := os.Chmod(top, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(top, "promstore")
	copyExecutable(t, os.Args[0], bin)
	dir, other := filepath.Join(top, "s4"), filepath.Join(top, "other")
	for _, d := range []string{dir, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		st, err := filestore.Open(context.Background(), d, filestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		deadShards(t, st, 1, 2)
	}
	if err := os.Chmod(dir, 0o700); err != nil { // root's: not for uid 65534
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"dump", []string{"dump", "--dir", dir}, "promstore: open " + dir + ": permission denied\n"},
		{"ls", []string{"ls", "--dir", dir}, "promstore: list shards of dir " + dir + ": open " + dir + ": permission denied\n"},
		{"top", []string{"top", "--once", "--dir", dir}, "promstore: open " + dir + ": permission denied\n"},
		{"diff", []string{"diff", dir, other}, "promstore: A: open " + dir + ": permission denied\n"},
		{"cleanup", []string{"cleanup", "--dir", dir, "--dead-pids"}, "promstore: cleanup of dir " + dir + ": cleanup lock: open " + filepath.Join(dir, ".promstore-cleanup.lock") + ": permission denied\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runAs65534(t, bin, tt.args...)
			if code == 0 || errOut != tt.want {
				t.Errorf("exit %d, stderr:\n%s\nwant:\n%s", code, errOut, tt.want)
			}
		})
	}
}
