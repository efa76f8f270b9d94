package cleanup

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/render"
	"github.com/promstore/promstore/internal/serve"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/testenv"
)

// pyProcsScript simulates worker processes with the real
// prometheus_client: each "process" is a MultiProcessValue class of its
// own pid with its own metric objects, as in a forked gunicorn worker. It
// reads commands from stdin, one a line, and answers "ok" to each:
//
//	open PID        start a process of pid PID (a pid used before is a
//	                reused pid: its files are opened again and written on)
//	req PID N SEED  N requests in process PID
//	again PID N SEED  N requests in process PID on routes and codes it
//	                served before: values written in place only
//	close PID       the process ends (its files are closed)
//	dead PID        multiprocess.mark_process_dead(PID), as gunicorn's
//	                child_exit hook calls it
const pyProcsScript = `
import os, random, sys
os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
from prometheus_client import values, multiprocess, Counter, Gauge, Histogram, Summary
MODES = sorted(getattr(Gauge, "_MULTIPROC_MODES", ()))

class Proc:
    def __init__(self, pid):
        self.cls = values.MultiProcessValue(lambda: pid)
        values.ValueClass = self.cls
        self.reqs = Counter("http_requests", "Requests.", ["route", "code"], registry=None)
        self.lat = Histogram("http_latency_seconds", "Latency.", ["route"], buckets=(0.01, 0.1, 0.5, 1.0, 5.0), registry=None)
        self.size = Summary("http_size_bytes", "Size.", ["route"], registry=None)
        self.g = {m: Gauge("g_" + m, "Gauge " + m + ".", ["route"], multiprocess_mode=m, registry=None) for m in MODES}
        self.served = []

    def req(self, n, rnd, again=False):
        values.ValueClass = self.cls
        for _ in range(n):
            if again:
                if not self.served:
                    return
                route, code = rnd.choice(self.served)
            else:
                route = "/api/r%d" % int(rnd.paretovariate(1.2) * 3 % 40)
                code = rnd.choice(["200", "200", "404", "500"])
                self.served.append((route, code))
            self.reqs.labels(route, code).inc()
            self.lat.labels(route).observe(rnd.lognormvariate(-2.5, 1.3))
            self.size.labels(route).observe(rnd.random() * 1000)
            for m, g in self.g.items():
                g.labels(route).set(rnd.random() * 100 - 20)

    def close(self):
        fn = self.cls._MmapedValue__check_for_pid_change
        files = dict(zip(fn.__code__.co_freevars, (c.cell_contents for c in fn.__closure__)))["files"]
        for f in files.values():
            f.close()
        files.clear()

procs = {}
for line in sys.stdin:
    w = line.split()
    if w[0] == "open":
        procs[w[1]] = Proc(w[1])
    elif w[0] == "req":
        procs[w[1]].req(int(w[2]), random.Random(int(w[3])))
    elif w[0] == "again":
        procs[w[1]].req(int(w[2]), random.Random(int(w[3])), again=True)
    elif w[0] == "close":
        procs.pop(w[1]).close()
    elif w[0] == "dead":
        multiprocess.mark_process_dead(w[1])
    print("ok", flush=True)
`

// pyProcs is a running pyProcsScript.
type pyProcs struct {
	t   testing.TB
	in  io.Writer
	out *bufio.Reader
}

func startPyProcs(t testing.TB, dir string) *pyProcs {
	t.Helper()
	cmd := exec.Command(testenv.Python(t), "-c", pyProcsScript, dir)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("python: %v\n%s", err, stderr.String())
		}
	})
	return &pyProcs{t: t, in: in, out: bufio.NewReader(out)}
}

func (p *pyProcs) do(cmd string, args ...any) {
	p.t.Helper()
	line := cmd
	for _, a := range args {
		line += " " + fmt.Sprint(a)
	}
	if _, err := io.WriteString(p.in, line+"\n"); err != nil {
		p.t.Fatalf("python %s: %v", line, err)
	}
	if ans, err := p.out.ReadString('\n'); err != nil || ans != "ok\n" {
		p.t.Fatalf("python %s: answered %q, %v", line, ans, err)
	}
}

// readBoth reads st once as serve does, shard by shard into the
// aggregator, and returns what the read handed over (shard, key text,
// value and timestamp bits, one line per sample) and the exposition,
// written as Python writes it.
func readBoth(t testing.TB, st store.Reader) (raw, expo string) {
	t.Helper()
	var b strings.Builder
	agg := aggregate.NewFor(pyclient.Latest)
	err := store.ScanShards(context.Background(), st, func(id store.ShardID, entries []store.Entry) error {
		for _, e := range entries {
			fmt.Fprintf(&b, "%s %s %x %x\n", id, e.Key.Text, math.Float64bits(e.Value), math.Float64bits(e.Timestamp))
		}
		return agg.AddShard(id, entries)
	})
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var e bytes.Buffer
	if err := (render.Exposition{Escaping: model.UnderscoreEscaping, Client: pyclient.Latest}).Write(&e, agg.Families()); err != nil {
		t.Fatal(err)
	}
	return b.String(), e.String()
}

// TestIncrementalReadsEqualFullReads is a property test of KeepReads:
// over random sequences of steps on a store written by the real
// prometheus_client — requests in running processes, processes that end,
// new processes, a dead pid reused by a new process that writes and ends
// between two reads (in place: same used size, and on tmpfs the same
// mtime), mark_process_dead, shards deleted, cleanups run to the end or
// interrupted at a random step (the reads then go by the journal) — a
// reader that keeps its reads (as serve and top do) reads exactly what a
// new reader reads, after every step: the same samples in the same order,
// the same exposition; and a serve server on the kept reader, which
// serves the last read's snapshot again when a read finds nothing
// changed, serves that exposition too.
func TestIncrementalReadsEqualFullReads(t *testing.T) {
	// more seeds: TestIncrementalReadsSoak (long)
	if revalued := testIncremental(t, 0); revalued == 0 {
		t.Fatal("the server revalued no read: nothing tested")
	}
}

// testIncremental runs the property test of seed and returns how many of
// the server's reads were revalued (some seeds leave a cleanup's journal
// in force early, whose archives are not kept entries: none are).
func testIncremental(t *testing.T, seed uint64) (revalued int) {
	ctx := context.Background()
	dir := t.TempDir()
	py := startPyProcs(t, dir)
	rnd := rand.New(rand.NewPCG(seed, 13))

	// Pids are made up (the Python process writes under any pid): the
	// ones open in Python run, the others do not.
	var mu sync.Mutex
	running := map[string]bool{}
	alive := func(pid string) store.Liveness {
		mu.Lock()
		defer mu.Unlock()
		if _, err := strconv.Atoi(pid); err != nil {
			return store.AliveUnknown
		}
		if running[pid] {
			return store.AliveYes
		}
		return store.AliveNo
	}
	setRunning := func(pid string, on bool) {
		mu.Lock()
		defer mu.Unlock()
		if on {
			running[pid] = true
		} else {
			delete(running, pid)
		}
	}
	pids := make([]string, 10)
	for i := range pids {
		pids[i] = strconv.Itoa(3000001 + i)
	}
	var ended []string // pids whose process ended, for reuse
	open := func(pid string) {
		py.do("open", pid)
		setRunning(pid, true)
	}
	end := func(pid string) {
		py.do("close", pid)
		setRunning(pid, false)
		ended = append(ended, pid)
	}
	for _, pid := range pids[:4] {
		open(pid)
		py.do("req", pid, 5+rnd.IntN(20), rnd.Int())
	}
	end(pids[0])
	end(pids[1])

	// A short margin, so that reads between steps also take the listing
	// before them while the directory stays unchanged (see
	// filestore.StampMargin).
	kept, err := filestore.Open(ctx, dir, filestore.Options{Alive: alive, ListingMargin: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	kept.KeepReads(true)
	defer kept.Close()
	keptView := Consistent(kept)
	srv, err := serve.New(serve.Options{Store: keptView})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	get := func(path string) string {
		t.Helper()
		return testenv.Get(t, h, path)
	}

	reused, reparsed := 0, 0 // shards reused and parsed again by the kept reader
	check := func(step int, what string) {
		t.Helper()
		fresh, err := filestore.Open(ctx, dir, filestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		want, wantExpo := readBoth(t, Consistent(fresh))
		got, gotExpo := readBoth(t, keptView)
		if got != want {
			t.Fatalf("step %d (%s): the kept reader's samples differ from a new reader's:\n%s", step, what, firstDiff(got, want))
		}
		if gotExpo != wantExpo {
			t.Fatalf("step %d (%s): the kept reader's exposition differs from a new reader's:\n%s", step, what, firstDiff(gotExpo, wantExpo))
		}
		st := kept.ReadStats()
		reused += st.Reused
		reparsed += st.Reparsed
		// Twice: the second scrape finds nothing changed.
		for i := range 2 {
			if served := get("/metrics"); served != wantExpo {
				t.Fatalf("step %d (%s): scrape %d of a server on the kept reader differs from a new reader's exposition:\n%s", step, what, i+1, firstDiff(served, wantExpo))
			}
		}
	}
	check(0, "start")

	nextPID := len(pids)
	cleanupOpts := func() Options {
		return Options{DeadPIDs: true, Local: true, MinIdle: -1, Alive: alive}
	}
	for step := 1; step <= 30; step++ {
		var what string
		runningNow := func() []string {
			mu.Lock()
			defer mu.Unlock()
			var out []string
			for _, p := range pids {
				if running[p] {
					out = append(out, p)
				}
			}
			return out
		}()
		switch r := rnd.IntN(100); {
		case r < 22 && len(runningNow) > 0:
			pid := runningNow[rnd.IntN(len(runningNow))]
			what = "requests in running " + pid
			py.do("req", pid, 1+rnd.IntN(10), rnd.Int())
		case r < 35 && len(runningNow) > 0:
			pid := runningNow[rnd.IntN(len(runningNow))]
			what = "requests in running " + pid + " on what it served before"
			py.do("again", pid, 1+rnd.IntN(10), rnd.Int())
		case r < 45 && len(runningNow) > 0:
			pid := runningNow[rnd.IntN(len(runningNow))]
			what = "process " + pid + " ends"
			end(pid)
			if rnd.IntN(2) == 0 {
				py.do("dead", pid)
				what += ", mark_process_dead"
			}
		case r < 55:
			pid := strconv.Itoa(3000001 + nextPID)
			nextPID++
			pids = append(pids, pid)
			what = "new process " + pid
			open(pid)
			py.do("req", pid, 1+rnd.IntN(15), rnd.Int())
		case r < 72 && len(ended) > 0:
			// The nasty case: between two reads a new process of a dead
			// pid writes into its shards (in place, or appending a few
			// series) and ends.
			pid := ended[rnd.IntN(len(ended))]
			what = "pid " + pid + " reused by a process that writes and ends"
			py.do("open", pid)
			py.do("req", pid, 1+rnd.IntN(3), rnd.Int())
			py.do("close", pid)
		case r < 80:
			files, _ := filepath.Glob(filepath.Join(dir, "*.db"))
			if len(files) == 0 {
				continue
			}
			f := files[rnd.IntN(len(files))]
			what = "shard " + filepath.Base(f) + " deleted"
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		case r < 90:
			what = "cleanup of the dead pids"
			runCleanup(t, dir, cleanupOpts())
		default:
			// A cleanup stopped at a random step, as if killed: its
			// journal stays until the next cleanup finishes it, and the
			// reads in between go by the journal.
			stop := rnd.IntN(4)
			what = fmt.Sprintf("cleanup interrupted after step %d", stop)
			st, err := filestore.Open(ctx, dir, filestore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			opts := cleanupOpts()
			n := 0
			crash := errors.New("crash")
			opts.afterStep = func(string) error {
				if n == stop {
					return crash
				}
				n++
				return nil
			}
			if _, err := Run(ctx, FileTarget(st), opts); err != nil && !errors.Is(err, crash) {
				t.Fatalf("step %d: %s: %v", step, what, err)
			}
		}
		check(step, what)
		// Twice: the second read reuses what the first kept.
		check(step, what+", read again")
	}
	// The property means something only if shards were reused, and
	// parsed again when a reused pid rewrote them.
	if reused == 0 || reparsed == 0 {
		t.Fatalf("the kept reader reused %d shards and parsed %d kept shards again: nothing tested", reused, reparsed)
	}
	unchanged := -1
	for _, line := range strings.Split(get("/-/metrics"), "\n") {
		if v, ok := strings.CutPrefix(line, "promstore_store_reads_unchanged_total "); ok {
			unchanged, _ = strconv.Atoi(v)
		}
		if v, ok := strings.CutPrefix(line, "promstore_store_reads_revalued_total "); ok {
			revalued, _ = strconv.Atoi(v)
		}
	}
	if unchanged <= 0 {
		t.Fatalf("the server found %d reads unchanged: nothing tested", unchanged)
	}
	t.Logf("kept shards reused %d times, parsed again %d times; of the server's reads %d unchanged, %d revalued", reused, reparsed, unchanged, revalued)
	return revalued
}

// firstDiff shows the first line where got and want differ.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < min(len(g), len(w)); i++ {
		if g[i] != w[i] {
			return fmt.Sprintf("line %d:\n got  %s\n want %s", i+1, g[i], w[i])
		}
	}
	return fmt.Sprintf("got %d lines, want %d", len(g), len(w))
}
