package cleanup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/store/storetest"
	"github.com/promstore/promstore/internal/testenv"
)

// fillDisk writes a file into dir until its file system is full and
// returns the file's path.
func fillDisk(t testing.TB, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for err == nil {
		_, err = f.Write(make([]byte, 4096))
	}
	if !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("filling %s: %v", dir, err)
	}
	return p
}

// TestFullDiskLeavesNoBarrier: a compaction on a disk that fills up
// saves its journal, then fails to write its first archive. Every run
// after it finishes that journal, raising the barrier first; while the
// disk stayed full, each of those runs failed at the same archive and
// left the barrier standing, so Python's collector (the app's own
// /metrics) failed every scrape, on a store where no archive stood beside
// its sources (a sidecar compacting every minute kept it so). A barrier
// a run raised is now taken down when the run fails with its archive not
// in place; one that stood before the run began (a run stopped inside
// it) is still kept, since what it guards is not known. Real Python
// writers and collector, a real full tmpfs.
func TestFullDiskLeavesNoBarrier(t *testing.T) {
	testenv.Python(t)
	for _, c := range []struct {
		name string
		// stopAt is the step after which the first run, on a disk with
		// room, stops as a kill would; "" fills the disk when its
		// journal is written instead.
		stopAt string
		// barrier: the barrier stands after the reruns on the full disk.
		barrier bool
	}{
		{"first run fails at its archive", "", false},
		{"first run stopped inside its barrier", "barrier raised", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := testenv.SmallTmpfs(t, "1m")
			var pids []string
			for range 3 {
				pids = append(pids, testenv.DeadPID(t))
				pyWorker(t, dir, pids[len(pids)-1])
			}
			client := testenv.PythonClient(t)
			// Python reads every shard until the run is done; promstore
			// reads the store as the journal leaves it, live gauges gone.
			pythonBefore := pyCollect(t, dir)
			wantDir := withoutLiveGauges(t, dir, pids...)
			want, wantPython := dumpAs(t, wantDir, client), pyCollect(t, wantDir)
			ctx := context.Background()
			st, err := filestore.Open(ctx, dir, filestore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			target := FileTarget(st)
			opts := Options{DeadPIDs: true, MinIdle: -1}

			filler := ""
			first := opts
			first.afterStep = func(step string) error {
				switch {
				case c.stopAt == "" && step == "journal written":
					filler = fillDisk(t, dir)
				case step == c.stopAt:
					return errCrash
				}
				return nil
			}
			_, err = Run(ctx, target, first)
			switch {
			case c.stopAt == "" && (err == nil || !strings.Contains(err.Error(), "no space left on device")):
				t.Fatalf("first run on a disk filled under it: %v, want no space left", err)
			case c.stopAt != "" && !errors.Is(err, errCrash):
				t.Fatalf("first run: %v, want it stopped after %s", err, c.stopAt)
			}
			if filler == "" {
				filler = fillDisk(t, dir)
			}
			for i := range 2 {
				if _, err := Run(ctx, target, opts); err == nil || !strings.Contains(err.Error(), "no space left on device") {
					t.Fatalf("rerun %d on the full disk: %v, want no space left", i+1, err)
				}
				if got := HasBarrier(dir); got != c.barrier {
					t.Fatalf("rerun %d on the full disk: barrier standing %v, want %v", i+1, got, c.barrier)
				}
			}
			if !c.barrier {
				// Python's collector reads the store as before.
				compareDumps(t, pyCollect(t, dir), pythonBefore, true)
			}
			compareDumps(t, storetest.DumpAs(t, Consistent(st), client), want, true)

			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			if _, err := Run(ctx, target, opts); err != nil {
				t.Fatalf("run with room again: %v", err)
			}
			if HasBarrier(dir) {
				t.Errorf("barrier left by a run that finished")
			}
			if _, ok := dbFiles(t, dir)["counter_archive-1.db"]; !ok {
				t.Errorf("no counter archive after the run with room")
			}
			compareDumps(t, pyCollect(t, dir), wantPython, true)
			compareDumps(t, dumpAs(t, dir, client), want, true)
		})
	}
}
