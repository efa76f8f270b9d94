//go:build unix

package commands

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/store/storetest"
	"github.com/promstore/promstore/internal/testenv"
)

// TestSidecarBusyIsNoError: while another cleanup of the store holds its
// lock (one run by hand, another replica's sidecar), the sidecar's
// compactions are counted as busy and logged at info, not as errors
// (ERROR "compaction failed", outcome="error"): the work is being done.
// Once the lock is free a compaction runs.
func TestSidecarBusyIsNoError(t *testing.T) {
	dir := t.TempDir()
	st, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k := storetest.Key(t, "jobs", "jobs_total", nil, "Jobs.")
	if err := st.WriteShard(context.Background(), store.ShardID{Kind: store.KindCounter, PID: testenv.DeadPID(t)}, []store.Sample{{Key: k, Value: 1}}); err != nil {
		t.Fatal(err)
	}
	testenv.AgeFiles(t, dir)
	// The lock another cleanup holds: the flock of its lock file.
	lock, err := os.OpenFile(filepath.Join(dir, ".promstore-cleanup.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url, done, log := startServe(t, ctx, "--dir", dir, "--compact-every", "50ms", "--compact-min-idle", "0s")
	waitFor(t, func() bool { return selfMetric(t, url, `promstore_compactions_total{outcome="busy"}`) >= 2 }, "two busy compactions", log)
	if n := selfMetric(t, url, `promstore_compactions_total{outcome="error"}`); n != 0 {
		t.Errorf("%v compactions counted as errors", n)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return selfMetric(t, url, `promstore_compactions_total{outcome="ok"}`) >= 1 }, "a compaction once the lock is free", log)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
	l := log.String()
	logged := false
	for _, line := range strings.Split(l, "\n") {
		logged = logged || strings.Contains(line, "level=INFO") &&
			strings.Contains(line, `msg="compaction skipped: another cleanup of the store is running" reason="cleanup lock `+filepath.Join(dir, ".promstore-cleanup.lock")+`: another cleanup is running on this directory"`)
	}
	if strings.Contains(l, "compaction failed") || !logged {
		t.Errorf("want busy runs logged at info naming the lock, no failure:\n%s", l)
	}
}
