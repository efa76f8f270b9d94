package commands

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoShardsWarns: a directory with no shards (empty, or one of other
// files, as a mistyped path gives) is warned about by every command,
// naming it and saying what a store looks like; dump --strict fails.
func TestNoShardsWarns(t *testing.T) {
	empty := t.TempDir()
	foreign := t.TempDir()
	if err := os.WriteFile(filepath.Join(foreign, "passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"dump"}, 0},
		{[]string{"dump", "--strict"}, 1},
		{[]string{"dump", "--raw"}, 0},
		{[]string{"dump", "--match", "^x"}, 0},
		{[]string{"ls"}, 0},
		{[]string{"top", "--once"}, 0},
		{[]string{"cleanup", "--dead-pids", "--dry-run"}, 0},
	}
	for _, dir := range []string{empty, foreign} {
		for _, tc := range tests {
			t.Run(filepath.Base(dir)+" "+strings.Join(tc.args, " "), func(t *testing.T) {
				code, _, stderr := runCLI(t, nil, append(tc.args, "--dir", dir)...)
				word := "warning: "
				if tc.code != 0 {
					word = ""
				}
				want := "promstore: " + word + "dir " + dir + " holds no shards: a store is a directory of *.db files (counter_1234.db, gauge_livesum_1234.db, ...) that prometheus_client writes in multiprocess mode"
				if code != tc.code || !strings.Contains(stderr, want) {
					t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", code, stderr, tc.code, want)
				}
			})
		}
	}
	// A store whose shards hold no samples yet is not empty.
	fresh := t.TempDir()
	if err := os.WriteFile(filepath.Join(fresh, "counter_1.db"), make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, nil, "dump", "--strict", "--dir", fresh); code != 0 || stderr != "" {
		t.Errorf("store of one fresh shard: exit %d, stderr %q", code, stderr)
	}
}
