package hugeheap

import (
	"os"
	"testing"
)

// anonHuge returns the process's anonymous memory backed by huge pages,
// in bytes.
func anonHuge(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps_rollup")
	if err != nil {
		t.Fatal(err)
	}
	n, ok := kBField(b, "AnonHugePages")
	if !ok {
		t.Fatal("no AnonHugePages in /proc/self/smaps_rollup")
	}
	return n
}

// TestPrepare: where the kernel gives huge pages on request, the heap
// that a program grows after Prepare's marking is backed by them.
func TestPrepare(t *testing.T) {
	n := min(planHere(), 256<<20)
	before := anonHuge(t)
	mark(n)                      // what Prepare does outside the race detector
	heap := make([]byte, 96<<20) // grown after Prepare, and touched
	for i := 0; i < len(heap); i += 4096 {
		heap[i] = 1
	}
	after := anonHuge(t)
	t.Logf("plan %d MiB; anonymous huge pages %d MiB before, %d MiB after growing the heap by 96 MiB", n>>20, before>>20, after>>20)
	if n > 0 && after-before < 32<<20 {
		t.Errorf("huge pages on request and %d MiB marked, but the heap grew by 96 MiB with %d MiB of huge pages", n>>20, (after-before)>>20)
	}
}
