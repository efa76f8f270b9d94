package cleanup

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/testenv"
)

// lateWrite counts a new series "late" of pid's counter shard in dir
// with the real prometheus_client, as the worker of that pid would.
func lateWrite(t testing.TB, dir, pid string, n int) {
	t.Helper()
	const script = `
import sys
from prometheus_client import values
values.ValueClass = values.MultiProcessValue(lambda: sys.argv[1])
from prometheus_client import Counter
Counter("late", "Written after the listing.", ["n"]).labels(sys.argv[2]).inc(2.5)
`
	testenv.RunPython(t, nil, script, []string{"PROMETHEUS_MULTIPROC_DIR=" + dir}, pid, strconv.Itoa(n))
}

// TestWorkerExitingWhilePlanned: a worker that writes after the listing
// and has exited by the time its pid is checked (a worker recycled
// during the plan, with no --min-idle to keep its fresh shards out: the
// sidecar's --compact-min-idle 0) made every such run fail with "changed
// while being planned ... is its process running after all (another pid
// namespace)?", a fifth of the runs under churn. The liveness check
// stands in for the moment of the exit: the first checks of the pid write
// a new series into its counter shard first (real Python, as that pid),
// then find it dead. The plan is made again, and the store compacts to
// what Python's collector read before with those writes; a shard that
// changes at every check still fails the run, naming its file, with
// nothing changed.
func TestWorkerExitingWhilePlanned(t *testing.T) {
	testenv.Python(t)
	for _, c := range []struct {
		name   string
		writes int // checks of the dead pid that write first; -1: all
		fails  bool
	}{
		{"writes after the listing, then exits", 1, false},
		{"writes after two listings", 2, false},
		{"writes at every check: runs unseen", -1, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			dead, live := testenv.DeadPID(t), testenv.LivePID(t)
			pyWorker(t, dir, dead)
			pyWorker(t, dir, live)
			before := dbFiles(t, dir)
			wantDir := testenv.CopyStore(t, dir)

			checks := 0
			alive := func(pid string) store.Liveness {
				if pid != dead {
					return store.ProcessAlive(pid)
				}
				checks++
				if c.writes < 0 || checks <= c.writes {
					lateWrite(t, dir, dead, checks)
				}
				return store.AliveNo
			}
			ctx := context.Background()
			st, err := filestore.Open(ctx, dir, filestore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = Run(ctx, FileTarget(st), Options{DeadPIDs: true, MinIdle: -1, Alive: alive})
			if c.fails {
				shard := filepath.Join(dir, "counter_"+dead+".db")
				if err == nil || !strings.Contains(err.Error(), "shard "+shard+" changed while being planned, in each of 3 tries") || !strings.Contains(err.Error(), "nothing was changed") {
					t.Fatalf("cleanup: %v, want it to fail naming %s", err, shard)
				}
				after := dbFiles(t, dir)
				for name := range before {
					if _, ok := after[name]; !ok {
						t.Errorf("%s removed by a failed run", name)
					}
				}
				for name := range after {
					if _, ok := before[name]; !ok {
						t.Errorf("%s written by a failed run", name)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("cleanup: %v", err)
			}
			// What Python read before, with the same late writes.
			for n := 1; n <= c.writes; n++ {
				lateWrite(t, wantDir, dead, n)
			}
			wantDir = withoutLiveGauges(t, wantDir, dead)
			files := dbFiles(t, dir)
			if _, ok := files["counter_"+dead+".db"]; ok {
				t.Errorf("counter_%s.db left: %v", dead, names(files))
			}
			if _, ok := files["counter_archive-1.db"]; !ok {
				t.Fatalf("no counter archive: %v", names(files))
			}
			client := testenv.PythonClient(t)
			compareDumps(t, pyCollect(t, dir), pyCollect(t, wantDir), true)
			compareDumps(t, dumpAs(t, dir, client), pyCollect(t, wantDir), true)
			if !strings.Contains(string(dumpAs(t, dir, client)), `late_total{n="`+strconv.Itoa(c.writes)+`"} 2.5`) {
				t.Errorf("the last late write is not in the dump")
			}
		})
	}
}
