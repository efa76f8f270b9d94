//go:build unix

package fsck

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestHoldRunningOnlyTheWriter: a shard whose pid runs is left alone by
// --repair only when that process maps the file (its writer); a process
// that merely has the pid (reused: here the test itself, which does not
// map the shard) does not stop the repair. Told on Linux only (/proc).
func TestHoldRunningOnlyTheWriter(t *testing.T) {
	if _, err := os.Stat("/proc/self/maps"); err != nil {
		t.Skip("no /proc/self/maps: whether a process maps a file cannot be told here")
	}
	pid := strconv.Itoa(os.Getpid())
	for _, mapIt := range []bool{false, true} {
		dir := t.TempDir()
		name := "counter_" + pid + ".db"
		good := shard(16, 4096, c1, c2)
		write(t, dir, name, good[:len(shard(16, 0, c1))+10]) // truncated
		if mapIt {
			f, err := os.Open(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			m, err := syscall.Mmap(int(f.Fd()), 0, 4096, syscall.PROT_READ, syscall.MAP_SHARED)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			defer syscall.Munmap(m) //nolint:errcheck // a test's mapping
		}
		r, err := CheckDir(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		r.HoldRunning(nil)
		if len(r.Problems) != 1 {
			t.Fatalf("problems %+v", r.Problems)
		}
		p := r.Problems[0]
		if mapIt && (p.Repair != "" || !strings.Contains(p.Detail, "left alone by --repair while process "+pid+" runs")) {
			t.Errorf("mapped by its running process: %+v, want it held", p)
		}
		if !mapIt && (p.Repair != RepairRewrite || !strings.Contains(p.Detail, "runs but does not map this file")) {
			t.Errorf("its pid runs without mapping it: %+v, want a rewrite", p)
		}
	}
}

// TestQuarantineAcrossFileSystemsSaysWhatToDo: a FIFO (or directory, or
// symlink) cannot be copied to a quarantine on another file system; the
// error says to give one on the store's own.
func TestQuarantineAcrossFileSystemsSaysWhatToDo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := readRegular(path)
	if err == nil || !strings.Contains(err.Error(), "give a --quarantine on the store's own file system") {
		t.Errorf("readRegular(FIFO) = %v", err)
	}
}
