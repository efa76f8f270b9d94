package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/store"
)

// LivePID starts `sleep 60` and returns its pid, which store.ProcessAlive
// sees alive; the process is killed and reaped when the test ends.
func LivePID(t testing.TB) string {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sleep: %v", err)
	}
	t.Cleanup(func() {
		// Wait reports the kill as an *exec.ExitError ("signal:
		// killed"); anything else is an error.
		if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("kill sleep %d: %v", cmd.Process.Pid, err)
		}
		var exit *exec.ExitError
		if err := cmd.Wait(); err != nil && !errors.As(err, &exit) {
			t.Errorf("wait for sleep %d: %v", cmd.Process.Pid, err)
		}
	})
	pid := fmt.Sprint(cmd.Process.Pid)
	if got := store.ProcessAlive(pid); got != store.AliveYes {
		t.Fatalf("ProcessAlive(%s) of a running sleep = %s", pid, got)
	}
	return pid
}

// DeadPID runs `true` to its end and returns the pid it had, once
// store.ProcessAlive sees it dead (not yet reused).
func DeadPID(t testing.TB) string {
	t.Helper()
	for range 10 {
		cmd := exec.Command("true")
		if err := cmd.Run(); err != nil {
			t.Fatalf("run true: %v", err)
		}
		if pid := fmt.Sprint(cmd.Process.Pid); store.ProcessAlive(pid) == store.AliveNo {
			return pid
		}
	}
	t.Fatal("no dead pid found")
	return ""
}

// AgeFiles sets the modification time of every file in dir to an hour
// ago (so that cleanup's --min-idle keeps none of them).
func AgeFiles(t testing.TB, dir string) {
	t.Helper()
	AgeFilesBy(t, dir, time.Hour)
}

// AgeFilesBy sets the modification time of every file in dir to age ago.
func AgeFilesBy(t testing.TB, dir string, age time.Duration) {
	t.Helper()
	old := time.Now().Add(-age)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.Chtimes(filepath.Join(dir, e.Name()), old, old); err != nil {
			t.Fatal(err)
		}
	}
}
