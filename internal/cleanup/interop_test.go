package cleanup

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/testenv"
)

// pyWorker writes one process's shards with the real prometheus_client
// (scripts/pystore.py), as process id pid.
func pyWorker(t testing.TB, dir, pid string) {
	t.Helper()
	py := testenv.Python(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	script := filepath.Join(testenv.RepoRoot(t), "scripts", "pystore.py")
	cmd := exec.CommandContext(ctx, py, script, "_worker", dir, "--pid", pid, "--series", "12", "--seed", "42", "--mode", "plan")
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pystore.py _worker --pid %s: %v\n%s", pid, err, out)
	}
}

// pyCollect is what Python's MultiProcessCollector serves for dir.
func pyCollect(t testing.TB, dir string) []byte {
	t.Helper()
	py := testenv.Python(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	script := filepath.Join(testenv.RepoRoot(t), "scripts", "pystore.py")
	cmd := exec.CommandContext(ctx, py, script, "collect", dir)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("pystore.py collect %s: %v\n%s", dir, err, stderr.String())
	}
	return out.Bytes()
}

// TestPythonInterop: shards written by real Python processes (Debian's
// prometheus_client 0.16, 8-byte layout), some named after running
// processes and some after exited ones, are cleaned up; promstore's and
// Python's own collector's output of the result equal the output before
// minus the live* gauges of the dead pids.
func TestPythonInterop(t *testing.T) {
	testenv.Python(t)
	dir := t.TempDir()
	live := []string{testenv.LivePID(t), testenv.LivePID(t)}
	dead := []string{testenv.DeadPID(t), testenv.DeadPID(t), testenv.DeadPID(t)}
	for _, pid := range append(append([]string{}, live...), dead...) {
		pyWorker(t, dir, pid)
	}
	testenv.AgeFiles(t, dir)
	wantDir := withoutLiveGauges(t, dir, dead...)
	client := testenv.PythonClient(t) // promstore's dumps are compared with its collector's
	wantPromstore := dumpAs(t, wantDir, client)
	wantPython := pyCollect(t, wantDir)

	res := runCleanup(t, dir, Options{DeadPIDs: true})
	if s := res.Plan.Summary(); s.Compacted == 0 || s.Removed == 0 {
		t.Fatalf("nothing compacted or removed: %+v", s)
	}
	files := dbFiles(t, dir)
	if _, ok := files["counter_archive-1.db"]; !ok {
		t.Fatalf("no counter archive: %v", names(files))
	}
	for n := range files {
		for _, pid := range dead {
			if strings.HasSuffix(n, "_"+pid+".db") && !strings.HasPrefix(n, "gauge_all_") {
				t.Errorf("%s of dead pid left", n)
			}
		}
	}
	for _, in := range shardInfos(t, dir) {
		if IsArchivePID(in.ID.PID) && in.Layout != 8 {
			t.Errorf("%s: layout %d, want 8 like its Python 0.16 sources", in.ID, in.Layout)
		}
	}
	after := dumpAs(t, dir, client)
	// promstore and Python both meet the files in directory order, which
	// compaction changes: a min/max series whose first-met value is NaN
	// may differ between the directory before and after, as may a sum
	// that overflows in one order and not the other (see the package
	// doc). Every other difference fails the test.
	edges := compareDumps(t, after, wantPromstore, true)
	gotPython := pyCollect(t, dir)
	edges += compareDumps(t, gotPython, wantPython, true)
	edges += compareDumps(t, gotPython, after, true)
	t.Logf("%d series differ only by the order of additions (a min/max meeting a NaN first, a sum overflowing)", edges)
}

// TestFixture025 compacts the prometheus_client 0.25 fixture (16-byte
// layout, mostrecent gauges, never-set series) with its pids renamed to
// exited processes and one to a running process.
func TestFixture025(t *testing.T) {
	src := filepath.Join(testenv.FixturesDir(t), "python-0.25-files", "store")
	dir := t.TempDir()
	pids := map[string]string{"4100": testenv.DeadPID(t), "4101": testenv.DeadPID(t), "4102": testenv.LivePID(t), "4103": testenv.DeadPID(t)}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		name := e.Name()
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		for old, pid := range pids {
			name = strings.Replace(name, "_"+old+".db", "_"+pid+".db", 1)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testenv.AgeFiles(t, dir)
	want := dump(t, withoutLiveGauges(t, dir, pids["4100"], pids["4101"], pids["4103"]))
	runCleanup(t, dir, Options{DeadPIDs: true})
	files := dbFiles(t, dir)
	if _, ok := files["gauge_mostrecent_archive-1.db"]; !ok {
		t.Fatalf("no mostrecent archive: %v", names(files))
	}
	for _, in := range shardInfos(t, dir) {
		if IsArchivePID(in.ID.PID) && in.Layout != 16 {
			t.Errorf("%s: layout %d, want 16", in.ID, in.Layout)
		}
	}
	compareDumps(t, dump(t, dir), want, false)
}
