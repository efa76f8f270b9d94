package commands

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
)

// asPromstore is the environment variable under which this test binary
// runs as promstore (see TestMain): the hostile-input tests run promstore
// as a child process, so that its memory (peak RSS) and its answer to a
// signal are those of the real program.
const asPromstore = "PROMSTORE_COMMANDS_TEST_AS_PROMSTORE"

// hwmFile is the environment variable naming the file a child writes
// its peak RSS (VmHWM of /proc/self/status) into when it ends: the
// rusage of a child started by fork and exec counts the parent's pages.
const hwmFile = "PROMSTORE_COMMANDS_TEST_HWM_FILE"

// startedFile is the environment variable naming the file a child
// writes, just before it calls Main, the CPU time it has used so far (in
// clock ticks): Main installs its signal handler first thing, so once the
// child has used more CPU than that, a signal finds the handler.
const startedFile = "PROMSTORE_COMMANDS_TEST_STARTED_FILE"

func TestMain(m *testing.M) {
	if os.Getenv(asPromstore) == "1" {
		if f := os.Getenv(startedFile); f != "" {
			_ = os.WriteFile(f+".tmp", []byte(strconv.Itoa(cpuTicks(os.Getpid()))), 0o644)
			_ = os.Rename(f+".tmp", f)
		}
		code := Main()
		if f := os.Getenv(hwmFile); f != "" {
			if status, err := os.ReadFile("/proc/self/status"); err == nil {
				for _, l := range strings.Split(string(status), "\n") {
					if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
						_ = os.WriteFile(f, []byte(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))), 0o644)
					}
				}
			}
		}
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// childResult is how a promstore child process ended.
type childResult struct {
	code           int
	stdout, stderr string
	maxRSS         int64 // bytes
	took           time.Duration
}

// runChild runs promstore with args as a child process, killing it after
// limit.
func runChild(t *testing.T, limit time.Duration, args ...string) childResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	hwm := filepath.Join(t.TempDir(), "hwm")
	cmd.Env = append(childEnv(), asPromstore+"=1", hwmFile+"="+hwm)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := childResult{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	if ctx.Err() != nil {
		t.Fatalf("promstore %q still ran after %s (killed)\n%s", args, limit, r.stderr)
	}
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("promstore %q: %v", args, err)
	}
	kb, err := os.ReadFile(hwm)
	if err != nil {
		t.Fatalf("promstore %q did not report its peak RSS: %v", args, err)
	}
	n, err := strconv.ParseInt(string(kb), 10, 64)
	if err != nil {
		t.Fatalf("peak RSS %q: %v", kb, err)
	}
	r.maxRSS = n << 10
	return r
}

// childEnv is the test's environment without the variables that name a
// store.
//
// A race-instrumented child that exits 0 sleeps a second at exit (the
// race runtime's atexit_sleep_ms, 1000 by default) unless GORACE says
// otherwise; that second was most of each child's time, so childEnv sets
// atexit_sleep_ms=0 (keeping other GORACE options).
func childEnv() []string {
	var env []string
	gorace := ""
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir", "PROMETHEUS_REDIS_URL", "REDIS_HOST", asPromstore:
			continue
		case "GORACE":
			gorace = v
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GORACE="+strings.TrimSpace(gorace+" atexit_sleep_ms=0"))
}

// hostileDir returns a directory with one good shard (family good_total)
// and whatever add puts beside it.
func hostileDir(t *testing.T, add func(t *testing.T, dir string)) string {
	t.Helper()
	dir := t.TempDir()
	st, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := store.ParseKey(store.EncodeKey("good", "good_total", nil, "Good."))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.WriteShard(context.Background(), store.ShardID{Kind: store.KindCounter, PID: "1"}, []store.Sample{{Key: k, Value: 42}}); err != nil {
		t.Fatal(err)
	}
	if add != nil {
		add(t, dir)
	}
	return dir
}

// zeroShard writes counter_7.db: a header with used size used, then
// zeros up to size, as real bytes or as a hole.
func zeroShard(used int32, size int64, real bool) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		f, err := os.Create(filepath.Join(dir, "counter_7.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var hdr [8]byte
		binary.LittleEndian.PutUint32(hdr[:], uint32(used))
		if _, err := f.Write(hdr[:]); err != nil {
			t.Fatal(err)
		}
		if real {
			zeros := make([]byte, 1<<20)
			for left := size - 8; left > 0 && err == nil; left -= int64(len(zeros)) {
				_, err = f.Write(zeros[:min(left, int64(len(zeros)))])
			}
		} else {
			err = f.Truncate(size)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func writeFile(name string, data []byte) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestHostileInput runs promstore on hostile stores and arguments, one
// row per case of issue 18 and the cases that already behaved, each in a
// child process with a time limit and a ceiling on its peak memory,
// checking the exact warning and the exit code. The rest of the store is
// still served where there is a rest.
func TestHostileInput(t *testing.T) {
	const (
		limit = 2 * time.Minute // the faults were forever, or minutes
		// Peak RSS of the race-instrumented test binary doing a small
		// dump is ~60 MB; the zero-filled shards once took 1-24 GB.
		ceiling = 300 << 20
	)
	counter7 := "shard counter_7.db: "
	tests := []struct {
		name    string
		add     func(t *testing.T, dir string)
		noStore bool // the directory holds nothing, not even the good shard
		args    []string
		code    int
		stderr  string // a line of stderr
		good    bool   // stdout shows the good shard
	}{
		{name: "64 MiB of zeros: dump", add: zeroShard(64<<20, 64<<20, true), args: []string{"dump"},
			stderr: "promstore: warning: " + counter7 + "entry at offset 8: key length 0 (zero bytes where an entry should be, 67108856 bytes before used size 67108864)", good: true},
		{name: "64 MiB of zeros: dump --strict", add: zeroShard(64<<20, 64<<20, true), args: []string{"dump", "--strict"}, code: 1,
			stderr: "promstore: error: " + counter7 + "entry at offset 8: key length 0 (zero bytes where an entry should be, 67108856 bytes before used size 67108864)"},
		{name: "sparse 10 GiB, used 2 GiB: dump", add: zeroShard(0x7FFFFFF8, 10<<30, false), args: []string{"dump"},
			stderr: "promstore: warning: " + counter7 + "entry at offset 8: key length 0 (zero bytes where an entry should be, 2147483632 bytes before used size 2147483640)", good: true},
		{name: "sparse 10 GiB, used 2 GiB: ls", add: zeroShard(0x7FFFFFF8, 10<<30, false), args: []string{"ls"}},
		{name: "sparse 10 GiB, used 2 GiB: top --once", add: zeroShard(0x7FFFFFF8, 10<<30, false), args: []string{"top", "--once"},
			stderr: "promstore: warning: " + counter7 + "entry at offset 8: key length 0 (zero bytes where an entry should be, 2147483632 bytes before used size 2147483640)"},
		{name: "FIFO: dump", add: mkfifoAt("counter_7.db"), args: []string{"dump"},
			stderr: "promstore: warning: " + counter7 + "cannot read: not a regular file but a named pipe (FIFO)", good: true},
		{name: "FIFO: ls", add: mkfifoAt("counter_7.db"), args: []string{"ls"}},
		{name: "FIFO: top --once", add: mkfifoAt("counter_7.db"), args: []string{"top", "--once"},
			stderr: "promstore: warning: " + counter7 + "cannot read: not a regular file but a named pipe (FIFO)"},
		{name: "FIFO: cleanup --dry-run", add: mkfifoAt("counter_7.db"), args: []string{"cleanup", "--dead-pids", "--dry-run"}},
		{name: "symbolic link: dump", add: symlinkAt("counter_7.db", "/dev/zero"), args: []string{"dump"},
			stderr: "promstore: warning: " + counter7 + "cannot read: not a regular file but a symbolic link (not followed)", good: true},
		{name: "0-byte shard", add: writeFile("counter_7.db", nil), args: []string{"dump"},
			stderr: "promstore: warning: " + counter7 + "empty file (0 bytes), not even a header", good: true},
		{name: "used past EOF", add: writeFile("counter_7.db", []byte{0, 1, 0, 0, 0, 0, 0, 0}), args: []string{"dump"},
			stderr: "promstore: warning: " + counter7 + "used size 256 exceeds file size 8 (truncated file)", good: true},
		{name: "foreign file named like a shard", add: writeFile("counter_7.db", []byte("#!/bin/sh\necho hello\n")), args: []string{"dump"},
			stderr: "promstore: warning: " + counter7 + "used size 1647255843 exceeds file size 21 (truncated file)", good: true},
		{name: "empty directory: dump", noStore: true, args: []string{"dump"},
			stderr: "promstore: warning: dir DIR holds no shards: a store is a directory of *.db files (counter_1234.db, gauge_livesum_1234.db, ...) that prometheus_client writes in multiprocess mode"},
		{name: "empty directory: dump --strict", noStore: true, args: []string{"dump", "--strict"}, code: 1,
			stderr: "promstore: dir DIR holds no shards: a store is a directory of *.db files (counter_1234.db, gauge_livesum_1234.db, ...) that prometheus_client writes in multiprocess mode; --strict given"},
		{name: "empty directory: ls", noStore: true, args: []string{"ls"},
			stderr: "promstore: warning: dir DIR holds no shards: a store is a directory of *.db files (counter_1234.db, gauge_livesum_1234.db, ...) that prometheus_client writes in multiprocess mode"},
		{name: "empty directory: top --once", noStore: true, args: []string{"top", "--once"},
			stderr: "promstore: warning: dir DIR holds no shards: a store is a directory of *.db files (counter_1234.db, gauge_livesum_1234.db, ...) that prometheus_client writes in multiprocess mode"},
		{name: "Redis URL host:port", noStore: true, args: []string{"dump", "--redis-url", "127.0.0.1:6379"}, code: 2,
			stderr: `promstore: --redis-url: "127.0.0.1:6379" is not a Redis URL; did you mean redis://127.0.0.1:6379?`},
	}
	// Rows of one store (their name up to the colon) share its directory:
	// none changes it, and 64 MiB of zeros took seconds to write.
	dirs := map[string]string{}
	for _, tc := range tests {
		name, _, _ := strings.Cut(tc.name, ":")
		dir := dirs[name]
		switch {
		case dir != "":
		case tc.noStore:
			dir = t.TempDir()
		default:
			dir = hostileDir(t, tc.add)
		}
		dirs[name] = dir
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if !strings.Contains(strings.Join(args, " "), "--redis-url") {
				args = append(args, "--dir", dir)
			}
			r := runChild(t, limit, args...)
			want := strings.ReplaceAll(tc.stderr, "DIR", dir)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\nstderr:\n%s", r.code, tc.code, r.stderr)
			}
			if want != "" && !strings.Contains("\n"+r.stderr, "\n"+want+"\n") {
				t.Errorf("stderr:\n%s\nwant the line:\n%s", r.stderr, want)
			}
			if tc.good != strings.Contains(r.stdout, "good_total 42.0") {
				t.Errorf("stdout shows the good shard: %v, want %v\n%s", !tc.good, tc.good, r.stdout)
			}
			if r.maxRSS > ceiling {
				t.Errorf("peak RSS %d MiB, ceiling %d MiB", r.maxRSS>>20, ceiling>>20)
			}
			t.Logf("%s, peak RSS %d MiB", r.took.Round(time.Millisecond), r.maxRSS>>20)
		})
	}
}

func mkfifoAt(name string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if err := syscall.Mkfifo(filepath.Join(dir, name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func symlinkAt(name, target string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSIGTERMDuringParse: promstore dump parsing one large shard (half a
// million new keys, seconds of work) exits 130 soon after SIGTERM, in the
// middle of the shard, instead of parsing on.
func TestSIGTERMDuringParse(t *testing.T) {
	dir := t.TempDir()
	// The shard's bytes are laid out here (16-byte layout) rather than
	// through WriteShard: half a million keys parsed and written by the
	// race-instrumented test took seconds.
	const n = 500000
	pre, post, _ := strings.Cut(store.EncodeKey("req", "req_total", []store.Label{{Name: "path", Value: "/p/@"}}, "Requests."), "@")
	buf := make([]byte, 8, 40<<20)
	for i := range n {
		k := pre + strconv.Itoa(i) + post
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(k)))
		buf = append(buf, k...)
		buf = append(buf, "        "[:8-(len(k)+4)%8]...)
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(float64(i)))
		buf = binary.LittleEndian.AppendUint64(buf, 0)
	}
	binary.LittleEndian.PutUint32(buf, uint32(len(buf)))
	buf = append(buf, make([]byte, 1<<16-len(buf)%(1<<16))...)
	if err := os.WriteFile(filepath.Join(dir, "counter_1.db"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
	shard := filepath.Join(dir, "counter_1.db")

	cmd := exec.Command(os.Args[0], "dump", "--dir", dir)
	started := filepath.Join(t.TempDir(), "started")
	cmd.Env = append(childEnv(), asPromstore+"=1", startedFile+"="+started)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// promstore is at work on the shard once it has it open, or once it
	// has spent a tenth of a second of CPU in Main (past its signal
	// handler, start-up and listing; the shard is read in a few
	// milliseconds and its keys are resolved after it is closed, so a
	// poll on a loaded machine can miss the open file altogether). Before
	// Main, a SIGTERM would kill it (the race-instrumented start-up alone
	// can take a tenth of a second).
	fdDir := fmt.Sprintf("/proc/%d/fd", cmd.Process.Pid)
	working := func() bool {
		b, err := os.ReadFile(started)
		if err != nil {
			return false
		}
		atMain, err := strconv.Atoi(string(b))
		if err != nil {
			t.Fatalf("%s: %v", started, err)
		}
		fds, _ := os.ReadDir(fdDir)
		for _, fd := range fds {
			if l, _ := os.Readlink(filepath.Join(fdDir, fd.Name())); l == shard {
				return true
			}
		}
		return cpuTicks(cmd.Process.Pid) >= atMain+10
	}
	for !working() {
		select {
		case err := <-done:
			t.Fatalf("promstore ended (%v) before it was seen working on the shard; stderr:\n%s", err, errb.String())
		default:
		}
		time.Sleep(time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signaled := time.Now()
	const limit = 10 * time.Second // the parse was immune to SIGTERM for its whole length
	select {
	case <-done:
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("promstore still ran %s after SIGTERM", limit)
	}
	took := time.Since(signaled)
	if code := cmd.ProcessState.ExitCode(); code != ExitInterrupted || errb.String() != "promstore: interrupted\n" || out.Len() != 0 {
		t.Errorf("exit %d, stdout %d bytes, stderr %q; want 130, nothing, \"promstore: interrupted\"", code, out.Len(), errb.String())
	}
	t.Logf("exited %s after SIGTERM", took.Round(time.Millisecond))
}

// cpuTicks is the user plus system CPU time that process pid has used, in
// clock ticks (1/100 s on Linux), or 0 when /proc does not tell.
func cpuTicks(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.Atoi(f[11])
	s, _ := strconv.Atoi(f[12])
	return u + s
}
