package cleanup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/store/redisstore"
	"github.com/promstore/promstore/internal/testenv"
)

// exporterReader reads a Redis store in a loop as the exporter's
// RedisMultiProcessCollector does (gunicorn-prometheus-exporter,
// backend/core/collector.py): list every metric key with SCAN (redis-py's
// scan_iter, default COUNT) into a list first, then per key HGETALL the
// meta hash, skip the key when it or its original_key is missing, HGET
// value and timestamp, skip when either is missing, and sum. After each
// read it prints "<jobs_total> <started>", started being the writers'
// INCRed counter read after the read: an upper bound of the truth. It
// stops when the stop key exists.
const exporterReader = `
import json, sys, redis
url, stop, started_key = sys.argv[1], sys.argv[2], sys.argv[3]
r = redis.from_url(url, decode_responses=False)
while not r.exists(stop):
    metric_keys = list(r.scan_iter(match="gunicorn:*:*:metric:*"))
    total = 0.0
    for mk in metric_keys:
        meta = r.hgetall(mk.replace(b":metric:", b":meta:", 1))
        if not meta:
            continue
        original = meta.get(b"original_key")
        if not original:
            continue
        name = json.loads(original)[1]
        value = r.hget(mk, "value")
        ts = r.hget(mk, "timestamp")
        if value is None or ts is None:
            continue
        if name == "jobs_total":
            total += float(value)
    print(repr(total), int(r.get(started_key) or 0), flush=True)
`

// pythonCollectorReader runs prometheus_client's own MultiProcessCollector
// and generate_latest over a directory in a loop. Each line is
// "raised <exception>" or "ok <done before> <jobs_total> <lat_count>
// <started after>", the bounds being the sizes of the writers' done and
// started files. It stops when the stop file exists.
const pythonCollectorReader = `
import os, sys
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
path, stop, started, done = sys.argv[1:5]
reg = CollectorRegistry()
MultiProcessCollector(reg, path=path)
def size(p):
    try:
        return os.path.getsize(p)
    except FileNotFoundError:
        return 0
while not os.path.exists(stop):
    before = size(done)
    try:
        text = generate_latest(reg).decode()
    except Exception as e:
        print("raised", type(e).__name__, str(e).replace("\n", " "), flush=True)
        continue
    jobs = lat = 0.0
    for line in text.splitlines():
        if line.startswith('jobs_total{kind="a"} '):
            jobs = float(line.split()[-1])
        elif line.startswith("lat_count "):
            lat = float(line.split()[-1])
    print("ok", before, repr(jobs), repr(lat), size(started), flush=True)
`

// pyReader is a Python reader process whose output lines are collected.
type pyReader struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	cond *sync.Cond
	out  []string
	done bool
	errb strings.Builder
}

func startPyReader(t *testing.T, script string, args ...string) *pyReader {
	t.Helper()
	py := testenv.Python(t)
	r := &pyReader{cmd: exec.Command(py, append([]string{"-c", script}, args...)...)}
	r.cond = sync.NewCond(&r.mu)
	r.cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	r.cmd.Stderr = &r.errb
	stdout, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			r.mu.Lock()
			r.out = append(r.out, sc.Text())
			r.cond.Broadcast()
			r.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stdout)
		r.mu.Lock()
		r.done = true
		r.cond.Broadcast()
		r.mu.Unlock()
	}()
	t.Cleanup(func() { _ = r.cmd.Process.Kill(); _ = r.cmd.Wait() })
	return r
}

// count returns the number of lines read so far.
func (r *pyReader) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.out)
}

// waitLines waits until the reader has printed n lines (or exited, or a
// generous limit passed: reads are slow on a loaded machine).
func (r *pyReader) waitLines(t *testing.T, n int) {
	t.Helper()
	limit := time.AfterFunc(2*time.Minute, func() {
		r.mu.Lock()
		r.done = true
		r.cond.Broadcast()
		r.mu.Unlock()
	})
	defer limit.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.out) < n && !r.done {
		r.cond.Wait()
	}
	if len(r.out) < n {
		t.Fatalf("python reader: %d lines, want %d; stderr:\n%s", len(r.out), n, r.errb.String())
	}
}

// stop waits for the process to end (the caller has made the stop
// condition true) and returns every line it printed.
func (r *pyReader) stop(t *testing.T) []string {
	t.Helper()
	if err := r.cmd.Wait(); err != nil {
		t.Fatalf("python reader: %v\n%s", err, r.errb.String())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for !r.done {
		r.cond.Wait()
	}
	return r.out
}

// cleanupLoop runs cleanups of the dead pids back to back until stop is
// closed; with crash, each run is stopped at a random step (as a kill
// would) and the next run finishes it. It returns the number of runs
// that changed something.
func cleanupLoop(t *testing.T, target *Target, crash bool, stop <-chan struct{}) (wait func() int) {
	var wg sync.WaitGroup
	changed := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			opts := Options{DeadPIDs: true, MinIdle: -1, Local: true}
			if crash {
				stopAt, steps := 1+rand.IntN(8), 0
				opts.afterStep = func(string) error {
					if steps++; steps == stopAt {
						return errCrash
					}
					return nil
				}
			}
			res, err := Run(context.Background(), target, opts)
			if err != nil && strings.Contains(err.Error(), "changed while being planned") {
				// Writers were caught between their writes and exited
				// right after the listing in each of the plan's tries
				// (no --min-idle here): the run refused, changing
				// nothing, as it must.
				continue
			}
			if err != nil && !errors.Is(err, errCrash) {
				t.Errorf("cleanup: %v", err)
				return
			}
			if res != nil && res.Plan != nil && len(res.Plan.Archives) > 0 || res != nil && res.Recovered != nil {
				changed++
			} else {
				// Nothing dead yet: let the writers write.
				time.Sleep(2 * time.Millisecond)
			}
		}
	}()
	return func() int { wg.Wait(); return changed }
}

// TestExporterReaderNeverDoubleCounts: a reader following the exporter's
// collector read loop (SCAN into a list, then HGETALL meta, HGET value and
// timestamp per key) reads a standalone Redis back to back while real
// Python writers come and go (each counts one job, exporter layout) and
// cleanups of the dead pids run back to back, also stopped at random
// steps and rerun. No read is ever above the truth: an archive and the
// sources merged into it are one MULTI/EXEC under a name new in every
// run, so a listing that holds the new archive was finished after the
// transaction, when the sources were gone. Reads below the truth happen
// (a key listed before the transaction and read after it) and are
// counted in the log.
func TestExporterReaderNeverDoubleCounts(t *testing.T) {
	exporterReaderRace(t, 2, 6)
}

// exporterReaderRace is TestExporterReaderNeverDoubleCounts with rounds
// rounds of n writers.
func exporterReaderRace(t *testing.T, rounds, n int) {
	srv := testenv.StartRedis(t)
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			ctx := context.Background()
			if err := srv.Client().FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			st, err := redisstore.Open(ctx, redisstore.Config{URLs: []string{srv.URL()}, Prefix: "gunicorn"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			target := RedisTarget(st)
			if target.Replace == nil {
				t.Fatal("standalone Redis target has no one-transaction Replace")
			}
			const startedKey, stopKey = "test:started", "test:stop"
			reader := startPyReader(t, exporterReader, srv.URL(), stopKey, startedKey)
			reader.waitLines(t, 1)
			stop := make(chan struct{})
			wait := cleanupLoop(t, target, crash, stop)
			for range rounds {
				testenv.WriteDeadJobs(t, n, srv.URL(), 0, false, "PROMSTORE_TEST_STARTED_KEY="+startedKey)
			}
			// Let the reader read during the last cleanups too.
			reader.waitLines(t, reader.count()+3)
			close(stop)
			runs := wait()
			if _, err := Run(ctx, target, Options{DeadPIDs: true, MinIdle: -1, Local: true}); err != nil {
				t.Fatal(err)
			}
			reader.waitLines(t, reader.count()+2)
			if err := srv.Client().Set(ctx, stopKey, "1", 0).Err(); err != nil {
				t.Fatal(err)
			}
			lines := reader.stop(t)
			over, under := 0, 0
			for _, l := range lines {
				var total float64
				var started int
				if _, err := fmt.Sscan(l, &total, &started); err != nil {
					t.Fatalf("reader line %q: %v", l, err)
				}
				switch {
				case total > float64(started):
					over++
					if over <= 5 {
						t.Errorf("exporter-style read %v, above the %d jobs started by then: a double count", total, started)
					}
				case total < float64(started):
					under++
				}
			}
			var last float64
			if _, err := fmt.Sscan(lines[len(lines)-1], &last); err != nil {
				t.Errorf("last line %q: %v", lines[len(lines)-1], err)
			}
			if last != float64(rounds*n) {
				t.Errorf("last read %v, want %d", last, rounds*n)
			}
			if over > 0 {
				t.Errorf("%d of %d reads double counted", over, len(lines))
			}
			t.Logf("%d exporter-style reads during %d cleanups that changed the store: %d above the truth, %d below it (a key listed before a transaction and read after it)", len(lines), runs, over, under)
		})
	}
}

// TestPythonCollectorExactOrRaises: prometheus_client's own
// MultiProcessCollector (generate_latest, in a Python process) reads a
// directory back to back while real Python writers come and go and
// cleanups of the dead pids run back to back, also stopped at random
// steps and rerun. Every collect is either exact (between the jobs done
// before it and those started after it) or raises; never a double count.
func TestPythonCollectorExactOrRaises(t *testing.T) {
	pythonCollectorRace(t, 2, 6)
}

// pythonCollectorRace is TestPythonCollectorExactOrRaises with rounds
// rounds of n writers.
func pythonCollectorRace(t *testing.T, rounds, n int) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			dir, aux := t.TempDir(), t.TempDir()
			started, done, stopFile := filepath.Join(aux, "started"), filepath.Join(aux, "done"), filepath.Join(aux, "stop")
			st, err := filestore.Open(context.Background(), dir, filestore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			target := FileTarget(st)
			reader := startPyReader(t, pythonCollectorReader, dir, stopFile, started, done)
			reader.waitLines(t, 1)
			stop := make(chan struct{})
			wait := cleanupLoop(t, target, crash, stop)
			for range rounds {
				testenv.WriteDeadJobs(t, n, dir, 0, true, "PROMSTORE_TEST_STARTED_FILE="+started, "PROMSTORE_TEST_DONE_FILE="+done)
			}
			reader.waitLines(t, reader.count()+3)
			close(stop)
			runs := wait()
			if _, err := Run(context.Background(), target, Options{DeadPIDs: true, MinIdle: -1, Local: true}); err != nil {
				t.Fatal(err)
			}
			if HasBarrier(dir) {
				t.Error("barrier left after a finished cleanup")
			}
			reader.waitLines(t, reader.count()+2)
			if err := os.WriteFile(stopFile, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			lines := reader.stop(t)
			wrong, raised := 0, map[string]int{}
			for _, l := range lines {
				f := strings.Fields(l)
				if f[0] == "raised" {
					raised[f[1]]++
					continue
				}
				if len(f) != 5 {
					t.Fatalf("reader line %q", l)
				}
				lo, _ := strconv.Atoi(f[1])
				jobs, _ := strconv.ParseFloat(f[2], 64)
				lat, _ := strconv.ParseFloat(f[3], 64)
				hi, _ := strconv.Atoi(f[4])
				if jobs < float64(lo) || jobs > float64(hi) || lat < float64(lo) || lat > float64(hi) {
					wrong++
					if wrong <= 5 {
						t.Errorf("Python collect: jobs_total %v, lat_count %v; want both within [%d, %d]", jobs, lat, lo, hi)
					}
				}
			}
			last := strings.Fields(lines[len(lines)-1])
			if last[0] != "ok" || last[2] != strconv.Itoa(rounds*n)+".0" {
				t.Errorf("last collect %q, want jobs_total %d", lines[len(lines)-1], rounds*n)
			}
			t.Logf("%d Python collects during %d cleanups that changed the store: %d wrong, raised %v", len(lines), runs, wrong, raised)
		})
	}
}
