package commands

import (
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/promstore/promstore/internal/testenv"
)

// TestPrepareHeap: with PROMSTORE_HUGE_PAGES=on the heap is readied
// (hugeheap.Prepare in the real process) once before a command reads a
// store, not for a shell completion; without it (or with any other
// value), never.
func TestPrepareHeap(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store")
	on := map[string]string{"PROMSTORE_HUGE_PAGES": "on"}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want int
	}{
		{"dump", on, []string{"dump", "--dir", dir}, 1},
		{"ls", on, []string{"ls", "--dir", dir}, 1},
		{"analyze", on, []string{"analyze", "--dir", dir}, 1},
		{"diff of two stores", on, []string{"diff", dir, dir}, 2},
		{"off by default", nil, []string{"dump", "--dir", dir}, 0},
		{"switched off", map[string]string{"PROMSTORE_HUGE_PAGES": "off"}, []string{"dump", "--dir", dir}, 0},
		{"completion", on, []string{"__complete", "dump", "--dir", dir, "--match", "app"}, 0},
		{"version", on, []string{"version"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _, _ := testFactory(tt.env)
			f.IO.Out = io.Discard
			calls := 0
			f.PrepareHeap = func() { calls++ }
			if code := Execute(context.Background(), f, tt.args); code != ExitOK {
				t.Fatalf("exit %d", code)
			}
			if calls != tt.want {
				t.Errorf("heap prepared %d times, want %d", calls, tt.want)
			}
		})
	}
}
