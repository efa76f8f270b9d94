package commands

import (
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/promstore/promstore/internal/testenv"
)

// TestPrepareHeap: the heap is readied (hugeheap.Prepare in the real
// process) once before a command reads a store, not for a shell
// completion, and not with PROMSTORE_HUGE_PAGES=off.
func TestPrepareHeap(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store")
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want int
	}{
		{"dump", nil, []string{"dump", "--dir", dir}, 1},
		{"ls", nil, []string{"ls", "--dir", dir}, 1},
		{"analyze", nil, []string{"analyze", "--dir", dir}, 1},
		{"diff of two stores", nil, []string{"diff", dir, dir}, 2},
		{"switched off", map[string]string{"PROMSTORE_HUGE_PAGES": "off"}, []string{"dump", "--dir", dir}, 0},
		{"completion", nil, []string{"__complete", "dump", "--dir", dir, "--match", "app"}, 0},
		{"version", nil, []string{"version"}, 0},
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
