package fsck

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/common/model"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/compare"
	"github.com/promstore/promstore/internal/render"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/testenv"
)

func dead(string) store.Liveness { return store.AliveNo }

// pythonStore writes a store with the real prometheus_client: 3
// processes (pids 4100-4102), every kind.
func pythonStore(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	py := testenv.Python(t)
	out, err := exec.Command(py, filepath.Join(testenv.RepoRoot(t), "scripts", "pystore.py"), "write", dir, "--procs", "3").CombinedOutput()
	if err != nil {
		t.Fatalf("pystore write: %v\n%s", err, out)
	}
	return dir
}

// collect runs Python's MultiProcessCollector over dir; it returns the
// exposition, or the error output when the collector fails.
func collect(t *testing.T, dir string) ([]byte, error) {
	t.Helper()
	py := testenv.Python(t)
	cmd := exec.Command(py, filepath.Join(testenv.RepoRoot(t), "scripts", "pystore.py"), "collect", dir)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: %s", err, errb.String())
	}
	return out.Bytes(), nil
}

// promstoreDump is what `promstore dump --python-client` of the installed
// client prints for dir (shards that cannot be read skipped).
func promstoreDump(t *testing.T, dir string) []byte {
	t.Helper()
	client := testenv.PythonClient(t)
	st, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	agg := aggregate.NewFor(client)
	if err := store.ScanShards(context.Background(), st, agg.AddShard); err != nil {
		if _, partial := store.Partial(err); !partial {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := (render.Exposition{Escaping: model.UnderscoreEscaping, Client: client}).Write(&b, agg.Families()); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func parse(t *testing.T, name string, b []byte) *compare.Exposition {
	t.Helper()
	e, err := compare.Parse(name, b, compare.FormatText)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// corruption damages a store written by Python in four ways and builds,
// with Python's own MmapedDict, the directory that holds exactly what can
// be salvaged.
type corruption struct {
	dir, want string
	// originals are the damaged files' bytes by name.
	originals map[string][]byte
}

func entryEnds(t *testing.T, path string) []int {
	t.Helper()
	in, err := filestore.InspectFile(path, 0)
	if err != nil || !in.Sound() {
		t.Fatalf("inspect %s: %v %+v", path, err, in)
	}
	var ends []int
	for i := 1; i < len(in.Entries); i++ {
		ends = append(ends, in.Entries[i].Offset)
	}
	return append(ends, in.End)
}

func corrupt(t *testing.T) *corruption {
	t.Helper()
	src := pythonStore(t)
	c := &corruption{dir: testenv.CopyStore(t, src), want: testenv.CopyStore(t, src), originals: map[string][]byte{}}
	// counter_4101.db cut 5 bytes into its 4th entry: 3 entries are left
	// and the used size is past the end.
	cut := filepath.Join(c.dir, "counter_4101.db")
	ends := entryEnds(t, cut)
	data, _ := os.ReadFile(cut)
	data = data[:ends[2]+5]
	// histogram_4102.db with the 6th key damaged: 5 entries are readable.
	hist := filestore.Inspect(mustRead(t, filepath.Join(c.dir, "histogram_4102.db")), 0)
	hdata := mustRead(t, filepath.Join(c.dir, "histogram_4102.db"))
	hdata[hist.Entries[5].Offset+4] = '{'
	for name, b := range map[string][]byte{
		"counter_4101.db":   data,
		"histogram_4102.db": hdata,
		"counter_4999.db":   {},
		"sessions.db":       []byte("SQLite format 3\x00 not a shard"),
	} {
		write(t, c.dir, name, b)
		c.originals[name] = b
	}
	// The salvageable store, written by Python: the first entries of the
	// two damaged shards, nothing of the others.
	script := `
import sys
from prometheus_client.mmap_dict import MmapedDict
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
items = list(MmapedDict.read_all_values_from_file(src))[:n]
import os
os.remove(dst)
d = MmapedDict(dst)
for item in items:
    d.write_value(item[0], item[1])
d.close()
`
	for name, n := range map[string]int{"counter_4101.db": 3, "histogram_4102.db": 5} {
		testenv.RunPython(t, nil, script, nil, filepath.Join(src, name), filepath.Join(c.want, name), fmt.Sprint(n))
	}
	return c
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRepairMakesPythonReadTheSalvage(t *testing.T) {
	c := corrupt(t)
	if _, err := collect(t, c.dir); err == nil {
		t.Fatal("Python's collector read the damaged store; the test damages nothing")
	}
	before := promstoreDump(t, c.dir)
	q := filepath.Join(t.TempDir(), "quarantine")
	r, err := Repair(context.Background(), c.dir, RepairOptions{Quarantine: q, Alive: dead})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) != 4 {
		t.Errorf("problems = %+v, want the 4 damaged files", r.Problems)
	}
	after, err := collect(t, c.dir)
	if err != nil {
		t.Fatalf("Python's collector after the repair: %v", err)
	}
	want, err := collect(t, c.want)
	if err != nil {
		t.Fatal(err)
	}
	// Exactly the salvageable samples: what Python reads of the store
	// Python wrote with only the readable entries.
	if d := compare.Diff(parse(t, "want", want), parse(t, "after", after), compare.Options{Tolerance: 1e-9}); !d.Equal() {
		var b bytes.Buffer
		_ = d.WriteText(&b, 0)
		t.Fatalf("Python reads after the repair something else than the salvage:\n%s", b.String())
	}
	// Against what dump printed before: nothing lost, only the salvaged
	// entries added, none went backwards.
	d := compare.Diff(parse(t, "before", before), parse(t, "after", after), compare.Options{Tolerance: 1e-9})
	if d.Equal() {
		t.Fatal("the repair salvaged nothing dump did not already show")
	}
	for _, f := range d.Diffs {
		if len(f.OnlyA) > 0 {
			t.Errorf("family %s lost series in the repair: %v", f.Name, f.OnlyA)
		}
	}
	if back := compare.Diff(parse(t, "before", before), parse(t, "after", after), compare.Options{Tolerance: 1e-9, Counters: true}); !back.Equal() {
		t.Errorf("counters went backwards: %+v", back.Diffs)
	}
	// promstore reads it as Python does.
	if d := compare.Diff(parse(t, "python", after), parse(t, "promstore", promstoreDump(t, c.dir)), compare.Options{Tolerance: 1e-9}); !d.Equal() {
		t.Errorf("promstore dump differs from Python after the repair: %+v", d.Diffs)
	}
	for name, b := range c.originals {
		if got := mustRead(t, filepath.Join(q, name)); !bytes.Equal(got, b) {
			t.Errorf("quarantine/%s is not the original byte for byte", name)
		}
	}
	// A second run finds nothing and quarantines nothing more.
	r, err = Repair(context.Background(), c.dir, RepairOptions{Quarantine: q, Alive: dead})
	if err != nil || !r.Clean() {
		t.Fatalf("second repair: %v %+v", err, r)
	}
}

// TestMain lets the test binary be a repair that kills itself (SIGKILL)
// after a given step: see killedRepair.
func TestMain(m *testing.M) {
	if dir := os.Getenv("PROMSTORE_FSCK_KILL_DIR"); dir != "" {
		stop, _ := strconv.Atoi(os.Getenv("PROMSTORE_FSCK_KILL_AT"))
		n := 0
		_, err := Repair(context.Background(), dir, RepairOptions{Quarantine: os.Getenv("PROMSTORE_FSCK_KILL_Q"), Alive: dead, Step: func(s string) error {
			n++
			if n == stop {
				os.Stdout.WriteString(s)
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			}
			return nil
		}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// killedRepair runs a repair of dir in a child process that kills itself
// with SIGKILL after step number stop (no deferred cleanup, no unlock but
// the kernel's) and returns the step's name, or "" when the repair had
// fewer steps and finished.
func killedRepair(t *testing.T, dir, q string, stop int) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PROMSTORE_FSCK_KILL_DIR="+dir, "PROMSTORE_FSCK_KILL_Q="+q, "PROMSTORE_FSCK_KILL_AT="+strconv.Itoa(stop))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL && out.Len() > 0:
		return out.String()
	}
	t.Fatalf("repair child, kill after step %d: %v\n%s", stop, err, errb.String())
	return ""
}

// TestRepairKilledAtEveryStep kills a repair (SIGKILL) after each of its
// steps: the store is readable then (promstore reads every series it read
// before), and a second run finishes the repair to the same end state,
// with one quarantined copy of each original.
func TestRepairKilledAtEveryStep(t *testing.T) {
	c := corrupt(t)
	full := testenv.CopyStore(t, c.dir)
	if _, err := Repair(context.Background(), full, RepairOptions{Quarantine: filepath.Join(t.TempDir(), "q"), Alive: dead}); err != nil {
		t.Fatal(err)
	}
	wantOut, err := collect(t, full)
	if err != nil {
		t.Fatal(err)
	}
	before := promstoreDump(t, c.dir)
	for stop := 1; ; stop++ {
		dir := testenv.CopyStore(t, c.dir)
		q := filepath.Join(t.TempDir(), "q")
		stopped := killedRepair(t, dir, q, stop)
		if stopped == "" {
			if stop < 7 {
				t.Fatalf("only %d steps; want 6 (2 copies, 2 rewrites, 2 moves)", stop-1)
			}
			break
		}
		mid := promstoreDump(t, dir)
		if d := compare.Diff(parse(t, "before", before), parse(t, "mid", mid), compare.Options{Tolerance: 1e-9}); len(d.Diffs) > 0 {
			for _, f := range d.Diffs {
				if len(f.OnlyA) > 0 {
					t.Errorf("stopped after %s: family %s lost series: %v", stopped, f.Name, f.OnlyA)
				}
			}
		}
		if _, err := Repair(context.Background(), dir, RepairOptions{Quarantine: q, Alive: dead}); err != nil {
			t.Fatalf("stopped after %s, rerun: %v", stopped, err)
		}
		got, err := collect(t, dir)
		if err != nil {
			t.Fatalf("stopped after %s, rerun: Python's collector: %v", stopped, err)
		}
		if d := compare.Diff(parse(t, "full", wantOut), parse(t, "rerun", got), compare.Options{Tolerance: 1e-9}); !d.Equal() {
			t.Errorf("stopped after %s: rerun ends elsewhere than one full repair: %+v", stopped, d.Diffs)
		}
		ents, _ := os.ReadDir(q)
		if len(ents) != 4 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Errorf("stopped after %s: quarantine holds %v, want one copy of each of the 4 originals", stopped, names)
		}
		for name, b := range c.originals {
			if got := mustRead(t, filepath.Join(q, name)); !bytes.Equal(got, b) {
				t.Errorf("stopped after %s: quarantine/%s is not the original", stopped, name)
			}
		}
	}
}

// TestPIDCollision runs real Python processes that map one shard: two
// that write it under the same pid, as workers of two containers sharing
// a volume do, are a collision; a process that maps it read-only, as
// promstore serve and top keep the shards they read mapped, writes
// nothing and is none (fsck beside a sidecar reported every shard).
func TestPIDCollision(t *testing.T) {
	py := testenv.Python(t)
	const writer = `
import os, sys
from prometheus_client import values
values.ValueClass = values.MultiProcessValue(lambda: 7)
from prometheus_client import Counter
Counter("jobs", "Jobs.").inc()
print("ready", flush=True)
sys.stdin.read()
`
	const reader = `
import mmap, os, sys
f = open(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "counter_7.db"), "rb")
m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
print("ready", flush=True)
sys.stdin.read()
`
	for _, c := range []struct {
		name    string
		scripts []string
		// writers are the indexes of the scripts whose pids the
		// collision names; none: no problem.
		writers []int
	}{
		{"two writers", []string{writer, writer}, []int{0, 1}},
		{"a writer and a read-only mapper", []string{writer, reader}, nil},
		{"a writer and two read-only mappers", []string{writer, reader, reader}, nil},
		{"two writers and a read-only mapper", []string{writer, reader, writer}, []int{0, 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			var pids []int
			for _, script := range c.scripts {
				pids = append(pids, startReady(t, py, dir, script))
			}
			r, err := CheckDir(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			if c.writers == nil {
				if len(r.Problems) != 0 {
					t.Fatalf("problems = %+v, want none", r.Problems)
				}
				return
			}
			a, b := pids[c.writers[0]], pids[c.writers[1]]
			want := fmt.Sprintf("mapped by 2 live processes (%d, %d)", min(a, b), max(a, b))
			if len(r.Problems) != 1 || r.Problems[0].Kind != KindPIDCollision || r.Problems[0].Shard != "counter_7.db" || !strings.Contains(r.Problems[0].Detail, want) {
				t.Fatalf("problems = %+v, want a pid collision of counter_7.db %s", r.Problems, want)
			}
		})
	}
}

// startReady starts a Python script with PROMETHEUS_MULTIPROC_DIR=dir,
// waits for it to print "ready" and returns its pid; it runs until the
// test ends (its stdin is closed then).
func startReady(t *testing.T, py, dir, script string) int {
	t.Helper()
	cmd := exec.Command(py, "-c", script)
	cmd.Env = append(os.Environ(), "PROMETHEUS_MULTIPROC_DIR="+dir)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("python: %q %v", line, err)
	}
	return cmd.Process.Pid
}
