package serve

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/testenv"
)

// TestEmptyShardWrittenSincePasses: a scrape reads a worker's shard of 0
// bytes (created, not yet sized); by the time the scrape checks the pid,
// the worker has sized and written it and exited (recycled within the
// scrape), or exited and had its live gauge removed by
// mark_process_dead. Such scrapes failed with HTTP 500 "empty file (0
// bytes)" (3 of 9,175 under churn) although the file held no sample at
// the read; they pass now. A file still empty with its process gone (a
// writer killed between creating and sizing it) still fails the scrape.
// Each problem comes from a real read; what happens after it is done by
// the real prometheus_client as that pid.
func TestEmptyShardWrittenSincePasses(t *testing.T) {
	testenv.Python(t)
	const write = `
import sys
from prometheus_client import values
values.ValueClass = values.MultiProcessValue(lambda: sys.argv[1])
from prometheus_client import Counter
Counter("jobs", "Jobs.").inc()
`
	const markDead = `
import os, sys
from prometheus_client import multiprocess
multiprocess.mark_process_dead(sys.argv[1], os.environ["PROMETHEUS_MULTIPROC_DIR"])
`
	for _, c := range []struct {
		name  string
		kind  string // shard file name up to the pid
		live  bool   // the pid runs
		after string // Python run as the pid after the read, "" for none
		want  bool
	}{
		{"running process", "counter", true, "", true},
		{"dead process, still empty", "counter", false, "", false},
		{"sized and written since, process exited", "counter", false, write, true},
		{"removed by mark_process_dead since", "gauge_livesum", false, markDead, true},
		{"dead process's all-mode gauge, mark_process_dead leaves it empty", "gauge_all", false, markDead, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := testenv.CopyStore(t, filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store"))
			pid := testenv.DeadPID(t)
			if c.live {
				pid = testenv.LivePID(t)
			}
			name := c.kind + "_" + pid + ".db"
			if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			st, err := filestore.Open(ctx, dir, filestore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			problems, partial := store.Partial(st.Scan(ctx, func(store.Sample) error { return nil }))
			if !partial || len(problems) != 1 || problems[0].Kind != store.ProblemEmptyFile || problems[0].Shard != name {
				t.Fatalf("read: problems %v, want %s of 0 bytes", problems, name)
			}
			if c.after != "" {
				testenv.RunPython(t, nil, c.after, []string{"PROMETHEUS_MULTIPROC_DIR=" + dir}, pid)
			}
			if got := passing(problems[0]); got != c.want {
				t.Errorf("passing(%v) = %v, want %v", problems[0], got, c.want)
			}
		})
	}
}
