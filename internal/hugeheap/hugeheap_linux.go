package hugeheap

import (
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

func prepare() {
	if !raceEnabled {
		mark(planHere())
	}
}

// planHere is plan for this machine.
func planHere() int {
	read := func(path string) []byte {
		b, _ := os.ReadFile(path)
		return b
	}
	return plan(read("/sys/kernel/mm/transparent_hugepage/enabled"), read("/proc/sys/vm/overcommit_memory"), read("/proc/meminfo"))
}

// mark marks a block of n bytes of the heap (none for 0), as Prepare
// describes.
func mark(n int) {
	if n == 0 {
		return
	}
	// A block this large comes from fresh heap pages, which the runtime
	// knows are zero: allocating it touches none of them.
	b := make([]byte, n)
	err := unix.Madvise(b, unix.MADV_HUGEPAGE)
	runtime.KeepAlive(b)
	if err == nil {
		// Free the block now, so that the heap grows into it.
		runtime.GC()
	}
}
